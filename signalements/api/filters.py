"""Query-string filters for the list endpoints. Every parameter goes through a form
field, so a malformed value (wrong type, NUL byte, unknown choice) is a 400 naming the
parameter, never a 500 from the database."""

from datetime import UTC
from decimal import Decimal, InvalidOperation

import django_filters
from django import forms
from django.conf import settings
from django.core.validators import slug_re
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from signalements import geo, service_levels
from signalements.models import (
    PRIORITY_RANK,
    Area,
    Category,
    Department,
    Priority,
    ReplyTemplate,
    Signalement,
    Status,
    fits_in_utc,
)
from signalements.querystring import list_values


class KeptFilterBackend(DjangoFilterBackend):
    """django-filter's backend, keeping the validated filter set on the view (as
    `view.filterset`), for what else the view makes of the filters (the list's count)."""

    def get_filterset(self, request, queryset, view):
        view.filterset = super().get_filterset(request, queryset, view)
        return view.filterset


class StorableIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 datetime that the database can compare with (no calendar overflow)."""

    default_error_messages = {"overflow": _("Datetime is out of range.")}

    def to_python(self, value):
        result = super().to_python(value)
        if result is None:
            return None
        if not fits_in_utc(result):
            raise forms.ValidationError(self.error_messages["overflow"], code="overflow")
        # PostgreSQL refuses UTC offsets beyond 15:59, which Python accepts (up to 23:59).
        return result.astimezone(UTC)


class StorableIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = StorableIsoDateTimeField


class RepeatedOrCommaSeparatedWidget(django_filters.widgets.QueryArrayWidget):
    """Several values given as `?x=a&x=b`, `?x=a,b` or a mix of both."""

    def value_from_datadict(self, data, files, name):
        return list_values(data, name)


class SlugListField(forms.Field):
    """One or more codes (`?x=a&x=b` or `?x=a,b`); each must look like a slug."""

    widget = RepeatedOrCommaSeparatedWidget
    default_error_messages = {"invalid_code": _("%(code)r is not a valid code.")}

    def to_python(self, value):
        codes = [code.strip(" \t") for code in value or [] if code.strip(" \t")]
        for code in codes:
            if not slug_re.fullmatch(code):
                raise forms.ValidationError(
                    self.error_messages["invalid_code"],
                    code="invalid_code",
                    params={"code": code[:64]},
                )
        return codes


@extend_schema_field(
    {
        "type": "array",
        # Each value: codes separated by commas, spaces and tabs around them ignored.
        "items": {
            "type": "string",
            "pattern": r"^[ \t]*([-a-zA-Z0-9_]+[ \t]*)?(,[ \t]*([-a-zA-Z0-9_]+[ \t]*)?)*$",
        },
    }
)
class SlugListFilter(django_filters.Filter):
    field_class = SlugListField

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__in": value})


class CodeListFilter(SlugListFilter):
    """Codes of a model's rows (categories, departments), filtered as the reports' own
    column: their ids, looked up first (by the unique code), so that the report list's
    query stays on the reports' table alone (its indexes, the lean SQL)."""

    def __init__(self, *, of, **kwargs):
        super().__init__(**kwargs)
        self.of = of  # (`model` is the filter set's)
        self._ids = None  # (codes, their ids): looked up once per filter set

    def ids_of(self, codes) -> tuple[int, ...]:
        """The ids of the rows with these codes: one query per filter set, for the
        filter and for what else reads it (the rollup's counts)."""
        codes = tuple(codes)
        if self._ids is None or self._ids[0] != codes:
            found = self.of.objects.filter(code__in=codes).values_list("pk", flat=True)
            self._ids = (codes, tuple(found))
        return self._ids[1]

    def filter(self, qs, value):
        if not value:
            return qs
        ids = self.ids_of(value)
        return qs.filter(**{f"{self.field_name}__in": ids}) if ids else qs.none()


