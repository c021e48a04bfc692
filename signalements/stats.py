"""Statistics of reports, computed in the database (the REST API serves them at
`GET /api/signalements/stats/`).

Who sees what: the statistics cover exactly the reports the caller can list, with the
list's filters applied (`status`, `category`, `created_after`, `search`, `near`, …): all
reports for agents and admins (within their departments with `AGENT_SCOPE=department`),
public reports plus their own for reporters, public reports for anonymous clients. Every
figure, the median resolution time included, can be worked out from fields the caller
already reads in the list (`status`, `category`, `department`, `created_at`,
`resolved_at`, `due_at`), so the endpoint discloses nothing new to anyone: it saves
paging through the list. The one exception, the reporters' verdicts ("fixed" or "not
fixed", `satisfaction`), is computed for agents only. Ordering and pagination do not
apply.

Service levels: a report is overdue when it is open (neither resolved nor rejected) and
its `due_at` is past; a resolved report was on time when `resolved_at <= due_at`, late
otherwise; reports without a due date count in neither.

Cost: a fixed number of queries whatever the number of reports, and no Python work per
report (only per status, category, department or month).

- From the rollup (`rollup.py`, counts the database keeps up to date), when the caller
  passes `rollup_filters`: the reports it can count are every report (agents who see them
  all) or the public ones (anonymous callers), filtered by status, category, department
  and creation dates. One statement reads every count (a few thousand rows whatever the
  number of reports, by index; creation dates that cut a month subtract that month's
  reports on the other side, found by the creation date's index), the histograms of the
  durations, and the open reports not yet due (found by the due date's index: overdue =
  open with a due date - those); then each median's middle value(s), looked up exactly
  among the reports of one histogram bucket, or with creation dates (the histograms do
  not count by month) among those of the dates; for agents the verdicts. Three to four
  queries, the figures exact and fresh: every committed write is in them.
- Otherwise from the reports: counts by status (with the service levels' totals), by
  category (with their on-time counts), by department, by month created, by month
  resolved, then the medians' one or two middle values (time to resolution, lateness),
  and for agents the verdicts by category. That is five to eight queries; on SQLite, in a
  time zone whose months start in the middle of a UTC hour (India, Nepal…), each count by
  month takes one more (see `_per_month_sqlite`).
"""

import unicodedata
from datetime import UTC, date, datetime, timedelta

from django.db import connections
from django.db.models import Case, CharField, Count, F, Q, QuerySet, Value, When
from django.db.models.functions import Substr, TruncDate, TruncMonth
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils import timezone

from . import rollup, service_levels
from .models import CLOSED_STATUSES, Feedback, Status

OPEN = Q(status__in=[value for value in Status.values if value not in CLOSED_STATUSES])
# Resolved reports that had a due date, and those of them resolved by it.
RESOLVED_WITH_DUE_DATE = Q(resolved_at__isnull=False, due_at__isnull=False)
ON_TIME = RESOLVED_WITH_DUE_DATE & Q(resolved_at__lte=F("due_at"))


def _plain(queryset: QuerySet) -> QuerySet:
    """The reports, unordered (an ordering would split the groups), each once: a
    DISTINCT queryset (a filter across a to-many relation) is taken by id."""
    queryset = queryset.order_by()
    if queryset.query.distinct:
        queryset = queryset.model._default_manager.filter(pk__in=queryset.values("pk"))
    return queryset


def totals(queryset: QuerySet, *, now: datetime | None = None) -> dict[str, int]:
    """One pass, by conditional counts: the number of reports of each status (keyed by
    status), and the service levels' totals: `overdue` (open, past their due date),
    `resolved_with_due_date` and `on_time` among them. On SQLite a GROUP BY status may
    walk the status index and fetch every row out of order, ten times slower."""
    now = now or timezone.now()
    return _plain(queryset).aggregate(
        **{value: Count("pk", filter=Q(status=value)) for value in Status.values},
        overdue=Count("pk", filter=service_levels.overdue(now)),
        resolved_with_due_date=Count("pk", filter=RESOLVED_WITH_DUE_DATE),
        on_time=Count("pk", filter=ON_TIME),
    )


