"""The rollup of reports: counts maintained by database triggers, read by the statistics
and the list's counts instead of scanning the reports (see `signalements/rollup.py`)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

# The rollup's key, in the order of its unique index (months first: a range of months
# is a range of the index).
ROLLUP_KEY = (
    "kind",
    "created_month",
    "is_public",
    "status",
    "category_id",
    "department_id",
    "resolved_month",
    "bucket",
)
ROLLUP_MEASURES = ("n", "due", "on_time")
# The key columns the reads filter on (`rollup.Filters`).
COUNT_FILTERS = ("is_public", "status", "category_id", "department_id")


def duration_us_sql(vendor: str, end: str, start: str) -> str:
    """SQL of `end - start` (two datetime columns) in whole microseconds, exact, in the
    database's own functions: an index can be made on it, and a trigger can compute it
    whoever writes (Django's own SQLite date arithmetic is a Python function).

    SQLite stores `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC): the whole seconds between the
    first 19 characters (julianday's error, tens of microseconds, rounded away), plus the
    difference of the fractions' digits. (No `strftime('%s')`: a `%` would be taken for
    a parameter.)"""
    if vendor == "postgresql":
        return f"(EXTRACT(EPOCH FROM ({end} - {start})) * 1000000)::bigint"
    if vendor == "sqlite":

        def micros(value: str) -> str:
            return f"CAST(substr(substr({value}, 21) || '000000', 1, 6) AS INTEGER)"

        seconds = (
            f"CAST(round((julianday(substr({end}, 1, 19)) - julianday(substr({start}, 1, 19)))"
            " * 86400) AS INTEGER)"
        )
        return f"({seconds} * 1000000 + {micros(end)} - {micros(start)})"
    raise NotImplementedError(f"No duration in microseconds for {vendor}.")


class DurationMicroseconds(models.Func):
    """`end - start` in whole microseconds (a big integer), in SQL the database computes
    by itself (`duration_us_sql`), for the indexes on the times to resolution and the
    lateness, and the queries that read through them."""

    output_field = models.BigIntegerField()
    arity = 2

    def as_sql(self, compiler, connection, **extra_context):
        end, end_params = compiler.compile(self.source_expressions[0])
        start, start_params = compiler.compile(self.source_expressions[1])
        if end_params or start_params:
            raise ValueError("DurationMicroseconds takes columns, not values.")
        return duration_us_sql(connection.vendor, end, start), ()


class RollupRow(models.Model):
    """The columns of the rollup and of its changes: a key (what the statistics group
    and filter by) and its measures."""

    kind = models.CharField(max_length=1)
    created_month = models.IntegerField()
    is_public = models.BooleanField()
    status = models.CharField(max_length=20)
    category_id = models.BigIntegerField()
    department_id = models.BigIntegerField()
    resolved_month = models.IntegerField()
    bucket = models.IntegerField()
    n = models.BigIntegerField()
    due = models.BigIntegerField()
    on_time = models.BigIntegerField()

    class Meta:
        abstract = True


class ReportRollup(RollupRow):
    """Counts of reports by what the statistics group by and filter on. Three kinds of
    rows:

    - `c` (counts): reports by visibility, status, category, department, month created
      and month resolved (`created_month`, `resolved_month` as YYYYMM in `TIME_ZONE`;
      0: not resolved; -1: beyond the months SQLite knows, see `RollupMonth`), with how
      many have a due date (`due`) and how many were resolved by it (`on_time`);
    - `r` (resolution times): resolved reports by visibility, status, category,
      department and `bucket` of their time to resolution;
    - `l` (lateness): reports resolved after their due date, by the same and the bucket
      of their lateness.

    A report without a category or a department counts under 0. Written only by the
    database triggers (`triggers.py`) and the compaction (`rollup.compact`)."""

    class Meta:
        verbose_name = _("report rollup row")
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=ROLLUP_KEY, name="rollup_key_unique")]
        # Covering indexes (every column a read takes): the reads scan them in order
        # without visiting the table. The count rows by what the list's counts and the
        # statistics filter on; the histograms' rows by kind and bucket, the order
        # their sums by bucket are made in.
        indexes = [
            models.Index(
                fields=[*COUNT_FILTERS, "created_month", "resolved_month", *ROLLUP_MEASURES],
                condition=models.Q(kind="c"),
                name="rollup_counts_idx",
            ),
            models.Index(
                fields=["kind", "bucket", *COUNT_FILTERS, "n"],
                name="rollup_buckets_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.created_month} {self.status}: {self.n}"


class ReportRollupDelta(RollupRow):
    """Changes to the rollup not yet folded into it (PostgreSQL): each writing statement
    inserts its own rows (+1 or -1 per key), so that concurrent writers never wait for
    one another on a counter row; readers add them up with the rollup, and the periodic
    compaction folds them in. SQLite, one writer at a time, updates the rollup directly
    and leaves this empty."""

    class Meta:
        verbose_name = _("report rollup change")
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.kind} {self.created_month} {self.status}: {self.n:+d}"


class RollupMonth(models.Model):
    """SQLite's calendar (it has no time zones): the UTC instant each month of
    `TIME_ZONE` starts at, as SQLite stores datetimes, 1900 to 2199, and a last row (-1)
    for what comes after. PostgreSQL converts by itself (`AT TIME ZONE`)."""

    starts_at = models.CharField(max_length=32, primary_key=True)
    month = models.IntegerField()

    class Meta:
        verbose_name = _("rollup month")
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.month} from {self.starts_at}"


class RollupState(models.Model):
    """One row: the time zone whose months the rollup counts in. Another `TIME_ZONE`
    makes the statistics compute without the rollup until `migrate` rebuilds it."""

    zone = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("rollup state")
        default_permissions = ()

    def __str__(self) -> str:
        return self.zone
