"""API representations. Each audience gets its own field set: private contact data is
readable only through `SignalementSerializer`, which the views give to staff alone."""

import re
from collections.abc import Mapping
from copy import copy, deepcopy
from decimal import ROUND_HALF_EVEN, Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import slug_re
from django.db import models, transaction
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.validators import UniqueValidator

from . import geo
from . import photos as photo_files
from .extra import check_extra
from .models import (
    AGENTS_GROUP,
    Attachment,
    Category,
    Comment,
    ExtraField,
    Signalement,
    Status,
    fits_in_utc,
    with_writable_offset,
)
from .permissions import acts_as_reporter, is_owner
from .representation import FastRepresentationMixin

PRIVATE_FIELDS = ("contact_name", "contact_email", "contact_phone")
# Django's default username validator (ASCII letters, digits and @/./+/-/_).
USERNAME_RE = re.compile(r"[\w.@+-]+")


class StrictStringMixin:
    """Text fields take JSON strings only: DRF would turn 42 into "42"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(StrictStringMixin, serializers.CharField):
    pass


class StrictEmailField(StrictStringMixin, serializers.EmailField):
    pass


class StrictSlugField(StrictStringMixin, serializers.SlugField):
    pass


class StrictURLField(StrictStringMixin, serializers.URLField):
    pass


class StorableDateTimeField(serializers.DateTimeField):
    """An ISO 8601 datetime that can be stored: made timezone-aware, and refused when
    conversion to UTC would leave the calendar (naive 0001-01-01T00:00:00 in Paris)."""

    def to_internal_value(self, value):
        try:
            result = super().to_internal_value(value)
        except OverflowError:  # raised by DRF's ambiguity check near year 1
            self.fail("overflow")
        if not fits_in_utc(result):
            self.fail("overflow")
        return result

    def enforce_timezone(self, value):
        # Before standard time (Paris: 1911) a local offset has seconds, e.g. +00:09:21,
        # which RFC 3339 cannot write: such a datetime is given in UTC instead.
        return with_writable_offset(super().enforce_timezone(value))


class RoundingDecimalField(serializers.DecimalField):
    """A decimal whose digits beyond the stored decimal places are rounded rather than
    refused: phones send coordinates with 15 decimals, we keep 6 (about 11 cm)."""

    def validate_precision(self, value):
        if value.adjusted() < self.max_digits - self.decimal_places:
            value = value.quantize(Decimal(10) ** -self.decimal_places, rounding=ROUND_HALF_EVEN)
        return super().validate_precision(value)


class SafeSlugRelatedField(serializers.SlugRelatedField):
    """A related object named by a string key (category code, username). A value that
    cannot be such a key is refused before it reaches the database (a NUL byte is a 500
    on PostgreSQL)."""

    def __init__(self, *, pattern: re.Pattern, **kwargs):
        self.pattern = pattern
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if not self.pattern.fullmatch(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class CachedFieldsMixin:
    """A ModelSerializer builds its fields from the model on every instantiation (every
    request): the introspection is done once per class here, and each instance gets a
    deep copy (DRF fields copy themselves by re-running `__init__` with their
    arguments), exactly what DRF would have built."""

    def get_fields(self):
        cache_name = f"_fields_template_{type(self).__qualname__}"
        template = type(self).__dict__.get(cache_name)
        if template is None:
            template = super().get_fields()
            setattr(type(self), cache_name, template)
        return deepcopy(template)


class ValidatedModelSerializer(CachedFieldsMixin, serializers.ModelSerializer):
    """Runs the model's `clean()` (rules across fields) on the merged data, so that
    the API and the admin enforce the same rules; its errors become a 400."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.EmailField: StrictEmailField,
        models.SlugField: StrictSlugField,
        models.URLField: StrictURLField,
        models.DateTimeField: StorableDateTimeField,
        models.DecimalField: RoundingDecimalField,
    }

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = copy(self.instance) if self.instance else self.Meta.model()
        for name, value in attrs.items():
            setattr(instance, name, value)
        try:
            instance.clean()
        except DjangoValidationError as error:
            raise serializers.ValidationError(serializers.as_serializer_error(error)) from error
        return attrs


class TextSafeUniqueValidator(UniqueValidator):
    """Skips the uniqueness query for a value containing NUL, which the field's own
    validator already refuses and which PostgreSQL cannot even compare (a 500)."""

    def __call__(self, value, serializer_field):
        if isinstance(value, str) and "\x00" in value:
            return
        super().__call__(value, serializer_field)