def status_items(counts: dict[str, int]) -> list[dict]:
    """Every status in workflow order, with its number of reports (zeros included)."""
    return [
        {"status": value, "label": str(label), "count": counts[value]}
        for value, label in Status.choices
    ]


def by_status(queryset: QuerySet) -> list[dict]:
    """Every status in workflow order, with its number of reports (zeros included)."""
    return status_items(totals(queryset))


def rate(part: int, whole: int) -> float | None:
    """`part / whole`, rounded to 4 decimals; None when `whole` is 0."""
    return round(part / whole, 4) if whole else None


def _name_key(name: str | None) -> tuple:
    """Sorts names alphabetically whatever the database's collation: accents and case
    aside ("Éclairage" before "Voirie"); no name last."""
    if name is None:
        return (1, "", "")
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return (0, plain.casefold(), name)


def _category_rows(queryset: QuerySet) -> list[dict]:
    """Per category (None: no category), its reports, and its resolved reports that had
    a due date and were on time (one GROUP BY)."""
    rows = (
        _plain(queryset)
        .values("category__code", "category__name")
        .annotate(
            count=Count("pk"),
            resolved_with_due_date=Count("pk", filter=RESOLVED_WITH_DUE_DATE),
            on_time=Count("pk", filter=ON_TIME),
        )
    )
    return [
        {
            "category": row["category__code"],
            "name": row["category__name"],
            "count": row["count"],
            "resolved_with_due_date": row["resolved_with_due_date"],
            "on_time": row["on_time"],
        }
        for row in rows
    ]


def _by_count_then_name(items: list[dict], count: str, key: str) -> list[dict]:
    """Most first, then by name (accents and case aside); no name last."""
    return sorted(items, key=lambda item: (-item[count], *_name_key(item["name"]), item[key] or ""))


def _category_items(rows: list[dict]) -> list[dict]:
    items = [{name: row[name] for name in ("category", "name", "count")} for row in rows]
    return _by_count_then_name(items, "count", "category")


def by_category(queryset: QuerySet) -> list[dict]:
    """The categories that have reports, most reports first, then by name; reports
    without a category come as `category: null`, last among equals. (Sorted here, one
    item per category: the databases' collations disagree on accented names.)"""
    return _category_items(_category_rows(queryset))


def on_time_items(rows: list[dict], key: str) -> list[dict]:
    """The on-time rate of each group (`key`: "category" or "department") that has
    resolved reports with a due date, most of them first, then by name."""
    items = [
        {
            key: row[key],
            "name": row["name"],
            "resolved_with_due_date": row["resolved_with_due_date"],
            "on_time": row["on_time"],
            "on_time_rate": rate(row["on_time"], row["resolved_with_due_date"]),
        }
        for row in rows
        if row["resolved_with_due_date"]
    ]
    return _by_count_then_name(items, "resolved_with_due_date", key)


def _department_rows(queryset: QuerySet, now: datetime) -> list[dict]:
    """Per department (None: not routed), its reports, open and overdue ones, and its
    resolved reports that had a due date and were on time (one GROUP BY)."""
    rows = (
        _plain(queryset)
        .values("department__code", "department__name")
        .annotate(
            count=Count("pk"),
            open=Count("pk", filter=OPEN),
            overdue=Count("pk", filter=service_levels.overdue(now)),
            resolved_with_due_date=Count("pk", filter=RESOLVED_WITH_DUE_DATE),
            on_time=Count("pk", filter=ON_TIME),
        )
    )
    return [
        {
            "department": row["department__code"],
            "name": row["department__name"],
            **{
                name: row[name]
                for name in ("count", "open", "overdue", "resolved_with_due_date", "on_time")
            },
        }
        for row in rows
    ]


def _department_items(rows: list[dict]) -> list[dict]:
    items = [
        {name: row[name] for name in ("department", "name", "count", "open", "overdue")}
        for row in rows
    ]
    return _by_count_then_name(items, "count", "department")