class CoordinatesField(forms.CharField):
    """`count` comma-separated WGS84 numbers -> a tuple of Decimals at the stored 6
    decimals (PostgreSQL cannot compare with a numeric like 1e-100000). Subclasses say
    what the numbers are (`format` message) and check their ranges (`check`)."""

    count: int

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            numbers = [Decimal(part.strip()) for part in value.split(",")]
        except InvalidOperation:
            raise forms.ValidationError(self.error_messages["format"], code="format") from None
        if len(numbers) != self.count or not all(number.is_finite() for number in numbers):
            raise forms.ValidationError(self.error_messages["format"], code="format")
        self.check(*numbers)
        step = Decimal("0.000001")
        return tuple(number.quantize(step) for number in numbers)

    def check(self, *numbers: Decimal) -> None:
        raise NotImplementedError


class BoundingBoxField(CoordinatesField):
    """`min_lon,min_lat,max_lon,max_lat` -> a tuple of 4 Decimals."""

    count = 4
    default_error_messages = {
        "format": _("Expected min_lon,min_lat,max_lon,max_lat (four numbers)."),
        "range": _("Longitudes must lie in [-180, 180] and latitudes in [-90, 90]."),
        "order": _("min_lon must not exceed max_lon, nor min_lat max_lat."),
    }

    def check(self, min_lon, min_lat, max_lon, max_lat):
        if not all(-180 <= lon <= 180 for lon in (min_lon, max_lon)) or not all(
            -90 <= lat <= 90 for lat in (min_lat, max_lat)
        ):
            raise forms.ValidationError(self.error_messages["range"], code="range")
        if min_lon > max_lon or min_lat > max_lat:
            raise forms.ValidationError(self.error_messages["order"], code="order")


@extend_schema_field(OpenApiTypes.STR)
class BoundingBoxFilter(django_filters.Filter):
    field_class = BoundingBoxField

    def filter(self, qs, value):
        if value is None:
            return qs
        min_lon, min_lat, max_lon, max_lat = value
        return qs.filter(
            longitude__gte=min_lon,
            longitude__lte=max_lon,
            latitude__gte=min_lat,
            latitude__lte=max_lat,
        )


class PointField(CoordinatesField):
    """`lat,lon` -> a tuple of 2 Decimals."""

    count = 2
    default_error_messages = {
        "format": _("Expected lat,lon (two numbers)."),
        "range": _("Latitude must lie in [-90, 90] and longitude in [-180, 180]."),
    }

    def check(self, latitude, longitude):
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise forms.ValidationError(self.error_messages["range"], code="range")


@extend_schema_field(OpenApiTypes.STR)
class NearFilter(django_filters.Filter):
    """Reports within `radius` metres of a point (with the `radius` parameter)."""

    field_class = PointField

    def filter(self, qs, value):
        if value is None:
            return qs
        radius = self.parent.form.cleaned_data.get("radius")
        if radius is None:
            radius = settings.SIGNALEMENT_NEAR_DEFAULT_RADIUS_M
        return geo.within_radius(qs, *value, float(radius))


def _descending(template: str, label: str) -> str:
    return template % label


descending = lazy(_descending, str)


# Each search word is one more pass over every report's text (`icontains`): 100 words
# took 4.9 s over 200,000 reports (a security audit). Words are deduplicated, and more
# than this many is a 400.
SEARCH_MAX_WORDS = 8


def search_words(value: str) -> list[str]:
    """The distinct words of a search, in order (case does not make a word new)."""
    distinct: dict[str, str] = {}
    for word in value.split():
        distinct.setdefault(word.casefold(), word)
    return list(distinct.values())


def at_most_search_words(value: str) -> None:
    if len(search_words(value)) > SEARCH_MAX_WORDS:
        raise forms.ValidationError(
            ngettext(
                "Ensure the search has no more than %(count)d different word.",
                "Ensure the search has no more than %(count)d different words.",
                SEARCH_MAX_WORDS,
            )
            % {"count": SEARCH_MAX_WORDS},
            code="max_words",
        )


class StrictBooleanField(forms.Field):
    """`true` or `false` (any case), as the schema says (a boolean); anything else is a
    400 naming the parameter (django-filter's default reads `null`, `unknown`, `2`... as
    "no filter", which no client could tell from the schema)."""

    default_error_messages = {"invalid": _("Must be true or false.")}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        lowered = str(value).lower()
        if lowered not in ("true", "false"):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return lowered == "true"


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class SignalementFilterForm(forms.Form):
    def clean(self):
        cleaned_data = super().clean()
        if cleaned_data.get("radius") is not None and not cleaned_data.get("near"):
            self.add_error(
                "radius",
                forms.ValidationError(_("radius needs near=lat,lon."), code="near_required"),
            )
        return cleaned_data


