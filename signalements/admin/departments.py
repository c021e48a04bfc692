"""Departments in the back office: the teams that handle reports, and their members.
Admins manage them; agents see them (the "view" permission of migration 0015), with
their history."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from signalements.models import AGENTS_GROUP, Department


def possible_members(department: Department | None):
    """Who may belong to a department: agents and staff, and whoever already does (a
    member who left the agents group is listed, not dropped unseen by the next save)."""
    eligible = (Q(groups__name=AGENTS_GROUP) | Q(is_staff=True)) & Q(is_active=True)
    if department is not None and department.pk is not None:
        eligible |= Q(departments=department)
    users = get_user_model().objects.filter(eligible)
    return get_user_model().objects.filter(pk__in=users.values("pk")).order_by("username")


@admin.register(Department)
class DepartmentAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "email", "is_active", "member_count"]
    list_display_links = ["code", "name"]
    list_filter = ["is_active"]
    search_fields = ["code", "name", "email"]
    prepopulated_fields = {"code": ["name"]}
    filter_horizontal = ["members"]
    fieldsets = [
        (None, {"fields": ["name", "code", "email", "is_active"]}),
        (_("Members"), {"fields": ["members"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members", distinct=True))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if "members" in form.base_fields:
            form.base_fields["members"].queryset = possible_members(obj)
        return form

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, department):
        return department.member_count
