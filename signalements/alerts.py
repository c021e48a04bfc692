"""The alerts' emails (`subscriptions.py` says who has which alert, and matches
reports with them):

- **immediate**: a new public report with a location is matched, once saved, with the
  confirmed immediate alerts (their box by the database's index, then their circle and
  categories), and each gets an email task;
- **daily**: from `ALERT_DIGEST_HOUR` (in `TIME_ZONE`) on, `send_alert_digests` claims the
  day's digest of each confirmed daily alert and enqueues its email: the reports made
  since its last digest, if any. The worker runs it every few minutes and so may cron
  (`manage.py send_alert_digests`): a digest is claimed by one conditional update, so
  there are never two for one alert on one day.

Every email has the alert's one-click unsubscribe link (RFC 8058)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import emails, events
from .models import Signalement, Subscription
from .subscriptions import (
    alert_unsubscribe_url,
    alerts_around,
    area_description,
    matching_alerts,
    report_summary,
    reports_for,
)
from .tasks import enqueue_on_commit, periodic, retried_task

# A digest lists this many reports at most (and says how many more there are).
DIGEST_MAX_REPORTS = 50


@events.listen
def on_event(event: events.Event) -> None:
    """A new public report with a location: its immediate alerts, once it is saved (no
    task at all where no alert's box holds it: one indexed query, not a queued task, for
    most reports)."""
    report = event.report
    if event.kind != events.CREATED or not report.is_public or report.latitude is None:
        return
    if alerts_around(report, frequency=Subscription.Frequency.IMMEDIATE).exists():
        enqueue_on_commit(deliver_alerts, report.pk)


@retried_task(delays=emails.RETRY_DELAYS)
def deliver_alerts(report_id: int) -> str:
    """An email task for each immediate alert that this new report matches."""
    report = Signalement.objects.select_related("category", "reporter").filter(pk=report_id).first()
    if report is None:
        return "report deleted"
    alerts = matching_alerts(report, frequency=Subscription.Frequency.IMMEDIATE)
    for alert in alerts:
        send_alert_email.enqueue(alert.pk, report.pk)
    return f"{len(alerts)} alert(s)"


@retried_task(delays=emails.RETRY_DELAYS)
def send_alert_email(alert_id: int, report_id: int) -> str:
    """One new report, to an immediate alert's address."""
    alert = Subscription.objects.filter(pk=alert_id, confirmed_at__isnull=False).first()
    report = Signalement.objects.select_related("category").filter(pk=report_id).first()
    if alert is None:
        return "unsubscribed"
    if report is None or not report.is_public:
        return "report gone"
    with translation.override(alert.language):
        message = emails.compose(
            "alert",
            to=alert.email,
            subject=_("[%(reference)s] A new report in your alert's area")
            % {"reference": report.reference},
            context={"report": report_summary(report), "alert": area_description(alert)},
            unsubscribe_url=alert_unsubscribe_url(alert),
        )
    message.send()
    return "sent"


@periodic(every=timedelta(minutes=5))
def send_alert_digests(now: datetime | None = None) -> int:
    """The day's digests, from ALERT_DIGEST_HOUR on: each confirmed daily alert not
    served yet today is claimed (its `last_digest_at` moved to now, by a conditional
    update that one caller alone wins: the worker and cron may both run this) and gets
    a task sending the reports since its last digest. Never two digests for one alert on
    one day. Returns how many were claimed."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.hour < settings.ALERT_DIGEST_HOUR:
        return 0
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    due = Subscription.objects.filter(
        kind=Subscription.Kind.ALERT,
        frequency=Subscription.Frequency.DAILY,
        confirmed_at__isnull=False,
    ).filter(Q(last_digest_at__isnull=True) | Q(last_digest_at__lt=today))
    claimed = 0
    for alert in due.order_by("pk").only("pk", "last_digest_at", "confirmed_at"):
        previous = alert.last_digest_at
        same = Subscription.objects.filter(pk=alert.pk)
        same = (
            same.filter(last_digest_at__isnull=True)
            if previous is None
            else same.filter(last_digest_at=previous)
        )
        if same.update(last_digest_at=now):
            since = previous or alert.confirmed_at
            enqueue_on_commit(send_digest_email, alert.pk, since.isoformat(), now.isoformat())
            claimed += 1
    return claimed


@retried_task(delays=emails.RETRY_DELAYS)
def send_digest_email(alert_id: int, since: str, until: str) -> str:
    """A daily alert's digest: the reports created in (since, until], if any."""
    alert = Subscription.objects.filter(pk=alert_id, confirmed_at__isnull=False).first()
    if alert is None:
        return "unsubscribed"
    found = reports_for(
        alert, since=datetime.fromisoformat(since), until=datetime.fromisoformat(until)
    )
    if not found:
        return "nothing new"
    with translation.override(alert.language):
        count = len(found)
        message = emails.compose(
            "digest",
            to=alert.email,
            subject=ngettext(
                "Your daily alert: %(count)d new report",
                "Your daily alert: %(count)d new reports",
                count,
            )
            % {"count": count},
            context={
                "reports": [report_summary(report) for report in found[:DIGEST_MAX_REPORTS]],
                "more": max(0, count - DIGEST_MAX_REPORTS),
                "count": count,
                "alert": area_description(alert),
            },
            unsubscribe_url=alert_unsubscribe_url(alert),
        )
    message.send()
    return f"sent {count}"
