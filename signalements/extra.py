"""Typed extra fields: the questions a category asks (Open311 service attributes) and
the rules that a report's `extra` answers follow. Kept apart from the models so that
the model, the admin and the API share one set of rules."""

import math

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

STRING_MAX_LENGTH = 500
TEXT_MAX_LENGTH = 4000


class Datatype(models.TextChoices):
    STRING = "string", _("String")
    NUMBER = "number", _("Number")
    DATETIME = "datetime", _("Date and time")
    TEXT = "text", _("Text")
    SINGLEVALUELIST = "singlevaluelist", _("One value from a list")
    MULTIVALUELIST = "multivaluelist", _("Several values from a list")


LIST_DATATYPES = frozenset({Datatype.SINGLEVALUELIST, Datatype.MULTIVALUELIST})


def choices_problem(datatype: str, choices) -> str | None:
    """What is wrong with an extra field's choices for its datatype, or None."""
    if datatype not in LIST_DATATYPES:
        return _("Only list types have choices.") if choices else None
    if not isinstance(choices, list) or not choices:
        return _("List types need at least one choice.")
    keys = []
    for choice in choices:
        if not (
            isinstance(choice, dict)
            and set(choice) == {"key", "label"}
            and all(isinstance(choice[k], str) and choice[k].strip() for k in ("key", "label"))
        ):
            return _('Each choice is {"key": "…", "label": "…"} with non-empty strings.')
        if "\x00" in choice["key"] + choice["label"]:
            return _("Choices cannot contain NUL characters.")
        keys.append(choice["key"])
    if len(keys) != len(set(keys)):
        return _("Choice keys must be unique.")
    return None


def _text(value, max_length: int):
    if not isinstance(value, str):
        raise ValidationError(_("Expected a string."), code="invalid")
    if "\x00" in value:
        raise ValidationError(
            _("Null characters are not allowed."), code="null_characters_not_allowed"
        )
    if len(value) > max_length:
        raise ValidationError(
            _("Ensure this value has at most %(max)d characters."),
            code="max_length",
            params={"max": max_length},
        )
    return value


def _number(value):
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(_("Expected a number."), code="invalid")
    return value


def _datetime(value):
    parsed = parse_datetime(value) if isinstance(value, str) and "\x00" not in value else None
    if parsed is None:
        raise ValidationError(_("Expected an ISO 8601 date and time."), code="invalid")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed.isoformat()


def _one_of(value, keys: list[str]):
    if not isinstance(value, str) or value not in keys:
        raise ValidationError(
            _("Expected one of: %(keys)s."), code="invalid_choice", params={"keys": ", ".join(keys)}
        )
    return value


def _some_of(value, keys: list[str]):
    if not isinstance(value, list) or not all(isinstance(v, str) and v in keys for v in value):
        raise ValidationError(
            _("Expected a list of values among: %(keys)s."),
            code="invalid_choice",
            params={"keys": ", ".join(keys)},
        )
    if len(value) != len(set(value)):
        raise ValidationError(_("Values must not repeat."), code="invalid_choice")
    return value


def clean_value(field, value):
    """The cleaned answer to one extra field (`field` has datatype and choices)."""
    keys = [choice["key"] for choice in field.choices or []]
    match field.datatype:
        case Datatype.STRING:
            return _text(value, STRING_MAX_LENGTH)
        case Datatype.TEXT:
            return _text(value, TEXT_MAX_LENGTH)
        case Datatype.NUMBER:
            return _number(value)
        case Datatype.DATETIME:
            return _datetime(value)
        case Datatype.SINGLEVALUELIST:
            return _one_of(value, keys)
        case Datatype.MULTIVALUELIST:
            return _some_of(value, keys)
    raise ValidationError(_("Unknown datatype."), code="invalid")


# Unknown keys named one by one in an error, at most; beyond, one error for them all.
UNKNOWN_KEYS_NAMED = 10


def check_extra(fields, extra) -> tuple[dict, dict[str | None, ValidationError]]:
    """Check `extra` against a category's extra fields (any iterable of objects with
    code, datatype, required and choices). Returns the cleaned object and the problems
    by field code; None is the key for a problem with the object as a whole."""
    if not isinstance(extra, dict):
        return {}, {None: ValidationError(_("Expected an object."), code="invalid")}
    fields = {field.code: field for field in fields}
    if len(extra.keys() - fields.keys()) > UNKNOWN_KEYS_NAMED:
        # One error, not one per key: a client sending thousands of keys gets a short
        # answer, quickly.
        message = ngettext(
            "Too many answers: this category has %(count)d extra field.",
            "Too many answers: this category has %(count)d extra fields.",
            len(fields),
        ) % {"count": len(fields)}
        return {}, {None: ValidationError(message, code="too_many_keys")}
    cleaned, errors = {}, {}
    for code in extra.keys() - fields.keys():
        errors[code] = ValidationError(_("Unknown field for this category."), code="unknown_field")
    for code, field in fields.items():
        value = extra.get(code)
        if value is None or value == "" or value == []:
            if field.required:
                errors[code] = ValidationError(_("This field is required."), code="required")
            continue
        try:
            cleaned[code] = clean_value(field, value)
        except ValidationError as error:
            errors[code] = error
    return cleaned, errors
