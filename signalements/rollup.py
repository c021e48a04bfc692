"""The rollup of reports: counts kept up to date by the database, so that the statistics
and the list's counts read a few thousand rows instead of every report.

What it holds (`models.ReportRollup`): the number of reports by visibility, status,
category, department, month created and month resolved (months of `TIME_ZONE`), with
how many have a due date and how many were resolved by it; and histograms of the times
to resolution and of the lateness (by visibility, status, category, department).

Who keeps it: database triggers on the reports' table (`triggers.py`), in the writing
transaction, whoever writes (the API, the admin, `.update()`, raw SQL, a bulk import,
`COPY`): a committed write is in the next read, a rolled-back one never was. On
PostgreSQL each writing statement inserts its own change rows (`ReportRollupDelta`, +1
or -1 per key, one row per key the statement touched): concurrent writers never wait for
each other on a counter row, and take no lock another writer needs (no deadlock).
Readers add the changes to the rollup; `compact()` (a periodic job of `manage.py
worker`, and after a bulk import) folds them in, in one statement. SQLite has one writer
at a time: its triggers update the rollup directly.

Months: a report's month is that of `TIME_ZONE`, as the statistics count them
(`stats.by_month`); the rollup records the zone it was built in (`RollupState`). Another
`TIME_ZONE` (a setting changed without `migrate`) makes the statistics compute without
it; `migrate` rebuilds it (`triggers.install`).

Medians, exactly: the histograms' buckets (256 per doubling of the duration, in
microseconds) give the bucket that holds the middle report(s) and how many come before
it; the database then orders the reports of that bucket alone, found by an index on the
same duration (`sig_resolution_time_idx`, `sig_lateness_idx`), and returns the middle
one or two. A bucket holds about one report in a hundred or fewer.
"""

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connections, transaction
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import (
    CLOSED_STATUSES,
    Category,
    Department,
    DurationMicroseconds,
    ReportRollup,
    ReportRollupDelta,
    RollupMonth,
    RollupState,
    Signalement,
    Status,
)
from .models.rollup import ROLLUP_KEY, ROLLUP_MEASURES, duration_us_sql
from .tasks import periodic

ROLLUP = ReportRollup._meta.db_table
DELTA = ReportRollupDelta._meta.db_table
MONTHS = RollupMonth._meta.db_table
STATE = RollupState._meta.db_table
REPORT = Signalement._meta.db_table
CATEGORIES = Category._meta.db_table
DEPARTMENTS = Department._meta.db_table
COLUMNS = ROLLUP_KEY + ROLLUP_MEASURES
# The reports' columns the rollup counts by.
REPORT_COLUMNS = (
    "is_public",
    "status",
    "category_id",
    "department_id",
    "created_at",
    "resolved_at",
    "due_at",
)
OPEN_STATUSES = tuple(value for value in Status.values if value not in CLOSED_STATUSES)
# The months SQLite's calendar (`RollupMonth`) knows; PostgreSQL knows them all.
FIRST_YEAR, END_YEAR = 1900, 2200
# Durations: one bucket per microsecond below LINEAR, then SUB_BUCKETS per doubling (a
# bucket is 0.4 % wide: the medians' lookups read few reports).
BITS = 8
SUB_BUCKETS = 1 << BITS
LINEAR = 2 * SUB_BUCKETS
MAX_EXPONENT = 62  # durations are big integers
# The compactions of several workers would only wait for each other.
COMPACTION_LOCK = 0x5167_726F  # pg_try_advisory_xact_lock's key
COMPACT_EVERY = timedelta(seconds=30)


# --- SQL that both the triggers and the reads are made of -----------------------------


def zone_literal(zone: str) -> str:
    """A time zone's name as an SQL literal (names are letters, digits, `/_+-`)."""
    if not re.fullmatch(r"[A-Za-z0-9/_+\-]+", zone):
        raise ValueError(f"Unexpected time zone name: {zone!r}")
    return f"'{zone}'"