def by_department(queryset: QuerySet, *, now: datetime | None = None) -> list[dict]:
    """The departments that have reports, most reports first, then by name, with their
    open and overdue reports; reports no department handles come as `department:
    null`."""
    return _department_items(_department_rows(queryset, now or timezone.now()))


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
    return month_items(_per_month(queryset, "created_at"), _per_month(queryset, "resolved_at"))


def month_items(created: dict[date, int], resolved: dict[date, int]) -> list[dict]:
    """`by_month`'s items from the counts by month created and by month resolved."""
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


def _median_hours(queryset: QuerySet, duration, count: int) -> float | None:
    """The median of `duration` (an expression) over the `count` reports of
    `queryset`, in hours; None without any.

    Portable (SQLite has no percentile function): the database orders the durations and
    returns only the middle one (odd count) or two (even count), by OFFSET/LIMIT."""
    if count <= 0:
        return None
    durations = (
        queryset.annotate(duration=duration)
        .order_by("duration", "pk")
        .values_list("duration", flat=True)
    )
    lower, upper = (count - 1) // 2, count // 2
    middle = list(durations[lower : upper + 1])
    if not middle:  # reports changed between the two queries
        return None
    return sum(duration.total_seconds() for duration in middle) / len(middle) / 3600


def median_resolution_hours(queryset: QuerySet, resolved_count: int) -> float | None:
    """The median of `resolved_at - created_at` over the `resolved_count` reports that
    have a `resolved_at`, in hours; None without any."""
    return _median_hours(
        _plain(queryset).filter(resolved_at__isnull=False),
        F("resolved_at") - F("created_at"),
        resolved_count,
    )


def median_lateness_hours(queryset: QuerySet, late_count: int) -> float | None:
    """The median of `resolved_at - due_at` over the `late_count` reports resolved after
    their due date, in hours; None without any. (Open reports past their due date are
    not in it: how late they will be is not known yet; they are counted as overdue.)"""
    return _median_hours(
        _plain(queryset).filter(
            resolved_at__isnull=False, due_at__isnull=False, resolved_at__gt=F("due_at")
        ),
        F("resolved_at") - F("due_at"),
        late_count,
    )


def satisfaction(queryset: QuerySet, *, reports: Q | None = None) -> dict:
    """The reporters' verdicts on the resolutions of these reports (every answer
    counts: a report resolved twice may have two): how many answered, how many said
    "fixed", the rate, overall and by category (one GROUP BY over the answers).

    `reports`: the same reports as a filter on the answers (`signalement__…`, the
    rollup's filters), so that the answers are joined to their reports, rather than the
    reports listed first (a million of them)."""
    if reports is None:
        answers = Feedback.objects.filter(signalement__in=_plain(queryset).values("pk"))
    else:
        answers = Feedback.objects.using(queryset.db).filter(reports)
    rows = (
        answers.values("signalement__category__code", "signalement__category__name")
        .annotate(answers=Count("pk"), fixed=Count("pk", filter=Q(is_fixed=True)))
        .order_by()
    )
    items = [
        {
            "category": row["signalement__category__code"],
            "name": row["signalement__category__name"],
            "answers": row["answers"],
            "fixed": row["fixed"],
            "rate": rate(row["fixed"], row["answers"]),
        }
        for row in rows
    ]
    answers = sum(item["answers"] for item in items)
    fixed = sum(item["fixed"] for item in items)
    return {
        "answers": answers,
        "fixed": fixed,
        "rate": rate(fixed, answers),
        "by_category": _by_count_then_name(items, "answers", "category"),
    }


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


def backlog(queryset: QuerySet, *, now: datetime | None = None) -> dict:
    """Of the open reports (neither resolved nor rejected): how many, how many nobody is
    assigned to, and how many are past their due date (one query)."""
    now = now or timezone.now()
    return _plain(queryset).aggregate(
        open=Count("pk", filter=OPEN),
        unassigned=Count("pk", filter=OPEN & Q(assigned_to__isnull=True)),
        overdue=Count("pk", filter=service_levels.overdue(now)),
    )