class ChoiceSerializer(serializers.Serializer):
    key = StrictCharField(max_length=100)
    label = StrictCharField(max_length=200)


class ExtraFieldSerializer(ValidatedModelSerializer):
    # Explicit bounds: the model's integer range differs between SQLite and PostgreSQL,
    # and the schema must not depend on the database it was generated on.
    order = serializers.IntegerField(min_value=0, max_value=100_000, default=0)
    choices = ChoiceSerializer(
        many=True, required=False, help_text="The allowed values of list types."
    )

    class Meta:
        model = ExtraField
        fields = ["code", "label", "datatype", "required", "description", "order", "choices"]

    def validate(self, attrs):
        attrs["choices"] = [dict(choice) for choice in attrs.get("choices", [])]
        return super().validate(attrs)


class CategorySerializer(ValidatedModelSerializer):
    extra_fields = ExtraFieldSerializer(
        many=True,
        required=False,
        help_text="Questions that reports of this category answer in `extra`, in order. "
        "On update, the list given replaces the category's list.",
    )

    code = StrictSlugField(
        max_length=64,
        validators=[TextSafeUniqueValidator(queryset=Category.objects.all())],
        help_text="Stable identifier used by the API (the Open311 service_code).",
    )

    class Meta:
        model = Category
        fields = ["code", "name", "description", "group", "is_active", "extra_fields"]

    def validate_extra_fields(self, extra_fields):
        # The list replaces the category's list, in a partial update too: each item must
        # be complete (a partial update skips the items' required fields).
        required = [
            name
            for name, field in self.fields["extra_fields"].child.fields.items()
            if field.required
        ]
        missing = [
            {
                name: [ErrorDetail("This field is required.", code="required")]
                for name in required
                if name not in item
            }
            for item in extra_fields
        ]
        if any(missing):
            raise serializers.ValidationError(missing)
        codes = [field["code"] for field in extra_fields]
        if len(codes) != len(set(codes)):
            raise serializers.ValidationError(
                "Extra field codes must be unique within a category.", code="unique"
            )
        return extra_fields

    def validate(self, attrs):
        extra_fields = attrs.pop("extra_fields", None)
        attrs = super().validate(attrs)
        if extra_fields is not None:
            attrs["extra_fields"] = extra_fields
        return attrs

    @transaction.atomic
    def create(self, validated_data):
        extra_fields = validated_data.pop("extra_fields", [])
        category = super().create(validated_data)
        self._replace_extra_fields(category, extra_fields)
        return category

    @transaction.atomic
    def update(self, instance, validated_data):
        extra_fields = validated_data.pop("extra_fields", None)
        category = super().update(instance, validated_data)
        if extra_fields is not None:
            self._replace_extra_fields(category, extra_fields)
        return category

    @staticmethod
    def _replace_extra_fields(category: Category, extra_fields: list[dict]) -> None:
        category.extra_fields.all().delete()
        ExtraField.objects.bulk_create(
            ExtraField(category=category, **field) for field in extra_fields
        )


