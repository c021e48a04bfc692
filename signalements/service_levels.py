"""Service levels: by when a report is due (`Signalement.due_at`).

A category's service level (`models.ServiceLevel`, for the report's priority or for any)
gives a handling time in calendar hours or in working days. The time runs from the
report's creation; `routing.py` sets `due_at` on create and again when an agent changes
the category or the priority (always from the creation: a change of category does not
give the report a fresh delay).

- **Calendar hours** are elapsed time: 48 hours are 48 hours, nights, weekends and
  changes of clock included.
- **Working days** leave out Saturdays, Sundays and the public holidays of
  `SLA_HOLIDAYS_COUNTRY` (France by default; `SLA_HOLIDAYS_SUBDIVISION` adds regional
  ones, e.g. "57" for Moselle's Good Friday and 26 December), from the `holidays`
  package; an empty country leaves out weekends only. The clock runs on working days
  only: a report is due at the same local time of day (in `TIME_ZONE`) that many working
  days later. Filed on Thursday 24 December 2026 at 14:00 with 2 working days, it is due
  on Tuesday 29 December at 14:00 (Christmas and the weekend skipped). Filed on a day
  off, its clock starts at midnight of the next working day: filed on a Saturday with 1
  working day, it is due at the end of Monday (Tuesday 00:00).

A category without a service level gives `OVERDUE_DAYS` calendar days (none when 0), so
that every report has a due date by default and the "overdue" figures mean something
before any service level is configured."""

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import holidays
from django.conf import settings
from django.core import checks
from django.db.models import Q
from django.utils import timezone

from .models import CLOSED_STATUSES, ServiceLevel, TimeUnit


@lru_cache(maxsize=64)
def _holidays(country: str, subdivision: str, year: int) -> frozenset[date]:
    """The public holidays of a year (computed once per process: they do not change)."""
    return frozenset(
        holidays.country_holidays(country, subdiv=subdivision or None, years=year).keys()
    )


def _is_working_day(day: date, country: str, subdivision: str) -> bool:
    if day.weekday() >= 5:
        return False
    return not country or day not in _holidays(country, subdivision, day.year)


def is_working_day(day: date) -> bool:
    """Monday to Friday, and not a public holiday of `SLA_HOLIDAYS_COUNTRY`."""
    return _is_working_day(
        day,
        settings.SIGNALEMENT_SLA_HOLIDAYS_COUNTRY,
        settings.SIGNALEMENT_SLA_HOLIDAYS_SUBDIVISION,
    )


@lru_cache(maxsize=8192)
def _due_day(start: date, days: int, country: str, subdivision: str) -> tuple[date, bool]:
    """The day `days` working days after the day `start`, and whether the clock started
    at midnight (`start` is a day off). Kept per process: a bulk import asks it for
    thousands of reports filed on the same few thousand days."""
    day, from_midnight = start, False
    while not _is_working_day(day, country, subdivision):
        day += timedelta(days=1)
        from_midnight = True
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if _is_working_day(day, country, subdivision):
            remaining -= 1
    return day, from_midnight


def add_working_days(start: datetime, days: int) -> datetime:
    """`days` working days after `start`: the same local time of day (in `TIME_ZONE`,
    whatever time zone a request may have activated), that many working days later. A
    start on a day off counts from midnight of the next working day."""
    tz = timezone.get_default_timezone()
    local = timezone.localtime(start, tz)
    day, from_midnight = _due_day(
        local.date(),
        days,
        settings.SIGNALEMENT_SLA_HOLIDAYS_COUNTRY,
        settings.SIGNALEMENT_SLA_HOLIDAYS_SUBDIVISION,
    )
    time_of_day = time.min if from_midnight else local.time().replace(tzinfo=None)
    # A local time that a change of clock skips (02:30 on the last Sunday of March) comes
    # out an hour later (zoneinfo's reading); in Europe such a day is a Sunday, never a
    # due day.
    return timezone.make_aware(datetime.combine(day, time_of_day), tz)