def compute(
    queryset: QuerySet,
    *,
    now: datetime | None = None,
    with_satisfaction: bool = False,
    rollup_filters: rollup.Filters | None = None,
) -> dict:
    """All the statistics of these reports, in the shape of the API's
    `SignalementStatsSerializer`; `satisfaction` (the verdicts, not public) with
    `with_satisfaction` only, None otherwise.

    `rollup_filters`: the same reports as the rollup's filters (the caller vouches that
    they are the same), to count them from the rollup; the figures are computed from the
    reports when it cannot answer (see the module's docstring)."""
    now = now or timezone.now()
    queryset = _plain(queryset)
    counted = None
    if rollup_filters is not None:
        counted = rollup.figures(queryset.db, rollup_filters, now)
    if counted is None:
        counts = totals(queryset, now=now)
        category_rows = _category_rows(queryset)
        department_rows = _department_rows(queryset, now)
        created = _per_month(queryset, "created_at")
        resolved = _per_month(queryset, "resolved_at")
    else:
        counts, department_rows = _rollup_counts(counted)
        category_rows = counted.category_rows
        created, resolved = counted.created, counted.resolved
    statuses = status_items(counts)
    resolved_count = sum(resolved.values())
    late = counts["resolved_with_due_date"] - counts["on_time"]
    if counted is not None:
        median_resolution, median_lateness = rollup.medians_hours(
            queryset.db, rollup_filters, counted, resolved=resolved_count, late=late
        )
    else:
        median_resolution = median_resolution_hours(queryset, resolved_count)
        median_lateness = median_lateness_hours(queryset, late)
    return {
        "total": sum(status["count"] for status in statuses),
        "by_status": statuses,
        "by_category": _category_items(category_rows),
        "by_department": _department_items(department_rows),
        "by_month": month_items(created, resolved),
        "median_resolution_hours": median_resolution,
        "resolved_count": resolved_count,
        "service_levels": {
            "overdue": counts["overdue"],
            "resolved_with_due_date": counts["resolved_with_due_date"],
            "on_time": counts["on_time"],
            "on_time_rate": rate(counts["on_time"], counts["resolved_with_due_date"]),
            "late": late,
            "median_lateness_hours": median_lateness,
            "by_category": on_time_items(category_rows, "category"),
            "by_department": on_time_items(department_rows, "department"),
        },
        "satisfaction": (
            satisfaction(
                queryset,
                reports=rollup_filters.q(prefix="signalement__") if counted else None,
            )
            if with_satisfaction
            else None
        ),
    }


def _rollup_counts(counted: rollup.Figures) -> tuple[dict[str, int], list[dict]]:
    """`totals()` and `_department_rows()` from the rollup's counts by department and
    status. Overdue: the open reports with a due date, less those not yet due."""
    counts = dict.fromkeys([*Status.values, "overdue", "resolved_with_due_date", "on_time"], 0)
    departments: dict[int, dict] = {}
    for (department, status), (
        n,
        due,
        on_time,
        resolved_due,
    ) in counted.by_department_status.items():
        code, name = counted.departments[department]
        row = departments.setdefault(
            department,
            dict.fromkeys(["count", "open", "overdue", "resolved_with_due_date", "on_time"], 0)
            | {"department": code, "name": name},
        )
        row["count"] += n
        row["resolved_with_due_date"] += resolved_due
        row["on_time"] += on_time
        if status not in CLOSED_STATUSES:
            row["open"] += n
            row["overdue"] += due
        counts[status] += n
    for department, pending in counted.pending.items():
        if department in departments:
            departments[department]["overdue"] -= pending
    rows = [row for row in departments.values() if row["count"]]
    for name in ("overdue", "resolved_with_due_date", "on_time"):
        counts[name] = sum(row[name] for row in rows)
    return counts, rows
