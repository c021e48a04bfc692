"""Follows and alerts: what is asked for (`POST /api/signalements/{id}/follow/`,
`POST /api/alerts/`), the one answer to either (which never tells whether the address
was subscribed already), and what a confirmation or unsubscribe link names. No
representation here holds an email address."""

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import serializers

from signalements.models import Category, Subscription
from signalements.validation import RoundingDecimalField, StrictEmailField, StrictSlugField

# Categories an alert may name, at most.
ALERT_MAX_CATEGORIES = 20


def coordinate(limit: int, **kwargs) -> RoundingDecimalField:
    return RoundingDecimalField(
        max_digits=9,
        decimal_places=6,
        min_value=-limit,
        max_value=limit,
        coerce_to_string=False,
        **kwargs,
    )


class FollowSerializer(serializers.Serializer):
    email = StrictEmailField(
        required=False,
        max_length=254,
        help_text="The address that follows the report; it gets a link to confirm. "
        "Optional when logged in: the account's address, confirmed at once.",
    )


class AlertSerializer(serializers.Serializer):
    """What every alert says; `kind` chooses the area's fields."""

    email = StrictEmailField(
        max_length=254,
        help_text="The address that gets the alerts; it gets a link to confirm (unless "
        "it is the logged-in account's own address: confirmed at once).",
    )
    kind = serializers.ChoiceField(
        choices=Subscription.Area.choices, help_text="`circle` (centre and radius) or `bbox`."
    )
    categories = serializers.ListField(
        child=StrictSlugField(max_length=64),
        max_length=ALERT_MAX_CATEGORIES,
        required=False,
        default=list,
        help_text="Codes of active categories (`/api/categories/`); none or empty: all categories.",
    )
    frequency = serializers.ChoiceField(
        choices=Subscription.Frequency.choices,
        default=Subscription.Frequency.IMMEDIATE,
        help_text="`immediate`: an email per new report; `daily`: one digest a day (from "
        "`ALERT_DIGEST_HOUR`), when there is anything new.",
    )

    def validate_categories(self, codes):
        codes = sorted(set(codes))
        known = set(
            Category.objects.filter(code__in=codes, is_active=True).values_list("code", flat=True)
        )
        unknown = [code for code in codes if code not in known]
        if unknown:
            raise serializers.ValidationError(
                _("No active category with the code %(code)s.") % {"code": unknown[0]},
                code="does_not_exist",
            )
        return codes


class CircleAlertSerializer(AlertSerializer):
    """New reports within `radius_m` metres of (`lat`, `lng`)."""

    kind = serializers.ChoiceField(choices=[Subscription.Area.CIRCLE])
    lat = coordinate(90, help_text="The centre's latitude (WGS84 degrees).")
    lng = coordinate(180, help_text="The centre's longitude (WGS84 degrees).")
    radius_m = serializers.IntegerField(
        min_value=1,
        max_value=settings.SIGNALEMENT_NEAR_MAX_RADIUS_M,
        help_text=f"Metres around the centre (at most {settings.SIGNALEMENT_NEAR_MAX_RADIUS_M}, "
        "as the list's `near` filter).",
    )


class BoxAlertSerializer(AlertSerializer):
    """New reports in a box, as the list's `in_bbox` filter reads it."""

    kind = serializers.ChoiceField(choices=[Subscription.Area.BBOX])
    bbox = serializers.ListField(
        child=coordinate(180),
        min_length=4,
        max_length=4,
        help_text="`[min_lon, min_lat, max_lon, max_lat]` (WGS84 degrees, edges included; "
        "latitudes within [-90, 90]; min ≤ max: a box cannot cross the antimeridian).",
    )

    def validate_bbox(self, bbox):
        min_lon, min_lat, max_lon, max_lat = bbox
        if not (-90 <= min_lat <= 90 and -90 <= max_lat <= 90):
            raise serializers.ValidationError(
                _("Longitudes must lie in [-180, 180] and latitudes in [-90, 90]."), code="range"
            )
        if min_lon > max_lon or min_lat > max_lat:
            raise serializers.ValidationError(
                _("min_lon must not exceed max_lon, nor min_lat max_lat."), code="order"
            )
        return tuple(bbox)


ALERT_SERIALIZERS = {
    Subscription.Area.CIRCLE: CircleAlertSerializer,
    Subscription.Area.BBOX: BoxAlertSerializer,
}


def alert_serializer(data, **kwargs) -> AlertSerializer:
    """The serializer of the alert's `kind` (the common one, which refuses the kind,
    when it is none we know)."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if not isinstance(kind, str):
        kind = None
    serializer_class = ALERT_SERIALIZERS.get(kind, AlertSerializer)
    return serializer_class(data=data, **kwargs)


class SubscriptionAcceptedSerializer(serializers.Serializer):
    """The answer to a follow or an alert asked for: the same whether the address was
    subscribed already or not."""

    detail = serializers.CharField(help_text="What happens next, for people.")
    confirmation_required = serializers.BooleanField(
        help_text="True: a link to confirm was sent to the address (nothing is sent to it "
        "before). False: the logged-in account's own address, confirmed at once."
    )


class SubscriptionLinkSerializer(serializers.Serializer):
    """What a confirmation or unsubscribe link names."""

    kind = serializers.ChoiceField(
        choices=["follow", "alert", "report"],
        help_text="`follow`: following a report; `alert`: an alert about new reports; "
        "`report` (unsubscribe links): the emails about a report to this address, as its "
        "reporter or a follower.",
    )
    reference = serializers.CharField(
        allow_null=True, help_text="The report's reference (null for an alert)."
    )
    description = serializers.CharField(help_text="What it is, in words, for people.")


class ConfirmationSerializer(SubscriptionLinkSerializer):
    confirmed = serializers.BooleanField(help_text="Whether the address is confirmed.")


class UnsubscriptionSerializer(SubscriptionLinkSerializer):
    subscribed = serializers.BooleanField(
        help_text="Whether emails are still going (false once unsubscribed)."
    )