class SignalementOrderingFilter(django_filters.OrderingFilter):
    """Orders by a whitelisted field; `priority` sorts by urgency, not alphabetically.
    The id is always the last key, so that pagination is deterministic."""

    def build_choices(self, fields, labels):
        """django-filter's choices, each label translated when it is read: django-filter
        writes the descending ones ("Date (descending)") once, at import time, in the
        language active then."""
        choices = []
        for field, param in fields.items():
            label = labels[field]
            choices += [(param, label), (f"-{param}", descending(self.descending_fmt, label))]
        return choices

    def filter(self, qs, value):
        # `?ordering=id,` arrives as ["id", ""]: an empty key orders by nothing.
        value = [param for param in value or [] if param]
        if not value:
            return qs
        ordering = [self.get_ordering_value(param) for param in value]
        if any(field.lstrip("-") == "priority_rank" for field in ordering):
            qs = qs.annotate(
                priority_rank=Case(
                    *(When(priority=key, then=Value(rank)) for key, rank in PRIORITY_RANK.items()),
                    output_field=IntegerField(),
                )
            )
        if not any(field.lstrip("-") == "id" for field in ordering):
            ordering.append("-id" if ordering[-1].startswith("-") else "id")
        return qs.order_by(*(self.NULLS_LAST.get(field, field) for field in ordering))

    # Reports without a due date come last either way, on SQLite as on PostgreSQL (whose
    # defaults differ).
    NULLS_LAST = {
        "due_at": F("due_at").asc(nulls_last=True),
        "-due_at": F("due_at").desc(nulls_last=True),
    }


@extend_schema_field(
    {"type": "number", "minimum": 0, "maximum": settings.SIGNALEMENT_NEAR_MAX_RADIUS_M}
)
class RadiusFilter(django_filters.NumberFilter):
    """Metres: the schema states the bounds the filter enforces."""


class SignalementFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        distinct=False,  # a column of the reports' own: no join, no duplicate
        choices=Status.choices,
        widget=RepeatedOrCommaSeparatedWidget,
        help_text="One or more statuses: `?status=new&status=acknowledged` or `?status=new,acknowledged`.",
    )
    priority = django_filters.MultipleChoiceFilter(
        distinct=False,  # a column of the reports' own: no join, no duplicate
        choices=Priority.choices,
        widget=RepeatedOrCommaSeparatedWidget,
        help_text="One or more priorities.",
    )
    category = CodeListFilter(
        of=Category, field_name="category", help_text="One or more category codes."
    )
    department = CodeListFilter(
        of=Department,
        field_name="department",
        help_text="One or more department codes (`/api/departments/`).",
    )
    area = SlugListFilter(
        method="filter_area",
        help_text="One or more area codes (`/api/areas/`): reports located in any of them.",
    )
    overdue = StrictBooleanFilter(
        method="filter_overdue",
        help_text="`true`: open reports past their due date; `false`: the others (closed, "
        "not yet due, or without a due date).",
    )
    due_before = StorableIsoDateTimeFilter(
        field_name="due_at", lookup_expr="lte", help_text="Due on or before (ISO 8601)."
    )
    due_after = StorableIsoDateTimeFilter(
        field_name="due_at", lookup_expr="gte", help_text="Due on or after (ISO 8601)."
    )
    date_after = StorableIsoDateTimeFilter(
        field_name="date", lookup_expr="gte", help_text="Incident date on or after (ISO 8601)."
    )
    date_before = StorableIsoDateTimeFilter(
        field_name="date", lookup_expr="lte", help_text="Incident date on or before (ISO 8601)."
    )
    created_after = StorableIsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created on or after (ISO 8601)."
    )
    created_before = StorableIsoDateTimeFilter(
        field_name="created_at", lookup_expr="lte", help_text="Created on or before (ISO 8601)."
    )
    in_bbox = BoundingBoxFilter(
        help_text="Bounding box `min_lon,min_lat,max_lon,max_lat` (WGS84 degrees)."
    )
    near = NearFilter(help_text="Point `lat,lon` (WGS84 degrees): reports within `radius`.")
    radius = RadiusFilter(
        method="filter_radius",
        min_value=0,
        max_value=settings.SIGNALEMENT_NEAR_MAX_RADIUS_M,
        help_text=f"Metres around `near` (default {settings.SIGNALEMENT_NEAR_DEFAULT_RADIUS_M}, "
        f"at most {settings.SIGNALEMENT_NEAR_MAX_RADIUS_M}).",
    )
    search = django_filters.CharFilter(
        method="filter_search",
        max_length=200,
        validators=[at_most_search_words],
        help_text=f"Words to find in the title, description or address (at most "
        f"{SEARCH_MAX_WORDS} different words; a word given twice counts once).",
    )
    ordering = SignalementOrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
            ("date", "date"),
            ("priority_rank", "priority"),
            ("status", "status"),
            ("due_at", "due_at"),
            ("id", "id"),
        ),
        field_labels={
            "created_at": pgettext_lazy("ordering", "Created at"),
            "updated_at": pgettext_lazy("ordering", "Updated at"),
            "date": pgettext_lazy("ordering", "Date"),
            "priority_rank": pgettext_lazy("ordering", "Priority"),
            "status": pgettext_lazy("ordering", "Status"),
            "due_at": pgettext_lazy("ordering", "Due date"),
            "id": pgettext_lazy("ordering", "Id"),
        },
        help_text="Sort key; prefix with `-` for descending. Default: `-created_at`.",
    )

    class Meta:
        model = Signalement
        fields = []
        form = SignalementFilterForm

    def filter_radius(self, queryset, name, value):
        return queryset  # applied by `near`

    def filter_area(self, queryset, name, value):
        if not value:
            return queryset
        located = Signalement.areas.through.objects.filter(area__code__in=value)
        return queryset.filter(pk__in=located.values("signalement_id"))

    def filter_overdue(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(service_levels.overdue() if value else service_levels.not_overdue())

    def filter_search(self, queryset, name, value):
        for word in search_words(value):
            queryset = queryset.filter(
                Q(title__icontains=word)
                | Q(description__icontains=word)
                | Q(address__icontains=word)
            )
        return queryset


class CategoryFilter(django_filters.FilterSet):
    is_active = StrictBooleanFilter()
    group = django_filters.CharFilter(max_length=120)

    class Meta:
        model = Category
        fields = []


class DepartmentFilter(django_filters.FilterSet):
    is_active = StrictBooleanFilter()

    class Meta:
        model = Department
        fields = []


class AreaFilter(django_filters.FilterSet):
    kind = SlugListFilter(field_name="kind", help_text="One or more kinds (district…).")
    is_active = StrictBooleanFilter()

    class Meta:
        model = Area
        fields = []


class ReplyTemplateFilter(django_filters.FilterSet):
    category = SlugListFilter(
        method="filter_category",
        help_text="Templates for these categories (and those for any category).",
    )
    to_status = django_filters.MultipleChoiceFilter(
        method="filter_to_status",
        choices=Status.choices,
        widget=RepeatedOrCommaSeparatedWidget,
        help_text="Templates for moves to these statuses (and those for any move).",
    )
    is_active = StrictBooleanFilter()

    class Meta:
        model = ReplyTemplate
        fields = []

    def filter_category(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(Q(category__code__in=value) | Q(category__isnull=True))

    def filter_to_status(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(Q(to_status__in=value) | Q(to_status=""))


class SignalementStatsFilter(SignalementFilter):
    """The list's filters, without its sort order (meaningless here) and without
    DISTINCT. django-filter's multiple-choice filters (`status`, `priority`) make the
    query DISTINCT in case a filter follows a to-many relation, but none of these does
    (they test the report's own columns and its category): each report is one row
    anyway. And Django aggregates a DISTINCT query over a subquery of whole rows."""

    ordering = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for filter_ in self.filters.values():
            filter_.distinct = False
