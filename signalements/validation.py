"""One source of validation for what clients send (STYLE.md, NetBox's
`ValidatedModelSerializer`): the rules live on the models (validators, choices, lengths,
`clean()`); the DRF fields and serializer bases here apply them, strictly, in every door
that takes JSON or form data. The REST API's serializers extend them, and Open311 creates
reports through `SignalementWriteSerializer`, so that both refuse the same input with
the same codes. (The admin validates through the same models with Django's forms.)"""

import re
from collections.abc import Mapping
from copy import copy, deepcopy
from decimal import ROUND_HALF_EVEN, Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import slug_re
from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.validators import UniqueValidator

from .extra import check_extra
from .models import Category, Signalement, fits_in_utc, with_writable_offset

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

    def to_internal_value(self, data):
        # DRF reads a blank string as null; the schema says a number or null.
        if isinstance(data, str) and not data.strip():
            self.fail("invalid")
        return super().to_internal_value(data)

    def validate_precision(self, value):
        rounded = value
        if value.adjusted() < self.max_digits - self.decimal_places:
            rounded = value.quantize(Decimal(10) ** -self.decimal_places, rounding=ROUND_HALF_EVEN)
        rounded = super().validate_precision(rounded)
        # The bounds hold for the value sent, not its rounding: 90.00000000000001 is no
        # latitude, though it rounds to 90.000000 (found by the live fuzzing).
        if self.max_value is not None and value > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        if self.min_value is not None and value < self.min_value:
            self.fail("min_value", min_value=self.min_value)
        return rounded


class SafeSlugRelatedField(serializers.SlugRelatedField):
    """A related object named by a string key (category code, username). A value that
    cannot be such a key is refused before it reaches the database (a NUL byte is a 500
    on PostgreSQL)."""

    def __init__(self, *, pattern: re.Pattern, **kwargs):
        self.pattern = pattern
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty):
        # DRF reads "" as null for a relation; the schema says a code is not empty (and
        # null is how to say "none").
        if data == "":
            self.fail("invalid")
        return super().run_validation(data)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if not self.pattern.fullmatch(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


# Keys of a report's `extra` object, at most, whatever the category (which has fewer
# fields: more keys than it has fields are refused as one error, see `extra.py`).
EXTRA_MAX_KEYS = 100


class BoundedDictField(serializers.DictField):
    """A JSON object of at most `max_keys` keys, refused before its values are looked at
    (a body of 200,000 keys is one error, answered in milliseconds)."""

    default_error_messages = {"max_keys": _("Ensure this object has no more than {max_keys} keys.")}

    def __init__(self, *, max_keys: int, **kwargs):
        self.max_keys = max_keys
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, dict) and len(data) > self.max_keys:
            self.fail("max_keys", max_keys=self.max_keys)
        return super().to_internal_value(data)


class CachedFieldsMixin:
    """A ModelSerializer builds its fields from the model on every instantiation (every
    request): the introspection is done once per class here, and each instance gets new
    fields, exactly what DRF would have built. A field is made again from its arguments
    (what DRF's own copy does, less the deep copy of the arguments, which fields only
    read: the category's queryset is cloned with `.all()` each time it is used); a
    nested serializer or a list of related objects (`many=True`), which bind their
    child, are deep-copied."""

    def get_fields(self):
        cache_name = f"_fields_template_{type(self).__qualname__}"
        template = type(self).__dict__.get(cache_name)
        if template is None:
            template = super().get_fields()
            setattr(type(self), cache_name, template)
        return {name: _fresh(field) for name, field in template.items()}


def _fresh(field: serializers.Field) -> serializers.Field:
    if isinstance(field, serializers.BaseSerializer | serializers.ManyRelatedField):
        return deepcopy(field)
    return field.__class__(*field._args, **field._kwargs)


class NamedChoicesField(serializers.ChoiceField):
    """A choice whose refusal lists the valid values: a client learns what to send from
    the error alone."""

    default_error_messages = {
        "invalid_choice": _('"{input}" is not a valid choice. Expected one of: {choices}.')
    }

    def fail(self, key, **kwargs):
        if key == "invalid_choice":
            kwargs["choices"] = ", ".join(str(choice) for choice in self.choice_strings_to_values)
        super().fail(key, **kwargs)


class ValidatedModelSerializer(CachedFieldsMixin, serializers.ModelSerializer):
    """Runs the model's `clean()` (rules across fields) on the merged data, so that
    the API and the admin enforce the same rules; its errors become a 400."""

    serializer_choice_field = NamedChoicesField
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
        many_to_many = {field.name for field in instance._meta.many_to_many}
        for name, value in attrs.items():
            if name not in many_to_many:  # set once saved, by the serializer
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


class SignalementWriteSerializer(ValidatedModelSerializer):
    """A report as clients write it: the model's fields and rules, its category named by
    code, and the answers to the category's extra fields checked against it. The REST
    API's report serializers extend it (audiences, representation); Open311 creates
    reports with it as it is (the public's fields)."""

    category = SafeSlugRelatedField(
        pattern=slug_re,
        slug_field="code",
        queryset=Category.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        help_text="Code of an active category, e.g. `eclairage-public`.",
    )
    extra = BoundedDictField(
        max_keys=EXTRA_MAX_KEYS,
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
            return cleaned, [ErrorDetail(m, errors[None].code) for m in errors[None].messages]
        return cleaned, {
            code: [ErrorDetail(message, error.code) for message in error.messages]
            for code, error in errors.items()
        }

    class Meta:
        model = Signalement
        fields = [
            "title",
            "description",
            "date",
            "category",
            "latitude",
            "longitude",
            "address",
            "media_url",
            "extra",
            "contact_name",
            "contact_email",
            "contact_phone",
        ]
