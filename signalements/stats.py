"""Statistics of reports, computed in the database (the REST API serves them at
`GET /api/signalements/stats/`).

Who sees what: the statistics cover exactly the reports the caller can list, with the
list's filters applied (`status`, `category`, `created_after`, `search`, `near`, …): all
reports for agents and admins, public reports plus their own for reporters, public
reports for anonymous clients. Every figure, the median resolution time included, can be
worked out from fields the caller already reads in the list (`status`, `category`,
`created_at`, `resolved_at`), so the endpoint discloses nothing new to anyone: it saves
paging through the list. Ordering and pagination do not apply.

Cost: a fixed number of queries whatever the number of reports, and no Python work per
report (only per status, category or month): counts by status, by category, by month
created, by month resolved, then the median's one or two middle values. That is five
queries; on SQLite, in a time zone whose months start in the middle of a UTC hour
(India, Nepal…), each count by month takes one more (see `_per_month_sqlite`).
"""

import unicodedata
from datetime import UTC, date, datetime, timedelta

from django.db import connections
from django.db.models import Case, CharField, Count, F, Q, QuerySet, Value, When
from django.db.models.functions import Substr, TruncDate, TruncMonth
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils import timezone

from .models import CLOSED_STATUSES, Status


def _plain(queryset: QuerySet) -> QuerySet:
    """The reports, unordered (an ordering would split the groups), each once: a
    DISTINCT queryset (a filter across a to-many relation) is taken by id."""
    queryset = queryset.order_by()
    if queryset.query.distinct:
        queryset = queryset.model._default_manager.filter(pk__in=queryset.values("pk"))
    return queryset


def by_status(queryset: QuerySet) -> list[dict]:
    """Every status in workflow order, with its number of reports (zeros included).
    One pass, by conditional counts: on SQLite a GROUP BY status may walk the status
    index and fetch every row out of order, ten times slower."""
    counts = _plain(queryset).aggregate(
        **{value: Count("pk", filter=Q(status=value)) for value in Status.values}
    )
    return [
        {"status": value, "label": str(label), "count": counts[value]}
        for value, label in Status.choices
    ]


def _name_key(name: str | None) -> tuple:
    """Sorts names alphabetically whatever the database's collation: accents and case
    aside ("Éclairage" before "Voirie"); no name last."""
    if name is None:
        return (1, "", "")
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return (0, plain.casefold(), name)


def by_category(queryset: QuerySet) -> list[dict]:
    """The categories that have reports, most reports first, then by name; reports
    without a category come as `category: null`, last among equals. (Sorted here, one
    item per category: the databases' collations disagree on accented names.)"""
    rows = _plain(queryset).values("category__code", "category__name").annotate(count=Count("pk"))
    items = [
        {"category": row["category__code"], "name": row["category__name"], "count": row["count"]}
        for row in rows
    ]
    items.sort(key=lambda item: (-item["count"], *_name_key(item["name"]), item["category"] or ""))
    return items


def _per_month(queryset: QuerySet, field: str) -> dict[date, int]:
    """Number of reports by month of `field` (non-null), months in the server's time
    zone (`TIME_ZONE`), as {first day of the month: count}."""
    queryset = _plain(queryset).filter(**{f"{field}__isnull": False})
    tz = timezone.get_default_timezone()
    connection = connections[queryset.db]
    if connection.vendor == "sqlite" and connection.timezone_name == "UTC":
        counts = _per_month_sqlite(queryset, field, tz)
        if counts is not None:
            return counts
    rows = (
        queryset.annotate(month=TruncMonth(field, tzinfo=tz))
        .values("month")
        .annotate(count=Count("pk"))
        .values_list("month", "count")
    )
    return {date(month.year, month.month, 1): count for month, count in rows}


def _per_month_sqlite(queryset: QuerySet, field: str, tz) -> dict[date, int] | None:
    """`_per_month` on SQLite, 6 to 10 times faster at a million rows; None when it
    cannot be exact (TruncMonth is used then).

    SQLite has no time zones: Django's TruncMonth calls a Python function for every
    row. Here SQLite groups the stored text (UTC, `YYYY-MM-DD HH:MM:SS…`) by itself:
    a UTC day from the 2nd to the 27th lies in the same month in every time zone
    (offsets are under a day), so those rows group by UTC month; the others (28th to
    1st) group by UTC hour, and each such hour (at most 120 a month) is placed in its
    month here. That is exact as long as no month starts in the middle of a UTC hour,
    as in zones whose offset is a whole number of hours; otherwise, None."""
    day = Substr(field, 9, 2)
    bucket = Case(
        When(
            GreaterThanOrEqual(day, Value("02")) & LessThanOrEqual(day, Value("27")),
            then=Substr(field, 1, 7),
        ),
        default=Substr(field, 1, 13),
        output_field=CharField(),
    )
    rows = queryset.annotate(bucket=bucket).values("bucket").annotate(count=Count("pk"))
    counts: dict[date, int] = {}
    for key, count in rows.values_list("bucket", "count"):
        year, month = int(key[0:4]), int(key[5:7])
        if len(key) > 7:
            start = datetime(year, month, int(key[8:10]), int(key[11:13]), tzinfo=UTC)
            first = start.astimezone(tz)
            last = (start + timedelta(hours=1, microseconds=-1)).astimezone(tz)
            if (first.year, first.month) != (last.year, last.month):
                return None
            year, month = first.year, first.month
        counts[date(year, month, 1)] = counts.get(date(year, month, 1), 0) + count
    return counts


