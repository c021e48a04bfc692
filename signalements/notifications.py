"""Emails to reporters, sent by background tasks (`signalements/tasks.py`) once the change
that caused them has committed: a mail server that hangs or fails never slows or undoes
the change, and a failed send is tried again (after 1 min, 5 min, 30 min and 2 h), then
given up (visible in the admin's task results). Written in the report's language (that
of the request that created it: French unless the reporter's app asked for English)."""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from . import events
from .languages import language_for
from .models import Signalement, Status
from .tasks import enqueue_on_commit, retried_task

logger = logging.getLogger(__name__)

# A status as it reads in "Your report is …" (French agrees it with "signalement").
STATUS_IN_A_SENTENCE = {
    Status.NEW: pgettext_lazy("your report is …", "new"),
    Status.ACKNOWLEDGED: pgettext_lazy("your report is …", "acknowledged"),
    Status.IN_PROGRESS: pgettext_lazy("your report is …", "in progress"),
    Status.RESOLVED: pgettext_lazy("your report is …", "resolved"),
    Status.REJECTED: pgettext_lazy("your report is …", "rejected"),
}


def recipient_of(signalement: Signalement) -> str:
    """The reporter's account email, or else the contact email given with the report."""
    if signalement.reporter_id and signalement.reporter.email:
        return signalement.reporter.email
    return signalement.contact_email


EMAIL_RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)


@events.listen
def on_event(event: events.Event) -> None:
    """The emails that an event calls for, as tasks enqueued on commit."""
    if event.kind == events.STATUS_CHANGED and event.data["notify"]:
        enqueue_on_commit(
            send_status_email,
            event.report.pk,
            event.data["from"],
            event.data["to"],
            event.data["note"],
        )


@retried_task(delays=EMAIL_RETRY_DELAYS, queue_name="default")
def send_status_email(report_id: int, from_status: str, to_status: str, note: str = "") -> str:
    """Tell the reporter that their report moved from `from_status` to `to_status`.
    Returns what happened ("sent", or why nothing was)."""
    signalement = Signalement.objects.select_related("reporter").filter(pk=report_id).first()
    if signalement is None:
        return "report deleted"
    recipient = recipient_of(signalement)
    if not recipient:
        return "no address"
    with translation.override(language_for(signalement.language)):
        subject, body = status_email(signalement, status=to_status, note=note)
    try:
        send_mail(
            subject=subject,
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[recipient],
        )
    except Exception:
        logger.warning("Could not send the status email for %s", signalement.reference)
        raise
    return "sent"


def status_email(signalement: Signalement, *, status: str, note: str = "") -> tuple[str, str]:
    """The subject and body of the email telling that the report is now `status`, in
    the active language."""
    values = {
        "reference": signalement.reference,
        "status": STATUS_IN_A_SENTENCE[status],
    }
    lines = [
        _("Hello,"),
        "",
        _("Your report %(reference)s is now “%(status)s”.") % values,
    ]
    if signalement.title:
        lines.append(_("Subject: %(title)s") % {"title": signalement.title})
    if note:
        lines += ["", _("Message from the team:"), note]
    lines += ["", _("Thank you for your contribution."), "", "— Signalements"]
    return _("[%(reference)s] Your report is %(status)s") % values, "\n".join(lines)