class AttachmentSerializer(FastRepresentationMixin, CachedFieldsMixin, serializers.ModelSerializer):
    """A photo of a report, as stored: re-encoded, without metadata."""

    url = serializers.SerializerMethodField(help_text="The photo.")
    thumbnail_url = serializers.SerializerMethodField(
        help_text=f"A JPEG at most {photo_files.THUMBNAIL_SIZE[0]}×{photo_files.THUMBNAIL_SIZE[1]} "
        "pixels, for lists."
    )

    class Meta:
        model = Attachment
        fields = [
            "id",
            "url",
            "thumbnail_url",
            "content_type",
            "size",
            "width",
            "height",
            "created_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "content_type": {"help_text": "`image/jpeg`, `image/png` or `image/webp`."},
            "size": {"help_text": "Bytes of the stored photo."},
            "width": {"help_text": "Pixels, upright."},
            "height": {"help_text": "Pixels, upright."},
        }

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, attachment) -> str:
        return self._absolute(attachment.file.url)

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, attachment) -> str:
        return self._absolute(attachment.thumbnail.url)

    def _absolute(self, url: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class AttachmentUploadSerializer(serializers.Serializer):
    photos = serializers.ListField(
        child=serializers.FileField(),
        allow_empty=False,
        help_text="One or several JPEG, PNG or WebP images (the field repeated). Each is "
        "checked by its content, re-encoded without metadata (EXIF, GPS position) after "
        "being turned upright, and given a thumbnail.",
    )

    def validate_photos(self, uploads) -> list[photo_files.Photo]:
        try:
            return photo_files.process_all(uploads)
        except photo_files.RejectedFiles as refused:
            raise serializers.ValidationError(
                {
                    index: [ErrorDetail(problem.message, problem.code)]
                    for index, problem in refused.problems.items()
                }
            ) from None


class SignalementSerializer(FastRepresentationMixin, ValidatedModelSerializer):
    """The full report, for staff: private contact fields readable, moderation fields
    writable. The status changes only through the workflow, never by a plain write."""

    storable_datetime_classes = (StorableDateTimeField,)

    reference = serializers.CharField(
        read_only=True, help_text="Human reference, e.g. SIG-2025-000123."
    )
    category = SafeSlugRelatedField(
        pattern=slug_re,
        slug_field="code",
        queryset=Category.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        help_text="Code of an active category, e.g. `eclairage-public`.",
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
    extra = serializers.DictField(
        required=False,
        help_text="Answers to the category's extra fields (see `/api/categories/{code}/`), "
        "by field code. Checked against the category: required fields, types, choices; "
        "unknown keys are refused. Changing the category checks them again.",
    )

    def validate(self, attrs):
        category = (
            attrs["category"] if "category" in attrs else getattr(self.instance, "category", None)
        )
        extra = attrs["extra"] if "extra" in attrs else getattr(self.instance, "extra", {})
        cleaned, problems = self._check_extra(category, extra)
        if problems:
            raise serializers.ValidationError({"extra": problems})
        attrs["extra"] = cleaned
        return super().validate(attrs)

    def to_internal_value(self, data):
        """The fields, then (in `validate`) the extra answers against the category. When
        some field is wrong, the answers are checked too, so that one reply names every
        problem: a client fixes them all at once."""
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as invalid:
            detail = invalid.detail
            if (
                isinstance(data, Mapping)
                and isinstance(detail, dict)
                and not {"category", "extra", "non_field_errors"} & set(detail)
            ):
                category = getattr(self.instance, "category", None)
                if "category" in data:
                    category = self.fields["category"].run_validation(data["category"])
                extra = data.get("extra", getattr(self.instance, "extra", {}))
                problems = self._check_extra(category, extra)[1]
                if problems:
                    detail["extra"] = problems
            raise

    @staticmethod
    def _check_extra(category, extra) -> tuple[dict, list | dict | None]:
        """The cleaned answers, and their problems as the `extra` error (a list for the
        whole object, a dict by field code), or None."""
        fields = category.extra_fields.all() if category else []
        cleaned, errors = check_extra(fields, extra)
        if not errors:
            return cleaned, None
        if None in errors:
            return cleaned, errors[None].messages
        return cleaned, {
            code: [ErrorDetail(message, error.code) for message in error.messages]
            for code, error in errors.items()
        }

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
            "duplicate_of",
            "is_public",
            "created_at",
            "updated_at",
            "resolved_at",
        ]
        read_only_fields = ["id", "uuid", "status", "created_at", "updated_at", "resolved_at"]
        extra_kwargs = {
            # Coordinates are JSON numbers, as map libraries expect.
            "latitude": {"coerce_to_string": False},
            "longitude": {"coerce_to_string": False},
            "contact_name": {"help_text": "Private: shown only to the reporter and staff."},
            "contact_email": {"help_text": "Private: shown only to the reporter and staff."},
            "contact_phone": {"help_text": "Private: shown only to the reporter and staff."},
        }


class PublicSignalementSerializer(SignalementSerializer):
    """What everyone but agents reads and writes. Contact fields are written on create
    (and by the reporter on their own report) but returned only to that reporter; triage
    fields are read-only (values sent for them are ignored) and assignment is hidden."""

    assigned_to = None
    duplicate_of = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta(SignalementSerializer.Meta):
        fields = [name for name in SignalementSerializer.Meta.fields if name != "assigned_to"]
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
    status = serializers.ChoiceField(choices=Status.choices, help_text="The new status.")
    note = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=4000,
        help_text="Optional public note, shown with the status change.",
    )


class CommentSerializer(ValidatedModelSerializer):
    class Meta:
        model = Comment
        fields = ["id", "body", "is_internal", "status", "author_role", "created_at"]
        read_only_fields = ["id", "status", "author_role", "created_at"]


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