def month_sql(vendor: str, zone: str, value: str) -> str:
    """SQL of the month (YYYYMM) in `zone` of the datetime `value`: 0 when it is NULL,
    -1 beyond the months SQLite's calendar knows."""
    if vendor == "postgresql":
        local = f"{value} AT TIME ZONE {zone_literal(zone)}"
        month = f"CAST(to_char({local}, 'YYYYMM') AS integer)"
    else:
        # As text: a datetime column's affinity is NUMERIC, under which SQLite would
        # scan the calendar rather than search its index.
        month = (
            f"COALESCE((SELECT m.month FROM {MONTHS} m WHERE m.starts_at <= "
            f"CAST({value} AS TEXT) ORDER BY m.starts_at DESC LIMIT 1), -1)"
        )
    return f"CASE WHEN {value} IS NULL THEN 0 ELSE {month} END"


def bucket_of(us: int) -> int:
    """The histogram bucket of a duration in microseconds (as `bucket_sql` computes
    it): -1 for any negative one, the duration itself below LINEAR, then SUB_BUCKETS
    per doubling. Never smaller for a longer duration."""
    if us < 0:
        return -1
    if us < LINEAR:
        return us
    shift = us.bit_length() - 1 - BITS
    return shift * SUB_BUCKETS + (us >> shift)


def bucket_bounds(bucket: int) -> tuple[int | None, int]:
    """The durations of a bucket, in microseconds: [low, high), low None for -1."""
    if bucket < 0:
        return None, 0
    if bucket < LINEAR:
        return bucket, bucket + 1
    shift = bucket // SUB_BUCKETS - 1
    mantissa = bucket - shift * SUB_BUCKETS
    return mantissa << shift, (mantissa + 1) << shift


def bucket_sql(value: str) -> str:
    """SQL of `bucket_of(value)` (`value`: a column of microseconds), in integer
    arithmetic both databases share: a binary search of the exponent, six comparisons."""

    def exponents(low: int, high: int) -> str:
        if low == high:
            shift = low - BITS
            return f"({shift * SUB_BUCKETS} + {value} / {1 << shift})"
        middle = (low + high) // 2
        return (
            f"CASE WHEN {value} < {1 << (middle + 1)} THEN {exponents(low, middle)} "
            f"ELSE {exponents(middle + 1, high)} END"
        )

    return (
        f"CASE WHEN {value} < 0 THEN -1 WHEN {value} < {LINEAR} THEN {value} "
        f"ELSE {exponents(LINEAR.bit_length() - 1, MAX_EXPONENT)} END"
    )


def rows_sql(vendor: str, zone: str, source: str, sign: int, *, kinds: str = "crl") -> str:
    """A SELECT of rollup rows (COLUMNS, in order and by name): what the reports of
    `source` (a table, or a parenthesized SELECT of the reports' columns) add to the
    rollup (`sign` 1) or take away from it (-1), one row per key. The triggers, the
    rebuild and the reads all count with it."""
    sign_sql = "-1 * " if sign < 0 else ""
    category = "COALESCE(r.category_id, 0)"
    department = "COALESCE(r.department_id, 0)"
    parts = []
    if "c" in kinds:
        parts.append(
            f"SELECT 'c' AS kind, {month_sql(vendor, zone, 'r.created_at')} AS created_month, "
            f"r.is_public AS is_public, r.status AS status, {category} AS category_id, "
            f"{department} AS department_id, "
            f"{month_sql(vendor, zone, 'r.resolved_at')} AS resolved_month, 0 AS bucket, "
            f"{sign_sql}COUNT(*) AS n, "
            f"{sign_sql}SUM(CASE WHEN r.due_at IS NOT NULL THEN 1 ELSE 0 END) AS due, "
            f"{sign_sql}SUM(CASE WHEN r.resolved_at <= r.due_at THEN 1 ELSE 0 END) AS on_time "
            f"FROM {source} r GROUP BY 2, 3, 4, 5, 6, 7"
        )
    durations = {
        "r": ("s.created_at", "s.resolved_at IS NOT NULL"),
        "l": ("s.due_at", "s.resolved_at > s.due_at"),
    }
    for kind, (start, condition) in durations.items():
        if kind not in kinds:
            continue
        parts.append(
            f"SELECT '{kind}', 0, r.is_public, r.status, {category}, {department}, 0, "
            f"{bucket_sql('r.v')}, {sign_sql}COUNT(*), 0, 0 FROM (SELECT s.is_public, "
            f"s.status, s.category_id, s.department_id, "
            f"{duration_us_sql(vendor, 's.resolved_at', start)} AS v "
            f"FROM {source} s WHERE {condition}) r GROUP BY 3, 4, 5, 6, 8"
        )
    return " UNION ALL ".join(parts)


