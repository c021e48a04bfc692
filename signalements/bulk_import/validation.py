"""Checking an import's rows by the API's rules, fast.

Every row is checked as `SignalementWriteSerializer` checks a report created through
the API (its fields, validators and messages, the category by code among the active
ones, the category's extra answers), plus the migration's own rules: dates not in the
future, a resolution date for resolved reports only and not before the creation, the
department by code (`ImportSerializer`).

A serializer costs about a millisecond a row (its category alone is a query): 20 rows a
second short of the import's rate by three orders of magnitude. So `RowValidator`
checks the usual shapes of values itself, with the field's own limits read from the
serializer's fields (a trimmed string within its length, an ISO 8601 date, a coordinate
of at most six decimals, a code among those read once), then the same rules across
fields, without touching the database; a row it cannot vouch for goes to the serializer,
which has the last word and writes every error. tests/test_import.py checks that the
fast checks only ever accept what the serializer accepts, with the same result."""

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import (
    EmailValidator,
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
    slug_re,
)
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from ..extra import check_extra
from ..models import Category, Department, Signalement, Status, validate_not_in_future
from ..validation import (
    BoundedDictField,
    RoundingDecimalField,
    SafeSlugRelatedField,
    SignalementWriteSerializer,
    StorableDateTimeField,
    StrictCharField,
    StrictEmailField,
)
from .reading import MIGRATION_COLUMNS


def migration_problems(attrs: dict, created_at: datetime) -> dict[str, list[str]]:
    """The rules of the migration's columns across fields. A resolution date belongs to a
    resolved report, as the workflow sets it (`services.transition`), and every resolved
    report has one; it does not come before the report's creation (`created_at`, else
    the import's time)."""
    status = attrs.get("status", Status.NEW)
    resolved_at = attrs.get("resolved_at")
    created_at = attrs.get("created_at") or created_at
    if resolved_at is None:
        if status == Status.RESOLVED:
            return {"resolved_at": [_("A resolved report needs its resolution date.")]}
        return {}
    if status != Status.RESOLVED:
        return {"resolved_at": [_("Only a resolved report has a resolution date.")]}
    if resolved_at < created_at:
        return {"resolved_at": [_("The resolution cannot come before the creation.")]}
    return {}


