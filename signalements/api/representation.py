"""Fast reads: DRF's representation of a model, without its per-field overhead.

`Serializer.to_representation` walks the fields of each object through generic code:
`get_attribute` with its callable checks and exception handling, then the field's
`to_representation`, which for dates looks up the current time zone every time. For a
page of 100 reports of 25 fields that is most of the request's time.

`FastRepresentationMixin` computes, once per serializer instance (a list's child serves
the whole page), one reader per field: a direct attribute read with the field's own
conversion for the common field classes, DRF's generic path for anything else. The
output is the same, value for value (`tests/test_representation.py` compares them over
varied reports); only the exact DRF classes listed here are read the fast way, so a
subclass with its own `to_representation` keeps it.
"""

from collections.abc import Mapping

from django.db.models import Model
from rest_framework import fields, relations, serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

from signalements.models import with_writable_offset

SKIP = object()


def _text(attr):
    def read(obj):
        value = getattr(obj, attr)
        return None if value is None else str(value)

    return read


def _choice(attr, field):
    choices = field.choice_strings_to_values

    def read(obj):
        value = getattr(obj, attr)
        if value in ("", None):
            return value
        return choices.get(str(value), value)

    return read


def _boolean(attr, field):
    def read(obj):
        value = getattr(obj, attr)
        return None if value is None else field.to_representation(value)

    return read


def _integer(attr):
    def read(obj):
        value = getattr(obj, attr)
        return None if value is None else int(value)

    return read


def _datetime(attr, field, *, utc_when_seconds_offset):
    """DRF's ISO 8601 output (`Z` for UTC) in the field's time zone, looked up once.
    Naive or out-of-range values take the field's own path (and its errors)."""
    zone = field.timezone if hasattr(field, "timezone") else field.default_timezone()

    def read(obj):
        value = getattr(obj, attr)
        if not value:
            return None
        if zone is None or value.utcoffset() is None:
            return field.to_representation(value)
        try:
            value = value.astimezone(zone)
        except OverflowError:
            return field.to_representation(value)
        if utc_when_seconds_offset:
            value = with_writable_offset(value)
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return read


def _slug_related(attr, field):
    slug_field = field.slug_field

    def read(obj):
        related = getattr(obj, attr)
        return None if related is None else getattr(related, slug_field)

    return read


def _primary_key_related(attr):
    def read(obj):
        return obj.serializable_value(attr)

    return read


def _direct(attr, field):
    """A plain attribute through the field's own conversion (DRF's path without
    `get_attribute`'s generic machinery)."""
    convert = field.to_representation

    def read(obj):
        value = getattr(obj, attr)
        return None if value is None else convert(value)

    return read


def _generic(field):
    """DRF's own loop body, for any field (Serializer.to_representation)."""

    def read(obj):
        try:
            attribute = field.get_attribute(obj)
        except SkipField:
            return SKIP
        check_for_none = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
        return None if check_for_none is None else field.to_representation(attribute)

    return read


def _iso_8601(field) -> bool:
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    return isinstance(output_format, str) and output_format.lower() == fields.ISO_8601


def reader_for(field, model: type[Model], storable_datetime_classes=()):
    """The fast reader of a field, or DRF's generic one."""
    attrs = field.source_attrs
    if len(attrs) != 1 or model is None:
        return _generic(field)
    attr = attrs[0]
    # Only a model field or a property is read directly (DRF would call a method).
    if not (_is_model_field(model, attr) or isinstance(getattr(model, attr, None), property)):
        return _generic(field)
    kind = type(field)
    if kind is serializers.ChoiceField:
        return _choice(attr, field)
    if issubclass(kind, fields.CharField) and "to_representation" not in _overrides(
        kind, fields.CharField
    ):
        return _text(attr)
    if kind is serializers.UUIDField and field.uuid_format == "hex_verbose":
        return _text(attr)
    if kind is serializers.BooleanField:
        return _boolean(attr, field)
    if kind is serializers.IntegerField or (
        kind is serializers.BigIntegerField
        and not getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING)
    ):
        return _integer(attr)
    if issubclass(kind, fields.DateTimeField) and _iso_8601(field):
        own = _overrides(kind, fields.DateTimeField)
        if own <= {"enforce_timezone", "to_internal_value"} and (
            "enforce_timezone" not in own or kind in storable_datetime_classes
        ):
            return _datetime(attr, field, utc_when_seconds_offset="enforce_timezone" in own)
    if (
        issubclass(kind, relations.SlugRelatedField)
        and "to_representation" not in _overrides(kind, relations.SlugRelatedField)
        and "__" not in field.slug_field
    ):
        return _slug_related(attr, field)
    if kind is relations.PrimaryKeyRelatedField and field.pk_field is None:
        return _primary_key_related(attr)
    if isinstance(field, fields.Field) and "get_attribute" not in _overrides(kind, fields.Field):
        return _direct(attr, field)
    return _generic(field)


def _is_model_field(model, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except Exception:
        return False
    return True


def _overrides(kind, base) -> set[str]:
    """The methods that `kind` defines between itself and `base` (excluded)."""
    names = set()
    for klass in kind.__mro__:
        if klass is base:
            break
        names.update(name for name in vars(klass) if not name.startswith("__"))
    return names


class FastRepresentationMixin:
    """For a ModelSerializer: the same `to_representation`, faster (see above).
    `storable_datetime_classes` names the DateTimeField subclasses whose
    `enforce_timezone` only adds "a local offset with seconds is given in UTC"."""

    storable_datetime_classes: tuple = ()

    def to_representation(self, instance):
        if isinstance(instance, Mapping):
            return super().to_representation(instance)
        readers = self.__dict__.get("_fast_readers")
        if readers is None:
            model = getattr(getattr(self, "Meta", None), "model", None)
            readers = self._fast_readers = [
                (field.field_name, reader_for(field, model, self.storable_datetime_classes))
                for field in self._readable_fields
            ]
        result = {}
        for name, read in readers:
            value = read(instance)
            if value is not SKIP:
                result[name] = value
        return result