# --- Building it ------------------------------------------------------------------------


def state(using: str = "default") -> str | None:
    """The time zone the rollup counts months in; None before it is built."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT zone FROM {STATE}")
        row = cursor.fetchone()
    return row[0] if row else None


def month_start(year: int, month: int, tz) -> datetime:
    """The first instant (UTC) of a month of `tz`: its local midnight, unless a change
    of clock skips or repeats it."""

    def local_month(moment: datetime) -> tuple[int, int]:
        local = moment.astimezone(tz)
        return local.year, local.month

    target = (year, month)
    guess = datetime(year, month, 1, tzinfo=tz).astimezone(UTC)
    tick = timedelta(microseconds=1)
    if local_month(guess) == target and local_month(guess - tick) < target:
        return guess
    low, high = guess - timedelta(days=1), guess + timedelta(days=1)
    while high - low > tick:
        middle = low + (high - low) // 2
        if local_month(middle) >= target:
            high = middle
        else:
            low = middle
    return high


def calendar(zone: str) -> list[tuple[str, int]]:
    """SQLite's calendar of `zone`: each month's first instant as SQLite stores
    datetimes (UTC text), and its YYYYMM; then -1 from END_YEAR on."""
    tz = ZoneInfo(zone)

    def text(moment: datetime) -> str:
        return str(moment.replace(tzinfo=None))

    rows = [
        (text(month_start(year, month, tz)), year * 100 + month)
        for year in range(FIRST_YEAR, END_YEAR)
        for month in range(1, 13)
    ]
    rows.append((text(month_start(END_YEAR, 1, tz)), -1))
    return rows


def rebuild(connection) -> None:
    """Count every report again, in `TIME_ZONE`'s months (after the zone changed, or on
    the first migrate). The caller holds the reports' table against writers (PostgreSQL:
    `triggers.install` locks it) and has made the triggers of this zone."""
    zone = settings.TIME_ZONE
    vendor = connection.vendor
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for table in (DELTA, ROLLUP, MONTHS, STATE):
            cursor.execute(f"DELETE FROM {table}")
        if vendor == "sqlite":
            cursor.executemany(
                f"INSERT INTO {MONTHS} (starts_at, month) VALUES (%s, %s)", calendar(zone)
            )
        cursor.execute(
            f"INSERT INTO {ROLLUP} ({', '.join(COLUMNS)}) {rows_sql(vendor, zone, REPORT, 1)}"
        )
        cursor.execute(f"INSERT INTO {STATE} (zone) VALUES (%s)", [zone])


def compact(using: str = "default") -> int:
    """Fold the changes (`ReportRollupDelta`) into the rollup, in one statement (those
    committed by then; later ones wait for the next time), and drop the keys left at
    zero. Returns the number of changes folded. Readers see the figures before or after,
    never a mix: the same sums either way."""
    connection = connections[using]
    key = ", ".join(ROLLUP_KEY)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        moved = 0
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [COMPACTION_LOCK])
            if not cursor.fetchone()[0]:
                return 0  # another worker is at it
            cursor.execute(
                f"WITH moved AS (DELETE FROM {DELTA} RETURNING {', '.join(COLUMNS)}) "
                f"INSERT INTO {ROLLUP} ({', '.join(COLUMNS)}) "
                f"SELECT {key}, SUM(n), SUM(due), SUM(on_time) FROM moved GROUP BY {key} "
                f"ON CONFLICT ({key}) DO UPDATE SET n = {ROLLUP}.n + EXCLUDED.n, "
                f"due = {ROLLUP}.due + EXCLUDED.due, on_time = {ROLLUP}.on_time + EXCLUDED.on_time"
            )
            moved = cursor.rowcount
        cursor.execute(f"DELETE FROM {ROLLUP} WHERE n = 0 AND due = 0 AND on_time = 0")
    return moved


@periodic(every=COMPACT_EVERY)
def compact_rollup() -> int:
    """The rollup's changes folded in every COMPACT_EVERY (`compact`)."""
    return compact()


