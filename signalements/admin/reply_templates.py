"""Reply templates in the back office: the saved texts agents pick for the public note
of a status change (from a report's page, `workflow.py`, or `?template=` in the API).
Admins write them; agents see them."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from simple_history.admin import SimpleHistoryAdmin

from signalements import reply_templates
from signalements.models import ReplyTemplate


class ReplyTemplateForm(forms.ModelForm):
    class Meta:
        model = ReplyTemplate
        fields = ["name", "code", "category", "to_status", "is_active", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 8, "cols": 80})}

    def clean_body(self):
        """A name in braces that is not a placeholder stays as written in every note
        sent (`{refrence}`): refused here, where its author sees it."""
        body = self.cleaned_data["body"]
        unknown = reply_templates.unknown_placeholders(body)
        if unknown:
            raise forms.ValidationError(
                ngettext(
                    "Unknown placeholder %(names)s; the placeholders are %(known)s.",
                    "Unknown placeholders %(names)s; the placeholders are %(known)s.",
                    len(unknown),
                )
                % {
                    "names": ", ".join(f"{{{name}}}" for name in unknown),
                    "known": ", ".join(f"{{{name}}}" for name in reply_templates.PLACEHOLDERS),
                },
                code="unknown_placeholder",
            )
        return body


@admin.register(ReplyTemplate)
class ReplyTemplateAdmin(SimpleHistoryAdmin):
    form = ReplyTemplateForm
    list_display = ["code", "name", "category", "to_status", "is_active"]
    list_display_links = ["code", "name"]
    list_filter = ["is_active", "to_status", "category"]
    list_select_related = ["category"]
    search_fields = ["code", "name", "body"]
    prepopulated_fields = {"code": ["name"]}
    fieldsets = [
        (None, {"fields": ["name", "code", "is_active"]}),
        (_("Offered for"), {"fields": ["category", "to_status"]}),
        (None, {"fields": ["body"]}),
    ]
