"""The agents' daily digest of overdue reports: the open reports past their due date
(`due_at`, see `service_levels.py`) of each agent's departments, and those assigned to
them, in one email a day.

From `OVERDUE_DIGEST_HOUR` (in `TIME_ZONE`; 7 by default, -1: no digests) on,
`send_overdue_digests` finds the agents (active members of the "agents" group, with an
email address) who have overdue reports, claims each one's digest of the day, and
enqueues its email. The worker runs it every few minutes and so may cron
(`manage.py send_overdue_digests`), like the alerts' digests (`alerts.py`).

Never two digests for one agent on one day, without a table of its own: the claim is the
digest's task itself. With the database queue (`TASKS_BACKEND=database`, the default),
the task's row (`task_path`, arguments: the agent and the day) is written in the same
transaction that checked there was none, under a lock on the agent's row: the worker and
cron, or several workers, cannot both claim it, and a restarted worker finds it. The
queue keeps finished tasks `TASKS_KEEP_DAYS` days (at least 1 is needed here). With
`TASKS_BACKEND=immediate` there is no queue to look into: the claim is a cache entry
(`cache.add`, one caller wins), shared between processes only with a shared cache
(`REDIS_URL`): run the command from one cron line then.

The email is written in the agent's language when known (that of their latest alert or
follow asked for while logged in, else of their latest report), else in `LANGUAGE_CODE`.
"""

from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import ngettext

from . import emails, service_levels
from .languages import language_for
from .models import AGENTS_GROUP, Signalement, Subscription
from .tasks import periodic, retried_task

# A digest lists this many reports at most, the latest first (and says how many more).
DIGEST_MAX_REPORTS = 50
# How long the cache remembers a claimed digest (immediate tasks only): past the day.
CLAIM_SECONDS = 2 * 24 * 3600


def overdue_reports(now: datetime) -> QuerySet:
    """The open reports whose due date is past."""
    return Signalement.objects.filter(service_levels.overdue(now))


def reports_for(agent, now: datetime) -> QuerySet:
    """An agent's overdue reports: those of their departments, and those assigned to
    them; the latest first (the longest past their due date)."""
    return (
        overdue_reports(now)
        .filter(Q(department__members=agent) | Q(assigned_to=agent))
        .distinct()
        .select_related("category", "department", "assigned_to")
        .order_by("due_at", "pk")
    )


def recipients(now: datetime) -> list[int]:
    """The ids of the agents who have overdue reports and an email address (two
    subqueries in one query, whatever the number of reports)."""
    overdue = overdue_reports(now)
    return list(
        get_user_model()
        .objects.filter(is_active=True, groups__name=AGENTS_GROUP)
        .exclude(email="")
        .filter(
            Q(departments__in=overdue.filter(department__isnull=False).values("department_id"))
            | Q(pk__in=overdue.filter(assigned_to__isnull=False).values("assigned_to_id"))
        )
        .order_by("pk")
        .values_list("pk", flat=True)
        .distinct()
    )


def _uses_database_queue() -> bool:
    from django_tasks_db.backend import DatabaseBackend

    return isinstance(send_overdue_digest.get_backend(), DatabaseBackend)


def _claim(agent_id: int, day: str) -> bool:
    """Whether this caller gets to send the agent's digest of `day` (see the module's
    doc). Called in a transaction; with the database queue, the caller enqueues the
    digest's task before that transaction ends: its row is the claim."""
    if not _uses_database_queue():
        return cache.add(f"signalements:overdue-digest:{day}:{agent_id}", True, CLAIM_SECONDS)
    from django_tasks_db.models import DBTaskResult

    # Serialises the callers on this agent (SQLite's IMMEDIATE transactions already do).
    locked = get_user_model().objects.select_for_update().filter(pk=agent_id)
    if not locked.values_list("pk", flat=True).first():
        return False
    return not DBTaskResult.objects.filter(
        task_path=send_overdue_digest.module_path,
        args_kwargs__args__0=agent_id,
        args_kwargs__args__1=day,
    ).exists()


