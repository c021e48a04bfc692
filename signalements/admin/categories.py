"""Categories and their extra fields in the back office (admins manage them)."""

from django import forms
from django.contrib import admin
from django.db.models import Count
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from signalements.models import Category, ExtraField

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


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    inlines = [ExtraFieldInline]
    list_display = ["name", "code", "group", "is_active", "report_count"]
    list_filter = ["is_active", "group"]
    search_fields = ["name", "code", "description", "group"]
    prepopulated_fields = {"code": ["name"]}
    ordering = ["group", "name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(report_count=Count("signalements"))

    @admin.display(description=_("reports"), ordering="report_count")
    def report_count(self, category):
        return category.report_count