# --- Reading it -------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """A set of reports the rollup can count: every report or the public ones, with
    the list's filters on status, category, department and creation date. `None`: no
    filter; an empty tuple: nothing matches."""

    public_only: bool
    statuses: tuple[str, ...] | None = None
    category_ids: tuple[int, ...] | None = None
    department_ids: tuple[int, ...] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def q(self, *, with_dates: bool = True, prefix: str = "", fields: dict | None = None) -> Q:
        """The same set, as a filter on the reports (on a relation to them with
        `prefix`, e.g. `signalement__`; on annotations that stand for the fields with
        `fields`, e.g. {"status": "key_status"})."""
        fields = fields or {}
        lookups = {
            ("is_public", "exact"): True if self.public_only else None,
            ("status", "in"): self.statuses,
            ("category_id", "in"): self.category_ids,
            ("department_id", "in"): self.department_ids,
        }
        if with_dates:
            lookups |= {
                ("created_at", "gte"): self.created_after,
                ("created_at", "lte"): self.created_before,
            }
        return Q(
            **{
                f"{prefix}{fields.get(name, name)}__{lookup}": value
                for (name, lookup), value in lookups.items()
                if value is not None
            }
        )

    @property
    def dated(self) -> bool:
        return self.created_after is not None or self.created_before is not None

    def within_calendar(self) -> bool:
        """Whether the creation dates lie in months SQLite's calendar knows."""
        tz = timezone.get_default_timezone()
        return all(
            FIRST_YEAR <= moment.astimezone(tz).year < END_YEAR
            for moment in (self.created_after, self.created_before)
            if moment is not None
        )


def _in(column: str, values) -> tuple[str, list]:
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def _key_conditions(filters: Filters) -> tuple[list[str], list]:
    """The filters on the rollup's key columns."""
    conditions, params = [], []
    if filters.public_only:
        conditions.append("is_public = %s")
        params.append(True)
    for column, values in (
        ("status", filters.statuses),
        ("category_id", filters.category_ids),
        ("department_id", filters.department_ids),
    ):
        if values is not None:
            sql, values_params = _in(column, values)
            conditions.append(sql)
            params += values_params
    return conditions, params


def _value_month(connection, zone: str, moment: datetime) -> tuple[str, list]:
    """SQL of the month of a datetime given as a parameter, as the triggers count it."""
    if connection.vendor == "postgresql":
        return month_sql("postgresql", zone, "CAST(%s AS timestamptz)"), [moment] * 2
    stored = connection.ops.adapt_datetimefield_value(moment)
    return month_sql("sqlite", zone, "%s"), [stored] * 2


def _compiled(queryset, empty: str) -> tuple[str, tuple]:
    """The SQL of a queryset, or `empty` when its filters match nothing (`status__in`
    an empty list)."""
    try:
        return queryset.query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:
        return empty, ()


def _kind_rows(
    connection, kind: str, conditions: list[str], params: list, select: str, then: str = ""
) -> tuple[str, list]:
    """`SELECT {select} … {then}` over the rollup's rows of one kind that meet
    `conditions`, and on PostgreSQL UNION ALL the same over its changes (SQLite's
    triggers write the rollup itself: no changes to read, and its GROUP BYs can then walk
    the rollup's indexes). The kind is a literal, as the partial index on the count rows
    names it (SQLite would not match a parameter to it)."""
    where = " AND ".join([f"kind = '{kind}'", *conditions])
    tables = (ROLLUP, DELTA) if connection.vendor == "postgresql" else (ROLLUP,)
    parts = [f"SELECT {select} FROM {table} WHERE {where} {then}" for table in tables]
    return " UNION ALL ".join(parts), params * len(tables)