@periodic(every=timedelta(minutes=5))
def send_overdue_digests(now: datetime | None = None) -> int:
    """The day's digests of overdue reports, from OVERDUE_DIGEST_HOUR on: each agent
    with overdue reports and no digest yet today gets one (a task). Returns how many
    were claimed."""
    now = now or timezone.now()
    local = timezone.localtime(now, timezone.get_default_timezone())
    hour = settings.OVERDUE_DIGEST_HOUR
    if hour < 0 or local.hour < hour:
        return 0
    day = local.date().isoformat()
    claimed = 0
    for agent_id in recipients(now):
        with transaction.atomic():
            if not _claim(agent_id, day):
                continue
            send_overdue_digest.enqueue(agent_id, day)
        claimed += 1
    return claimed


def language_of(agent) -> str:
    """The language to write to an agent in: that of their latest alert or follow asked
    for while logged in, else of their latest report, else the site's."""
    latest_subscription = Subscription.objects.filter(user=OuterRef("pk")).order_by(
        "-created_at", "-pk"
    )
    latest_report = Signalement.objects.filter(reporter=OuterRef("pk")).order_by(
        "-created_at", "-pk"
    )
    found = (
        get_user_model()
        .objects.filter(pk=agent.pk)
        .annotate(
            language=Coalesce(
                Subquery(latest_subscription.values("language")[:1]),
                Subquery(latest_report.values("language")[:1]),
            )
        )
        .values_list("language", flat=True)
        .first()
    )
    return language_for(found)


def _lateness(due_at: datetime, now: datetime) -> dict:
    """How long past its due date a report is, in whole days, or hours under a day."""
    late = now - due_at
    days = late.days
    if days >= 1:
        return {"days": days, "hours": None}
    return {"days": None, "hours": max(1, int(late.total_seconds() // 3600))}


def report_line(report: Signalement, now: datetime) -> dict:
    """What the digest says of a report (agents read everything; no contact data)."""
    return {
        "reference": report.reference,
        "title": report.title or report.description[:80],
        "category": report.category.name if report.category_id else "",
        "department": report.department.name if report.department_id else "",
        "assigned_to": report.assigned_to.get_username() if report.assigned_to_id else "",
        "status": report.get_status_display(),
        "due_at": timezone.localtime(report.due_at, timezone.get_default_timezone()),
        "late": _lateness(report.due_at, now),
        "url": emails.public_url(
            reverse("admin:signalements_signalement_change", args=[report.pk])
        ),
    }


@retried_task(delays=emails.RETRY_DELAYS)
def send_overdue_digest(agent_id: int, day: str) -> str:
    """An agent's digest of `day`: their overdue reports, as they are when it runs."""
    agent = get_user_model().objects.filter(pk=agent_id, is_active=True).first()
    if agent is None or not agent.email:
        return "no agent or no address"
    if date.fromisoformat(day) != timezone.localdate(timezone=timezone.get_default_timezone()):
        return "a past day's digest"  # run too late (a queue stopped overnight): stale
    now = timezone.now()
    found = list(reports_for(agent, now)[: DIGEST_MAX_REPORTS + 1])
    if not found:
        return "nothing overdue"
    count = reports_for(agent, now).count() if len(found) > DIGEST_MAX_REPORTS else len(found)
    shown = found[:DIGEST_MAX_REPORTS]
    with translation.override(language_of(agent)):
        message = emails.compose(
            "overdue_digest",
            to=agent.email,
            subject=ngettext(
                "%(count)d overdue report",
                "%(count)d overdue reports",
                count,
            )
            % {"count": count},
            context={
                "reports": [report_line(report, now) for report in shown],
                "count": count,
                "more": max(0, count - len(shown)),
                "departments": ", ".join(agent.departments.values_list("name", flat=True)),
                "list_url": emails.public_url(reverse("admin:signalements_signalement_changelist"))
                + "?overdue=yes",
            },
        )
    message.send()
    return f"sent {count}"
