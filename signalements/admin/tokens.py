"""API tokens in the back office (django-rest-knox's, `signalements/api_tokens.py`), in
place of knox's own screen. Whose tokens exist, since when, until when, each named by its
first characters: never the token (the server does not keep it), nor its digest (of no
use to anyone, and noise). Revoking deletes; the expiry can be brought forward; a token
made here for a user (a script's) is shown once, in a message."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from knox.admin import AuthTokenCreateForm
from knox.models import AuthToken
from knox.settings import knox_settings

LABELS = {"user": _("user"), "expiry": _("expires")}
HELP_TEXTS = {"expiry": _("Empty: the token works until it is revoked.")}


class TokenCreateForm(AuthTokenCreateForm):
    """knox's: makes the token and keeps it (`form.token`) for the message."""

    class Meta(AuthTokenCreateForm.Meta):
        labels = LABELS
        help_texts = HELP_TEXTS


class TokenChangeForm(forms.ModelForm):
    class Meta:
        model = AuthToken
        fields = ["expiry"]
        labels = LABELS
        help_texts = HELP_TEXTS


@admin.action(description=_("Revoke selected tokens"), permissions=["delete"])
def revoke_tokens(modeladmin, request, queryset):
    revoked, _by_model = queryset.delete()
    modeladmin.message_user(
        request,
        ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", revoked)
        % {"count": revoked},
        messages.SUCCESS,
    )


# knox's own screen, registered when knox.admin was imported (above): replaced.
admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "owner", "created_at", "expires"]
    list_display_links = ["prefix"]
    list_select_related = ["user"]
    search_fields = ["token_key", "user__username"]
    raw_id_fields = ["user"]
    ordering = ["-created"]
    actions = [revoke_tokens]

    @admin.display(description=_("token"), ordering="token_key")
    def prefix(self, token):
        return f"{token.token_key}…"

    @admin.display(description=_("user"), ordering="user__username")
    def owner(self, token):
        return token.user

    @admin.display(description=_("created"), ordering="created")
    def created_at(self, token):
        return token.created

    @admin.display(description=_("expires"), ordering="expiry", empty_value=_("never"))
    def expires(self, token):
        return token.expiry

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "revoke" says what it does
        return actions

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = TokenCreateForm if obj is None else TokenChangeForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "expiry"]
        return ["prefix", "owner", "created_at", "expiry"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["prefix", "owner", "created_at"]

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if knox_settings.TOKEN_TTL:
            initial.setdefault("expiry", timezone.now() + knox_settings.TOKEN_TTL)
        return initial

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(
                request,
                _("The new token, shown this once (the server keeps only its digest): %(token)s")
                % {"token": form.token},
                messages.WARNING,
            )