def _months(first: date, last: date):
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        yield date(year, month, 1)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def by_month(queryset: QuerySet) -> list[dict]:
    """Reports created and reports resolved in each month, oldest first, from the first
    month with either to the last one, months without any included (zeros). A report
    counts as resolved in the month of its `resolved_at`, whatever its creation month."""
    created = _per_month(queryset, "created_at")
    resolved = _per_month(queryset, "resolved_at")
    if not created and not resolved:
        return []
    months = created.keys() | resolved.keys()
    return [
        {
            "month": f"{month.year:04d}-{month.month:02d}",
            "created": created.get(month, 0),
            "resolved": resolved.get(month, 0),
        }
        for month in _months(min(months), max(months))
    ]


def median_resolution_hours(queryset: QuerySet, resolved_count: int) -> float | None:
    """The median of `resolved_at - created_at` over the `resolved_count` reports that
    have a `resolved_at`, in hours; None without any.

    Portable (SQLite has no percentile function): the database orders the durations and
    returns only the middle one (odd count) or two (even count), by OFFSET/LIMIT."""
    if resolved_count <= 0:
        return None
    durations = (
        _plain(queryset)
        .filter(resolved_at__isnull=False)
        .annotate(resolution_time=F("resolved_at") - F("created_at"))
        .order_by("resolution_time", "pk")
        .values_list("resolution_time", flat=True)
    )
    lower, upper = (resolved_count - 1) // 2, resolved_count // 2
    middle = list(durations[lower : upper + 1])
    if not middle:  # reports changed between the two queries
        return None
    return sum(duration.total_seconds() for duration in middle) / len(middle) / 3600


def by_week(queryset: QuerySet, *, weeks: int, today: date | None = None) -> list[dict]:
    """Reports created in each of the last `weeks` weeks (Monday to Sunday, in the
    server's time zone), oldest first, this week last, weeks without any included. One
    query over the `created_at` index, counting by day (at most 7 × `weeks` rows); the
    days are summed into weeks here."""
    tz = timezone.get_default_timezone()
    today = today or timezone.localdate()
    first = today - timedelta(days=today.weekday() + 7 * (weeks - 1))
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    rows = (
        _plain(queryset)
        .filter(created_at__gte=start)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(count=Count("pk"))
        .values_list("day", "count")
    )
    counts = [0] * weeks
    for day, count in rows:
        index = (day - first).days // 7
        if 0 <= index < weeks:
            counts[index] += count
    return [
        {"week": (first + timedelta(weeks=index)).isoformat(), "created": count}
        for index, count in enumerate(counts)
    ]


def backlog(queryset: QuerySet, *, overdue_after: timedelta, now: datetime | None = None) -> dict:
    """Of the open reports (neither resolved nor rejected): how many, how many nobody is
    assigned to, and how many have been open for longer than `overdue_after` (one
    query)."""
    now = now or timezone.now()
    open_reports = Q(status__in=[s for s in Status.values if s not in CLOSED_STATUSES])
    return _plain(queryset).aggregate(
        open=Count("pk", filter=open_reports),
        unassigned=Count("pk", filter=open_reports & Q(assigned_to__isnull=True)),
        overdue=Count("pk", filter=open_reports & Q(created_at__lt=now - overdue_after)),
    )


def compute(queryset: QuerySet) -> dict:
    """All the statistics of these reports, in the shape of the API's `SignalementStatsSerializer`:
    four aggregate queries, plus one for the median when a report has been resolved."""
    queryset = _plain(queryset)
    statuses = by_status(queryset)
    months = by_month(queryset)
    resolved_count = sum(month["resolved"] for month in months)
    return {
        "total": sum(status["count"] for status in statuses),
        "by_status": statuses,
        "by_category": by_category(queryset),
        "by_month": months,
        "median_resolution_hours": median_resolution_hours(queryset, resolved_count),
        "resolved_count": resolved_count,
    }
