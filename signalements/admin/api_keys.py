"""Open311 API keys in the back office: issued here, shown once, revoked for good."""

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from signalements.models import ApiKey


@admin.action(description=_("Revoke selected API keys"), permissions=["change"])
def revoke_api_keys(modeladmin, request, queryset):
    revoked = queryset.filter(is_active=True).update(is_active=False, revoked_at=timezone.now())
    modeladmin.message_user(
        request,
        ngettext("%(count)d API key revoked.", "%(count)d API keys revoked.", revoked)
        % {"count": revoked},
        messages.SUCCESS,
    )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Open311 API keys. The raw key is generated on creation and shown once, in a
    message: only its hash is stored. Revoking (the action, or unticking "active") is
    final: create a new key instead."""

    list_display = ["prefix_display", "name", "user", "created_at", "last_used_at", "is_active"]
    list_display_links = ["prefix_display", "name"]
    list_filter = ["is_active"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    raw_id_fields = ["user"]
    actions = [revoke_api_keys]

    @admin.display(description=_("key"), ordering="prefix")
    def prefix_display(self, api_key):
        return f"{api_key.prefix}…"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "user"]
        return [
            "name",
            "user",
            "prefix_display",
            "is_active",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        readonly = ["prefix_display", "created_at", "last_used_at", "revoked_at"]
        if not obj.is_active:
            readonly.append("is_active")
        return readonly

    def save_model(self, request, obj, form, change):
        raw_key = None
        if not change:
            raw_key = obj.set_new_key()
        elif not obj.is_active and obj.revoked_at is None:
            obj.revoked_at = timezone.now()
        super().save_model(request, obj, form, change)
        if raw_key is not None:
            self.message_user(
                request,
                format_html(
                    _(
                        "The API key of “{}” is <code>{}</code>. Copy it now: it will not be "
                        "shown again."
                    ),
                    obj.name,
                    raw_key,
                ),
                messages.WARNING,
            )
