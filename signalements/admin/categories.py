"""Categories in the back office (admins manage them): their extra fields, the
department that handles their reports by default, what a reporter's "not fixed" does,
and their service levels (the handling time, per priority or for any)."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from signalements.models import Category, ExtraField, ServiceLevel

from .extra import ChoiceRowsField


class ExtraFieldForm(forms.ModelForm):
    choices = ChoiceRowsField(
        label=capfirst(_("choices")),
        required=False,
        help_text=_("For the list types only."),
    )

    class Meta:
        model = ExtraField
        fields = ["code", "label", "datatype", "required", "order", "description", "choices"]


class ExtraFieldInline(admin.StackedInline):
    """The category's questions, their choices as rows; each is validated (choices for
    list types only)."""

    model = ExtraField
    form = ExtraFieldForm
    fields = [("code", "label", "datatype", "required", "order"), "description", "choices"]
    extra = 0


class ServiceLevelForm(forms.ModelForm):
    class Meta:
        model = ServiceLevel
        fields = ["priority", "amount", "unit"]

    def validate_unique(self):
        """The model's constraints too: an inline's form leaves out those naming its
        foreign key (the category), so a row saved meanwhile with the same priority
        would be an IntegrityError, a 500, instead of this message. (Two rows of the
        page with the same priority are the formset's own check.)"""
        super().validate_unique()
        exclude = self._get_validation_exclusions() - {"category"}
        try:
            self.instance.validate_constraints(exclude=exclude)
        except ValidationError as refused:
            self._update_errors(refused)


class ServiceLevelInline(admin.TabularInline):
    """The category's handling times: one for any priority (priority left empty) and
    one for each priority that needs another, at most one each."""

    model = ServiceLevel
    form = ServiceLevelForm
    fields = ["priority", "amount", "unit"]
    extra = 0


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    inlines = [ExtraFieldInline, ServiceLevelInline]
    fieldsets = [
        (None, {"fields": ["name", "code", "group", "description", "is_active"]}),
        (_("Handling"), {"fields": ["department", "reopen_policy"]}),
    ]
    list_display = ["name", "code", "group", "department", "is_active", "report_count"]
    list_filter = ["is_active", "group", "department"]
    list_select_related = ["department"]
    search_fields = ["name", "code", "description", "group"]
    prepopulated_fields = {"code": ["name"]}
    ordering = ["group", "name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(report_count=Count("signalements"))

    @admin.display(description=_("reports"), ordering="report_count")
    def report_count(self, category):
        return category.report_count