class ImportSerializer(SignalementWriteSerializer):
    """A row of an import, checked as the API checks a report (the fields, validators,
    messages and rules of `SignalementWriteSerializer`), plus the migration's columns.
    The reference of `RowValidator`, and the author of every row's errors."""

    external_id = StrictCharField(
        max_length=Signalement._meta.get_field("external_id").max_length,
        required=False,
        allow_blank=True,
        allow_null=True,
    )
    department = SafeSlugRelatedField(
        pattern=slug_re,
        slug_field="code",
        queryset=Department.objects.all(),
        required=False,
        allow_null=True,
    )
    created_at = StorableDateTimeField(required=False, validators=[validate_not_in_future])
    resolved_at = StorableDateTimeField(
        required=False, allow_null=True, validators=[validate_not_in_future]
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        problems = migration_problems(attrs, self.context.get("now") or timezone.now())
        if problems:
            raise serializers.ValidationError(problems)
        return attrs

    class Meta(SignalementWriteSerializer.Meta):
        fields = [*SignalementWriteSerializer.Meta.fields, *MIGRATION_COLUMNS]


# What a fast check answers when it cannot vouch for a value.
MISS = object()
_SURROGATE = re.compile("[\ud800-\udfff]")
# Shapes of values whose checks are done here; any other goes through the field.
_DATETIME = re.compile(r"(19|2\d)\d\d-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:\d\d)?")
_DECIMAL = re.compile(r"-?\d{1,3}(\.\d{1,6})?")
# A strict subset of what Django's EmailValidator accepts (dot-atom names, a domain of
# letter-digit labels and an alphabetic top-level domain).
_EMAIL = re.compile(
    r"[A-Za-z0-9_+-]+(\.[A-Za-z0-9_+-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}"
)
_TEXT_VALIDATORS = frozenset(
    {MaxLengthValidator, ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator}
)


def _text_check(field: serializers.CharField, *, email: bool) -> Callable:
    """A CharField's run_validation for a string: stripped, not blank unless allowed,
    at most `max_length` characters, no NUL, no lone surrogate (and a plain email)."""
    max_length = min(
        [field.max_length]
        + [v.limit_value for v in field.validators if isinstance(v, MaxLengthValidator)]
    )
    allow_blank = field.allow_blank

    def check(value):
        if type(value) is not str:
            return MISS
        text = value.strip()
        if not text:
            return "" if allow_blank else MISS
        if len(text) > max_length or "\x00" in text:
            return MISS
        if not text.isascii() and _SURROGATE.search(text):
            return MISS
        if email and not _EMAIL.fullmatch(text):
            return MISS
        return text

    return check


def _decimal_check(field: RoundingDecimalField) -> Callable:
    """A coordinate of at most 3 + 6 digits, in range: exact, so DRF's rounding and
    precision checks leave it as it is."""
    low, high = field.min_value, field.max_value
    step = Decimal(1).scaleb(-field.decimal_places)

    def check(value):
        kind = type(value)
        if kind is float or kind is int:
            value = repr(value)
        elif kind is not str:
            return MISS
        if not _DECIMAL.fullmatch(value):
            return MISS
        number = Decimal(value)
        if not low <= number <= high:
            return MISS
        return number.quantize(step)

    return check


def _memo_check(field: serializers.Field) -> Callable:
    """A field with few distinct values (status, priority, is_public): each value is
    validated once by the field, and its result kept."""
    known: dict = {}

    def check(value):
        key = (type(value), value)
        try:
            return known[key]
        except KeyError:
            pass
        except TypeError:  # unhashable: a list or an object
            return MISS
        try:
            known[key] = field.run_validation(value)
        except (serializers.ValidationError, DjangoValidationError):
            return MISS
        return known[key]

    return check


_BY_CODE = ("category", "department")


def _code_check(known: dict) -> Callable:
    """A category or department by code, among those read once: any other code (a
    category activated since, or none) is for the serializer to look up."""

    def check(value):
        return known.get(value, MISS) if type(value) is str else MISS

    return check


def _object_check(max_keys: int) -> Callable:
    def check(value):
        if type(value) is not dict or len(value) > max_keys:
            return MISS
        return value  # JSON keys are strings, and DictField keeps the values

    return check


class RowValidator:
    """Checks rows as `ImportSerializer` does, fast (see the module's doc). The fast
    checks never touch the database; the serializer, for the rows they cannot vouch
    for, does: `database` is held while it runs (the import's writer shares the
    connection)."""

    def __init__(self, database: AbstractContextManager | None = None):
        self.database = database or nullcontext()
        self.fields = ImportSerializer().fields
        self.categories = {
            category.code: category
            for category in Category.objects.filter(is_active=True)
            .select_related("department")
            .prefetch_related("extra_fields")
        }
        self.extra_fields = {
            category.pk: list(category.extra_fields.all()) for category in self.categories.values()
        }
        # An empty `extra` is valid for a category without required questions.
        self.empty_extra_ok = {
            category_id
            for category_id, fields in self.extra_fields.items()
            if not any(f.required for f in fields)
        }
        self.departments = {department.code: department for department in Department.objects.all()}
        # The readers give known columns only: the serializer's fields. Where a fast
        # check cannot vouch for a value, the field's own run_validation decides (none
        # of them reads the database), but for a code not found among those read once:
        # the serializer looks it up.
        self.checks = {
            name: (self._fast_check(name, f), None if name in _BY_CODE else f)
            for name, f in self.fields.items()
        }
        self.required = frozenset(name for name, f in self.fields.items() if f.required)
        self.nullable = frozenset(name for name, f in self.fields.items() if f.allow_null)
        self.start(timezone.now())

    def start(self, now: datetime) -> None:
        """A new batch at `now`: dates after `now` plus the allowed skew are not vouched
        for here (the serializer reads the clock later, so it is never stricter)."""
        self.now = now
        self.latest = now + settings.SIGNALEMENT_DATE_CLOCK_SKEW

    def _fast_check(self, name: str, f: serializers.Field) -> Callable:
        kinds = {type(validator) for validator in f.validators}
        if name == "category":
            return _code_check(self.categories)
        if name == "department":
            return _code_check(self.departments)
        if type(f) is StrictCharField and f.trim_whitespace and kinds <= _TEXT_VALIDATORS:
            return _text_check(f, email=False)
        if type(f) is StrictEmailField and kinds <= _TEXT_VALIDATORS | {EmailValidator}:
            return _text_check(f, email=True)
        if type(f) is StorableDateTimeField and f.validators == [validate_not_in_future]:
            return self._datetime_check(f)
        if type(f) is RoundingDecimalField and kinds <= {MinValueValidator, MaxValueValidator}:
            return _decimal_check(f)
        if type(f) is BoundedDictField and not f.validators:
            return _object_check(f.max_keys)
        if isinstance(f, serializers.ChoiceField | serializers.BooleanField):
            return _memo_check(f)
        return lambda value: MISS

    def _datetime_check(self, f: StorableDateTimeField) -> Callable:
        """DRF's DateTimeField for an ISO 8601 string of the years 1900-2999 (its parser
        tries `fromisoformat` first): a time with an offset keeps its instant, a time
        without one is in the field's time zone, when it is neither ambiguous nor
        skipped by a change of clock."""
        parse = datetime.fromisoformat
        zone = f.timezone if hasattr(f, "timezone") else f.default_timezone()

        def check(value):
            if type(value) is not str or not _DATETIME.fullmatch(value):
                return MISS
            try:
                moment = parse(value)
            except ValueError:  # 2025-02-30
                return MISS
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
                if moment.replace(fold=1).utcoffset() != moment.utcoffset():
                    return MISS
            return moment if moment <= self.latest else MISS

        return check

    def fast(self, data: dict) -> dict | None:
        """The validated row, or None when the fast checks cannot vouch for it."""
        if not self.required <= data.keys():
            return None
        attrs = {}
        checks = self.checks
        for name, value in data.items():
            if value is None:
                if name not in self.nullable:
                    return None
                attrs[name] = None
                continue
            check, f = checks[name]
            result = check(value)
            if result is MISS:
                if f is None:
                    return None
                try:
                    result = f.run_validation(value)
                except (serializers.ValidationError, DjangoValidationError):
                    return None
            attrs[name] = result
        category = attrs.get("category")
        extra = attrs.get("extra")
        if extra or category is None or category.pk not in self.empty_extra_ok:
            fields = self.extra_fields[category.pk] if category is not None else []
            cleaned, errors = check_extra(fields, {} if extra is None else extra)
            if errors:
                return None
            attrs["extra"] = cleaned
        else:
            attrs["extra"] = {}
        # `Signalement.clean()`: a location is both coordinates or neither.
        if (attrs.get("latitude") is None) != (attrs.get("longitude") is None):
            return None
        if "resolved_at" in attrs or attrs.get("status") == Status.RESOLVED:
            if migration_problems(attrs, self.now):
                return None
        return attrs

    def _by_serializer(self, data: dict) -> tuple[dict | None, list[tuple[str, str]]]:
        serializer = ImportSerializer(data=data, context={"now": self.now})
        if serializer.is_valid():
            attrs = dict(serializer.validated_data)
            category = attrs.get("category")
            if category is not None:  # the same objects as the fast checks give
                attrs["category"] = self.categories.get(category.code, category)
            return attrs, []
        return None, list(_flatten(serializer.errors))

    def validate(self, data: dict) -> tuple[dict | None, list[tuple[str, str]]]:
        """(the validated row, []) or (None, [(field, message), …]): the fast checks,
        else the serializer's verdict."""
        return self.validate_many([data])[0]

    def validate_many(self, rows: list[dict]) -> list[tuple[dict | None, list]]:
        """`validate()` for each row; the rows the fast checks cannot vouch for go to
        the serializer together, while `database` is held once."""
        verdicts: list = [(self.fast(data), []) for data in rows]
        doubtful = [i for i, (attrs, _) in enumerate(verdicts) if attrs is None]
        if doubtful:
            with self.database:
                for i in doubtful:
                    verdicts[i] = self._by_serializer(rows[i])
        return verdicts


def _flatten(detail, attr: str = "") -> Iterator[tuple[str, str]]:
    """A serializer's errors as (field, message) pairs, the field named as the API's
    `attr` names it ("extra.gene"; an item of a list by its index)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from _flatten(value, f"{attr}.{key}" if attr else str(key))
    elif isinstance(detail, list):
        index = 0
        for item in detail:
            if isinstance(item, str):  # an ErrorDetail
                yield attr, str(item)
            else:
                yield from _flatten(item, f"{attr}.{index}" if attr else str(index))
                index += 1
    else:
        yield attr, str(detail)