def _month_bounds(moment: datetime, tz) -> tuple[datetime | None, datetime | None]:
    """The first instant of the month (of `tz`) of `moment`, and that of the next month;
    None beyond the datetimes Python knows."""
    local = moment.astimezone(tz)
    year, month = local.year, local.month
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    bounds = []
    for start in ((year, month), following):
        try:
            bounds.append(month_start(*start, tz))
        except (OverflowError, ValueError):
            bounds.append(None)
    return bounds[0], bounds[1]


def _source(connection, zone: str, filters: Filters) -> tuple[str, list]:
    """A SELECT of the count rows (`kind` c, COLUMNS) of the rollup and its changes that
    count the reports of `filters`: whole months from the rollup; when a creation date
    cuts a month, minus the reports of that month on the other side of it, found by the
    creation date's index between the date and the month's first (or next month's
    first) instant: nothing to read when the date is a month's first (or last) instant,
    as a month's filter gives it."""
    conditions, params = _key_conditions(filters)
    tz = ZoneInfo(zone)
    bounds = []  # (month SQL, params, the reports of that month outside the dates)
    if filters.created_after is not None:
        after = filters.created_after
        month, month_params = _value_month(connection, zone, after)
        conditions.append(f"created_month >= {month}")
        params += month_params
        first, _ = _month_bounds(after, tz)
        if first is None or after > first:
            outside = Q(created_at__lt=after) & (Q() if first is None else Q(created_at__gte=first))
            bounds.append((month, month_params, outside))
    if filters.created_before is not None:
        before = filters.created_before
        month, month_params = _value_month(connection, zone, before)
        conditions.append(f"created_month <= {month}")
        params += month_params
        _, following = _month_bounds(before, tz)
        if following is None or before + timedelta(microseconds=1) < following:
            outside = Q(created_at__gt=before)
            if following is not None:
                outside &= Q(created_at__lt=following)
            bounds.append((month, month_params, outside))
    columns = ", ".join(COLUMNS)
    sql, params = _kind_rows(connection, "c", conditions, params, columns)
    parts = [sql]
    for month, month_params, outside in bounds:
        reports = (
            Signalement.objects.using(connection.alias)
            .filter(filters.q(with_dates=False), outside)
            .order_by()
            .values(*REPORT_COLUMNS)
        )
        nothing = f"SELECT {', '.join(REPORT_COLUMNS)} FROM {REPORT} WHERE 1 = 0"
        sql, sql_params = _compiled(reports, nothing)
        removed = rows_sql(connection.vendor, zone, f"({sql})", -1, kinds="c")
        parts.append(f"SELECT {columns} FROM ({removed}) cut WHERE cut.created_month = {month}")
        params += [*sql_params, *month_params]
    return " UNION ALL ".join(parts), params


@dataclass
class Figures:
    """What the rollup answers for a set of reports (see `figures`)."""

    # {(department id or 0, status): [reports, with a due date, resolved by it,
    # resolved with a due date]}
    by_department_status: dict[tuple[int, str], list[int]]
    departments: dict[int, tuple[str | None, str | None]]  # id: (code, name)
    # [{category, name, count, resolved_with_due_date, on_time}]
    category_rows: list[dict]
    created: dict[date, int]
    resolved: dict[date, int]
    pending: dict[int, int]  # open, due later than now: by department id
    # Histograms of the times to resolution and of the lateness, by bucket (None with
    # creation dates: they do not count by month).
    resolution: dict[int, int] | None = None
    lateness: dict[int, int] | None = None


