"""Follows and alerts in the back office (`signalements/subscriptions.py`): a list to see
who hears about what, filtered by kind, confirmation and frequency. Read-only: people
subscribe and unsubscribe themselves, by their emails' links.

Addresses are personal data that nobody needs to triage reports: superusers alone read
them (and search by them, and delete a subscription, e.g. at someone's request); agents,
who may view the list, see them masked (`l…@example.org`) and cannot search by them (a
search would tell whether an address is subscribed)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from signalements.models import Subscription


def masked(address: str) -> str:
    """`lea@example.org` as `l…@example.org`."""
    local, _at, domain = address.partition("@")
    return f"{local[:1]}…@{domain}" if domain else "…"


class ConfirmedFilter(admin.SimpleListFilter):
    title = _("confirmed")
    parameter_name = "confirmed"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(confirmed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(confirmed_at__isnull=True)
        return queryset


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "masked_email",
        "signalement",
        "area_display",
        "frequency",
        "is_confirmed",
        "language",
        "created_at",
    ]
    list_filter = ["kind", ConfirmedFilter, "frequency", "area", "language"]
    list_select_related = ["signalement"]
    ordering = ["-created_at", "-id"]
    fields = [
        "kind",
        "masked_email",
        "signalement",
        "area_display",
        "categories",
        "frequency",
        "language",
        "created_at",
        "confirmed_at",
        "last_digest_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_search_fields(self, request):
        return ["email"] if request.user.is_superuser else []

    # The address column depends on who reads: masked, or itself for superusers.
    def get_list_display(self, request):
        return self._with_address(request, self.list_display)

    def get_fields(self, request, obj=None):
        return self._with_address(request, self.fields)

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @staticmethod
    def _with_address(request, names) -> list[str]:
        if not request.user.is_superuser:
            return list(names)
        return ["email" if name == "masked_email" else name for name in names]

    @admin.display(description=_("email address"))
    def masked_email(self, subscription):
        return masked(subscription.email)

    @admin.display(description=_("confirmed"), boolean=True, ordering="confirmed_at")
    def is_confirmed(self, subscription):
        return subscription.is_confirmed

    @admin.display(description=_("area"))
    def area_display(self, subscription):
        if subscription.kind != Subscription.Kind.ALERT:
            return "—"
        if subscription.area == Subscription.Area.CIRCLE:
            return _("%(radius)s m around %(latitude)s, %(longitude)s") % {
                "radius": subscription.radius_m,
                "latitude": subscription.latitude,
                "longitude": subscription.longitude,
            }
        return f"{subscription.min_longitude}, {subscription.min_latitude} – " + (
            f"{subscription.max_longitude}, {subscription.max_latitude}"
        )