def level_for(category_id: int | None, priority: str) -> ServiceLevel | None:
    """The category's service level for this priority, else its level for any priority
    (one query: the empty priority sorts last in descending order)."""
    if category_id is None:
        return None
    return (
        ServiceLevel.objects.filter(category_id=category_id, priority__in=["", priority or ""])
        .order_by("-priority")
        .first()
    )


class Levels:
    """Every service level, read at once: `level_for()` without a query a report, for
    the bulk import (thousands of reports a second). The levels are those of its
    creation."""

    def __init__(self):
        self.levels = {
            (level.category_id, level.priority): level for level in ServiceLevel.objects.all()
        }

    def level_for(self, category_id: int | None, priority: str) -> ServiceLevel | None:
        """As `level_for()`: the priority's own level, else the level for any priority."""
        if category_id is None:
            return None
        found = self.levels.get((category_id, priority or ""))
        return found if found is not None else self.levels.get((category_id, ""))


def due_from(level: ServiceLevel | None, start: datetime) -> datetime | None:
    """When a report filed at `start` is due under this service level (None: the
    category has none, and `OVERDUE_DAYS` calendar days apply)."""
    if level is None:
        default_days = settings.SIGNALEMENT_OVERDUE_DAYS
        if default_days <= 0:
            return None
        # Calendar days: the same local time of day, that many days later.
        local = timezone.localtime(start, timezone.get_default_timezone())
        return timezone.make_aware(
            datetime.combine(local.date() + timedelta(days=default_days), local.time()),
            local.tzinfo,
        )
    if level.unit == TimeUnit.HOURS:
        # Elapsed time: added in UTC (Python adds to an aware datetime's wall clock, which
        # is an hour off across a change of clock).
        return start.astimezone(UTC) + timedelta(hours=level.amount)
    return add_working_days(start, level.amount)


def due_at(category_id: int | None, priority: str, start: datetime) -> datetime | None:
    """When a report of this category and priority, filed at `start`, is due."""
    return due_from(level_for(category_id, priority), start)


def overdue(now: datetime | None = None) -> Q:
    """The reports overdue at `now`: open (neither resolved nor rejected) and past their
    due date. One definition for the statistics, the admin's filter and dashboard, and
    the agents' digest."""
    return Q(due_at__lt=now or timezone.now()) & ~Q(status__in=CLOSED_STATUSES)


def not_overdue(now: datetime | None = None) -> Q:
    """The complement of `overdue()`, written out: without a due date, due later, or
    closed (a NOT over a nullable column would drop the reports without a due date on
    some databases' three-valued logic)."""
    return (
        Q(due_at__isnull=True)
        | Q(due_at__gte=now or timezone.now())
        | Q(status__in=CLOSED_STATUSES)
    )


@checks.register()
def check_holidays_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A country or subdivision that the `holidays` package does not know would make
    every report's creation fail: refused at start-up (`manage.py check`) instead."""
    country = settings.SIGNALEMENT_SLA_HOLIDAYS_COUNTRY
    subdivision = settings.SIGNALEMENT_SLA_HOLIDAYS_SUBDIVISION
    if not country:
        if subdivision:
            return [
                checks.Error(
                    "SLA_HOLIDAYS_SUBDIVISION is set without SLA_HOLIDAYS_COUNTRY.",
                    id="signalements.E101",
                )
            ]
        return []
    try:
        _holidays(country, subdivision, timezone.now().year)
    except NotImplementedError as unknown:
        return [
            checks.Error(
                f"SLA_HOLIDAYS_COUNTRY={country!r} / SLA_HOLIDAYS_SUBDIVISION="
                f"{subdivision!r}: {unknown}",
                hint="An ISO 3166 country code of the `holidays` package (FR), and one of "
                "its subdivisions or nothing.",
                id="signalements.E100",
            )
        ]
    return []
