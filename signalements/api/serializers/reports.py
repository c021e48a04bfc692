"""Reports as the REST API shows them. Each audience gets its own field set: private
contact data is readable only through `SignalementSerializer`, which the views give to
staff alone, and through `PublicSignalementSerializer` to the report's own reporter. What
clients may write, and how it is checked, is the domain's `SignalementWriteSerializer`."""

from django.contrib.auth import get_user_model
from django.core.validators import slug_re
from django.db.models import Q
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from signalements import geo
from signalements.models import AGENTS_GROUP, Department, Signalement, Status
from signalements.roles import acts_as_reporter, is_owner
from signalements.validation import (
    USERNAME_RE,
    CachedFieldsMixin,
    NamedChoicesField,
    SafeSlugRelatedField,
    SignalementWriteSerializer,
    StorableDateTimeField,
    StrictCharField,
)

from ..representation import FastRepresentationMixin
from .attachments import AttachmentSerializer

PRIVATE_FIELDS = ("contact_name", "contact_email", "contact_phone")


@extend_schema_field({"type": "array", "items": {"type": "string"}, "readOnly": True})
class AreaCodesField(serializers.ReadOnlyField):
    """A list of codes, as the model gives it."""


class SignalementSerializer(FastRepresentationMixin, SignalementWriteSerializer):
    """The full report, for staff: private contact fields readable, moderation fields
    writable. The status changes only through the workflow, never by a plain write."""

    storable_datetime_classes = (StorableDateTimeField,)

    reference = serializers.CharField(
        read_only=True, help_text="Human reference, e.g. SIG-2025-000123."
    )
    assigned_to = SafeSlugRelatedField(
        pattern=USERNAME_RE,
        slug_field="username",
        queryset=get_user_model()
        .objects.filter(Q(groups__name=AGENTS_GROUP) | Q(is_superuser=True))
        .distinct(),
        required=False,
        allow_null=True,
        help_text="Username of the agent in charge (agents only).",
    )
    department = SafeSlugRelatedField(
        pattern=slug_re,
        slug_field="code",
        queryset=Department.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        help_text="Code of the (active) department in charge (`/api/departments/`). Set by "
        "routing on create and when the category or the place changes; an agent may set it by hand "
        "(the routing then leaves it, for that write; `keep_routing` keeps it for good).",
    )
    areas = AreaCodesField(
        source="area_codes",
        help_text="Codes of the areas (`/api/areas/`) that contain the report's location, "
        "sorted; computed on create and when the location changes.",
    )
    keep_routing = serializers.BooleanField(
        required=False,
        help_text="Agents only: when true, a change of category or place does not route "
        "the report again (its department and priority stay as set).",
    )
    duplicate_of = serializers.PrimaryKeyRelatedField(
        queryset=Signalement.objects.all(),
        required=False,
        allow_null=True,
        help_text="Id of the report this one duplicates.",
    )
    attachments = AttachmentSerializer(
        source="photos",
        many=True,
        read_only=True,
        help_text="Photos, oldest first (added through `/attachments/`).",
    )

    class Meta:
        model = Signalement
        fields = [
            "id",
            "uuid",
            "reference",
            "title",
            "description",
            "date",
            "category",
            "status",
            "priority",
            "latitude",
            "longitude",
            "address",
            "media_url",
            "extra",
            "attachments",
            *PRIVATE_FIELDS,
            "assigned_to",
            "department",
            "areas",
            "due_at",
            "keep_routing",
            "duplicate_of",
            "is_public",
            "created_at",
            "updated_at",
            "resolved_at",
        ]
        read_only_fields = [
            "id",
            "uuid",
            "status",
            "due_at",
            "created_at",
            "updated_at",
            "resolved_at",
        ]
        extra_kwargs = {
            # Coordinates are JSON numbers, as map libraries expect.
            "latitude": {"coerce_to_string": False},
            "longitude": {"coerce_to_string": False},
            "contact_name": {"help_text": "Private: shown only to the reporter and staff."},
            "contact_email": {"help_text": "Private: shown only to the reporter and staff."},
            "contact_phone": {"help_text": "Private: shown only to the reporter and staff."},
            "due_at": {
                "help_text": "When the report is due: its creation plus its category's "
                "service level (calendar hours, or working days without weekends and "
                "public holidays); null when none applies."
            },
        }


class PublicSignalementSerializer(SignalementSerializer):
    """What everyone but agents reads and writes. Contact fields are written on create
    (and by the reporter on their own report) but returned only to that reporter; triage
    fields are read-only (values sent for them are ignored) and assignment is hidden."""

    assigned_to = None
    keep_routing = None
    department = serializers.SlugRelatedField(
        slug_field="code",
        read_only=True,
        help_text="Code of the department in charge (`/api/departments/`), or null.",
    )
    duplicate_of = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta(SignalementSerializer.Meta):
        fields = [
            name
            for name in SignalementSerializer.Meta.fields
            if name not in ("assigned_to", "keep_routing")
        ]
        read_only_fields = [
            *SignalementSerializer.Meta.read_only_fields,
            "priority",
            "is_public",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        user = request.user if request else None
        if not acts_as_reporter(request, instance):
            for name in PRIVATE_FIELDS:
                data.pop(name, None)
        original = instance.duplicate_of
        if original is not None and not (original.is_public or is_owner(user, original)):
            data["duplicate_of"] = None  # a report the caller may not see does not exist
        return data


class TransitionSerializer(serializers.Serializer):
    status = NamedChoicesField(choices=Status.choices, help_text="The new status.")
    note = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=4000,
        help_text="Optional public note, shown with the status change.",
    )


class SimilarSignalementSerializer(
    FastRepresentationMixin, CachedFieldsMixin, serializers.ModelSerializer
):
    """A possible duplicate: enough to recognise it, and how far it is."""

    reference = serializers.CharField(read_only=True)
    category = serializers.SlugRelatedField(slug_field="code", read_only=True)
    distance_m = serializers.SerializerMethodField(help_text="Metres from the report compared.")

    class Meta:
        model = Signalement
        fields = [
            "id",
            "reference",
            "title",
            "description",
            "category",
            "status",
            "latitude",
            "longitude",
            "created_at",
            "distance_m",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "latitude": {"coerce_to_string": False},
            "longitude": {"coerce_to_string": False},
        }

    def get_distance_m(self, candidate) -> float:
        origin = self.context["origin"]
        return round(
            geo.haversine_m(
                float(origin.latitude),
                float(origin.longitude),
                float(candidate.latitude),
                float(candidate.longitude),
            ),
            1,
        )


class CreatedSignalementSerializer(SignalementSerializer):
    """The create response: the report, and open reports that may describe the same
    problem (same category, nearby, recent), nearest first."""

    possible_duplicates = SimilarSignalementSerializer(many=True, read_only=True)
    reporter_token = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="For an anonymous create only (null otherwise), and only in this "
        "response: a secret to send back as the `X-Reporter-Token` header to add photos "
        "to this report and edit it, while it is `new`, until `reporter_token_expires_at`. "
        "Keep it on the device; it is stored hashed and cannot be shown again.",
    )
    reporter_token_expires_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta(SignalementSerializer.Meta):
        fields = [
            *SignalementSerializer.Meta.fields,
            "possible_duplicates",
            "reporter_token",
            "reporter_token_expires_at",
        ]
