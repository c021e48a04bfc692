"""API representations. Each audience gets its own field set: private contact data is
readable only through `SignalementSerializer`, which the views give to staff alone."""

from copy import copy
from decimal import ROUND_HALF_EVEN

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import slug_re
from django.db import models
from rest_framework import serializers

from .models import Category, Signalement, fits_in_utc

PRIVATE_FIELDS = ("contact_name", "contact_email", "contact_phone")


class StorableDateTimeField(serializers.DateTimeField):
    """An ISO 8601 datetime that can be stored: made timezone-aware, and refused when
    conversion to UTC would leave the calendar (e.g. 0001-01-01T00:00:00+05:00)."""

    default_error_messages = {"out_of_range": "Datetime is out of range."}

    def to_internal_value(self, value):
        result = super().to_internal_value(value)
        if not fits_in_utc(result):
            self.fail("out_of_range")
        return result


class CategoryCodeField(serializers.SlugRelatedField):
    """A category given by its code. Anything that is not a slug is refused before it
    reaches the database (a NUL byte in a query parameter is a 500 on PostgreSQL)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not slug_re.fullmatch(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class ValidatedModelSerializer(serializers.ModelSerializer):
    """Runs the model's `clean()` (rules across fields) on the merged data, so that
    the API and the admin enforce the same rules; its errors become a 400."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: StorableDateTimeField,
    }

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = copy(self.instance) if self.instance else self.Meta.model()
        for name, value in attrs.items():
            setattr(instance, name, value)
        try:
            instance.clean()
        except DjangoValidationError as error:
            raise serializers.ValidationError(serializers.as_serializer_error(error))
        return attrs


class CategorySerializer(ValidatedModelSerializer):
    class Meta:
        model = Category
        fields = ["code", "name", "description", "group", "is_active"]


class SignalementSerializer(ValidatedModelSerializer):
    """The full report, for staff: private contact fields readable, moderation fields
    writable. The status changes only through the workflow, never by a plain write."""

    reference = serializers.CharField(
        read_only=True, help_text="Human reference, e.g. SIG-2025-000123."
    )
    category = CategoryCodeField(
        slug_field="code",
        queryset=Category.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        help_text="Code of an active category, e.g. `eclairage-public`.",
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
            *PRIVATE_FIELDS,
            "is_public",
            "created_at",
            "updated_at",
            "resolved_at",
        ]
        read_only_fields = ["id", "uuid", "status", "created_at", "updated_at", "resolved_at"]
        extra_kwargs = {
            # Coordinates are JSON numbers; extra precision is rounded to the 6 stored
            # decimals (about 11 cm) rather than refused, as phones send 15 digits.
            "latitude": {"coerce_to_string": False, "rounding": ROUND_HALF_EVEN},
            "longitude": {"coerce_to_string": False, "rounding": ROUND_HALF_EVEN},
            "contact_name": {"help_text": "Private: shown only to the reporter and staff."},
            "contact_email": {"help_text": "Private: shown only to the reporter and staff."},
            "contact_phone": {"help_text": "Private: shown only to the reporter and staff."},
        }


class PublicSignalementSerializer(SignalementSerializer):
    """What everyone else reads and writes: contact fields can be given on create but
    are never returned; moderation fields are read-only (sent values are ignored)."""

    class Meta(SignalementSerializer.Meta):
        read_only_fields = [
            *SignalementSerializer.Meta.read_only_fields,
            "priority",
            "is_public",
        ]
        extra_kwargs = {
            **SignalementSerializer.Meta.extra_kwargs,
            **{name: {"write_only": True} for name in PRIVATE_FIELDS},
        }