def figures(using: str, filters: Filters, now: datetime) -> Figures | None:
    """The statistics' counts of the reports of `filters`, from the rollup, in one
    statement (one snapshot, the rollup's time zone with them); None when the rollup
    cannot answer exactly (not built, built in another `TIME_ZONE`, months SQLite's
    calendar does not know)."""
    connection = connections[using]
    zone = settings.TIME_ZONE
    if connection.vendor not in ("postgresql", "sqlite"):
        return None
    if connection.vendor == "sqlite" and not filters.within_calendar():
        return None
    after, before = filters.created_after, filters.created_before
    if after is not None and before is not None and after > before:
        return None  # nothing: the reports' index says so at once
    source, params = _source(connection, zone, filters)
    # Found by the due date's index: the other filters, and the grouping, are on
    # expressions that no index answers (SQLite would otherwise walk the category's or
    # the department's index: a large part of the reports).
    keys = {
        "is_public": Coalesce("is_public", False),
        "status": Coalesce("status", Value("")),
        "category_id": Coalesce("category_id", 0),
        "department_id": Coalesce("department_id", 0),
        "created_at": Coalesce("created_at", "due_at"),
    }
    pending = (
        Signalement.objects.using(using)
        .filter(due_at__gte=now)
        .annotate(**{f"key_{name}": expression for name, expression in keys.items()})
        .filter(key_status__in=OPEN_STATUSES)
        .filter(filters.q(fields={name: f"key_{name}" for name in keys}))
        .order_by()
        .values("key_department_id")
        .annotate(pending=Count("*"))
    )
    pending_sql, pending_params = _compiled(
        pending, f"SELECT 0 AS key_department_id, 0 AS pending FROM {REPORT} WHERE 1 = 0"
    )
    if connection.vendor == "postgresql":
        ctes, counts = _counts_grouping_sets()
    else:
        ctes, counts = "", _counts_union()
    histograms, histogram_params = "", []
    if not filters.dated:
        conditions, key_params = _key_conditions(filters)
        for kind in ("r", "l"):
            # Summed by bucket in each table apart, the rollup's in the order of its
            # index on (kind, bucket, …): no sort and no hash of its tens of thousands
            # of rows; `_figures` adds the two tables' sums.
            sql, sql_params = _kind_rows(
                connection,
                kind,
                conditions,
                key_params,
                f"'{kind}', NULL, bucket, NULL, NULL, {_sum('n')}, 0, 0, 0",
                "GROUP BY bucket",
            )
            histograms += f" UNION ALL {sql}"
            histogram_params += sql_params
    sql = f"""
        WITH src AS ({source}){ctes}
        {counts}
        {histograms}
        UNION ALL
        SELECT 'p', NULL, p.key_department_id, NULL, NULL, p.pending, 0, 0, 0
        FROM ({pending_sql}) p
        UNION ALL
        SELECT 'z', zone, 0, NULL, NULL, 0, 0, 0, 0 FROM {STATE}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *histogram_params, *pending_params])
        rows = cursor.fetchall()
    return _figures(rows, dated=filters.dated, zone=zone)


def _sum(expression: str) -> str:
    """SQL of a sum of integers as an integer (PostgreSQL's SUM of big integers is a
    numeric, which psycopg reads as a Decimal: slow, thousands of rows a statement)."""
    return f"CAST(SUM({expression}) AS BIGINT)"


RESOLVED_DUE = "CASE WHEN src.resolved_month <> 0 THEN src.due ELSE 0 END"


def _counts_grouping_sets() -> tuple[str, str]:
    """PostgreSQL: the counts by department and status, by category, by month created and
    by month resolved, in one pass over the count rows (`src`) and one hash of them (a
    few hundred groups); the names joined to the groups afterwards. Rows as `_figures`
    reads them; the month resolved 0 (not resolved) is left to it. (Common table
    expressions to add after `src`, and the SELECT.)"""
    groups = f""", g AS (
            SELECT CASE WHEN GROUPING(src.department_id) = 0 THEN 'd'
                    WHEN GROUPING(src.category_id) = 0 THEN 'c'
                    WHEN GROUPING(src.created_month) = 0 THEN 'm' ELSE 'x' END AS part,
                src.status, src.department_id, src.category_id, src.created_month,
                src.resolved_month, {_sum("src.n")} AS n, {_sum("src.due")} AS due,
                {_sum("src.on_time")} AS on_time, {_sum(RESOLVED_DUE)} AS resolved_due
            FROM src
            GROUP BY GROUPING SETS ((src.status, src.department_id), (src.category_id),
                (src.created_month), (src.resolved_month))
        )"""
    select = f"""
        SELECT g.part, g.status,
            COALESCE(g.department_id, g.category_id, g.created_month, g.resolved_month),
            COALESCE(d.code, c.code), COALESCE(d.name, c.name),
            g.n, g.due, g.on_time, g.resolved_due
        FROM g
        LEFT JOIN {DEPARTMENTS} d ON g.part = 'd' AND d.id = g.department_id
        LEFT JOIN {CATEGORIES} c ON g.part = 'c' AND c.id = g.category_id"""
    return groups, select


def _counts_union() -> str:
    """SQLite (no GROUPING SETS): the same counts, one GROUP BY each over the count rows
    (`src`, a few thousand)."""
    return f"""
        SELECT 'd' AS part, src.status, src.department_id AS id, d.code, d.name,
            {_sum("src.n")} AS n, {_sum("src.due")} AS due, {_sum("src.on_time")} AS on_time,
            {_sum(RESOLVED_DUE)} AS resolved_due
        FROM src LEFT JOIN {DEPARTMENTS} d ON d.id = src.department_id
        GROUP BY src.status, src.department_id, d.code, d.name
        UNION ALL
        SELECT 'c', NULL, src.category_id, c.code, c.name, {_sum("src.n")}, 0,
            {_sum("src.on_time")}, {_sum(RESOLVED_DUE)}
        FROM src LEFT JOIN {CATEGORIES} c ON c.id = src.category_id
        GROUP BY src.category_id, c.code, c.name
        UNION ALL
        SELECT 'm', NULL, src.created_month, NULL, NULL, {_sum("src.n")}, 0, 0, 0
        FROM src GROUP BY src.created_month
        UNION ALL
        SELECT 'x', NULL, src.resolved_month, NULL, NULL, {_sum("src.n")}, 0, 0, 0
        FROM src WHERE src.resolved_month <> 0 GROUP BY src.resolved_month
    """


def _month(key: int) -> date:
    return date(key // 100, key % 100, 1)


def _figures(rows, *, dated: bool, zone: str) -> Figures | None:
    """The figures from the rows of `figures`' statement; None when the rollup counts
    in another time zone than `zone` (or is not built: no zone), or a month SQLite's
    calendar does not know."""
    built_in = None
    result = Figures(
        by_department_status={},
        departments={},
        category_rows=[],
        created={},
        resolved={},
        pending=defaultdict(int),
        resolution=None if dated else {},
        lateness=None if dated else {},
    )
    for part, status, key, code, name, n, due, on_time, resolved_due in rows:
        if part == "r" or part == "l":  # most rows: the buckets (no histograms with dates)
            histogram = result.resolution if part == "r" else result.lateness
            histogram[key] = histogram.get(key, 0) + n  # the rollup's, then its changes'
        elif part == "d":
            result.by_department_status[(key, status)] = [n, due, on_time, resolved_due]
            result.departments[key] = (code, name)
        elif part == "c":
            if n:
                result.category_rows.append(
                    {
                        "category": code,
                        "name": name,
                        "count": n,
                        "resolved_with_due_date": resolved_due,
                        "on_time": on_time,
                    }
                )
        elif part in ("m", "x"):
            if key < 0:
                return None  # a month SQLite's calendar does not know
            if n and (key or part == "m"):  # resolved in month 0: not resolved
                (result.created if part == "m" else result.resolved)[_month(key)] = n
        elif part == "p":
            result.pending[key] += n
        else:  # "z"
            built_in = status
    if built_in != zone:
        return None  # read in vain, once, after TIME_ZONE changed and before migrate
    return result


def medians_hours(
    using: str, filters: Filters, counted: Figures, *, resolved: int, late: int
) -> tuple[float | None, float | None]:
    """The median time to resolution and the median lateness of the reports of
    `filters` (`resolved` of them resolved, `late` resolved late), in hours, exact, in
    one statement (`_middle`); None for either without any."""
    slices = {
        "r": _middle(using, filters, counted.resolution, count=resolved, lateness=False),
        "l": _middle(using, filters, counted.lateness, count=late, lateness=True),
    }
    parts, params = [], []
    for kind, middle in slices.items():
        if middle is not None:
            sql, sql_params = _compiled(middle, "")
            if sql:
                parts.append(f"SELECT '{kind}', m.us FROM ({sql}) m")
                params += sql_params
    durations = defaultdict(list)
    if parts:
        with connections[using].cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            for kind, us in cursor.fetchall():
                durations[kind].append(us)

    def hours(kind: str) -> float | None:
        middle = durations.get(kind)
        if not middle:  # none, or reports changed between the two statements
            return None
        seconds = sum(timedelta(microseconds=us).total_seconds() for us in middle)
        return seconds / len(middle) / 3600

    return hours("r"), hours("l")


def _middle(
    using: str,
    filters: Filters,
    histogram: dict[int, int] | None,
    *,
    count: int,
    lateness: bool,
):
    """The durations (`us`, in microseconds) of the middle report(s) among the `count`
    reports of `filters` resolved (late), as a queryset of one or two values; None
    without any. With their histogram (when the creation dates cut no month): it gives
    the bucket(s) of the middle report(s) and how many come before; the database orders
    that bucket's reports alone (by the index on the same duration). Without it (dates:
    the reports of a few months), the database orders them all, as durations in its own
    SQL (SQLite's are a Python function otherwise)."""
    if histogram is not None:
        count = sum(histogram.values())
    if count <= 0:
        return None
    lower, upper = (count - 1) // 2, count // 2
    low = high = None
    before = 0
    if histogram is not None:
        seen, first, last = 0, None, None
        for bucket in sorted(histogram):
            size = histogram[bucket]
            if first is None and seen + size > lower:
                first, before = bucket, seen
            if seen + size > upper:
                last = bucket
                break
            seen += size
        if first is None or last is None:
            return None
        low, _ = bucket_bounds(first)
        _, high = bucket_bounds(last)
    if lateness:
        duration = DurationMicroseconds("resolved_at", "due_at")
        # Through a bucket, the index on the lateness finds them (its condition is this
        # one). Without, a positive lateness (the same reports) keeps PostgreSQL from
        # reading that index whole (every late report) besides the dates'.
        late = Q(resolved_at__gt=F("due_at")) if histogram is not None else Q(us__gt=0)
        population = Q()
    else:
        duration = DurationMicroseconds("resolved_at", "created_at")
        late = Q()
        population = Q(resolved_at__isnull=False)
    durations = (
        Signalement.objects.using(using)
        .filter(filters.q(), population)
        .annotate(us=duration)
        .filter(late)
    )
    if high is not None:
        durations = durations.filter(us__lt=high)
    if low is not None:
        durations = durations.filter(us__gte=low)
    offset = lower - before
    return durations.order_by("us").values("us")[offset : offset + upper - lower + 1]


def count(
    using: str = "default",
    *,
    public_only: bool,
    statuses=None,
    category_ids=None,
    department_ids=None,
) -> int | None:
    """The exact number of reports (the public ones with `public_only`) with these
    statuses, categories (ids) and departments (ids; None: any), from the rollup, in one
    query over its rows; None when the rollup is not built."""
    filters = Filters(
        public_only=public_only,
        statuses=None if statuses is None else tuple(statuses),
        category_ids=None if category_ids is None else tuple(category_ids),
        department_ids=None if department_ids is None else tuple(department_ids),
    )
    connection = connections[using]
    if connection.vendor not in ("postgresql", "sqlite"):
        return None
    conditions, params = _key_conditions(filters)
    # An index-only scan of the count rows' partial index (a few thousand entries at
    # most, a few dozen with a status).
    counted, params = _kind_rows(connection, "c", conditions, params, "SUM(n) AS n")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT zone FROM {STATE}), (SELECT SUM(n) FROM ({counted}) t)", params
        )
        zone, total = cursor.fetchone()
    if zone is None:
        return None
    return int(total or 0)
