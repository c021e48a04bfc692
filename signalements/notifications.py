"""The emails about a report, sent by background tasks (`signalements/tasks.py`) once the
change that caused them has committed: a mail server that hangs or fails never slows or
undoes the change, and a failed send is tried again after each of `EMAIL_RETRY_DELAYS`
(1 min, 5 min, 30 min, 2 h), then given up (visible in the admin's task results). One
task per recipient: a retry sends to that one again, not to everyone.

- To the **reporter** (their account's email, else the contact email given with the
  report), in the report's language (that of the request that created it): a
  confirmation of the new report with its reference and link; each status change;
  each public update that an agent writes. Unless they unsubscribed from the report.
  The "resolved" email asks them whether the problem is fixed: two signed links
  ("fixed", "not fixed") to the page of their verdict (`feedback.py`). A contact
  email gets all but the first only once its owner confirmed it: the first carries the
  link that confirms it (`contact_confirmation.py`), as does the email sent to a
  contact address changed later.
- To the report's **followers** (`subscriptions.py`), in each one's language: its status
  changes and public updates, with nothing of the reporter's contact data.

The emails (`emails.py`) have a text and an HTML part; the notifications carry a one-click
unsubscribe link (RFC 8058)."""

import logging

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from . import contact_confirmation, emails, events, feedback
from .languages import language_for
from .models import Comment, ReporterOptOut, Signalement, Status, Subscription
from .subscriptions import report_summary, report_unsubscribe_url, reporter_address
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

# Kept for callers of the first version: the retry delays are the emails'.
EMAIL_RETRY_DELAYS = emails.RETRY_DELAYS


def recipient_of(signalement: Signalement) -> str:
    """The reporter's account email, or else the contact email given with the report."""
    return reporter_address(signalement)


@events.listen
def on_event(event: events.Event) -> None:
    """The emails that an event calls for, as tasks enqueued on commit."""
    report = event.report
    if event.kind == events.CREATED:
        enqueue_on_commit(send_creation_email, report.pk)
    elif event.kind == events.UPDATED and "contact_email" in event.data.get("fields", ()):
        enqueue_on_commit(send_contact_confirmation_email, report.pk)
    elif event.kind == events.STATUS_CHANGED and event.data["notify"]:
        change = (event.data["from"], event.data["to"], event.data["note"])
        enqueue_on_commit(send_status_email, report.pk, *change)
        if has_followers(report):
            enqueue_on_commit(notify_followers, report.pk, status=event.data["to"], note=change[2])
    elif event.kind == events.COMMENTED and not event.data["is_internal"]:
        comment_id = event.data["comment_id"]
        if event.data["author_role"] == "agent":
            enqueue_on_commit(send_comment_email, report.pk, comment_id)
        if has_followers(report):
            enqueue_on_commit(notify_followers, report.pk, comment_id=comment_id)


def has_followers(report: Signalement) -> bool:
    """Whether anyone confirmed following the report (most reports: no one, and no task
    is queued for them)."""
    return Subscription.objects.filter(
        kind=Subscription.Kind.FOLLOW, signalement=report, confirmed_at__isnull=False
    ).exists()


def _reporter_report(report_id: int, *, confirmed: bool = True) -> tuple[Signalement | None, str]:
    """The report whose reporter is written to, or why they are not: with `confirmed`,
    only at a confirmed address (`contact_confirmation.py`)."""
    report = Signalement.objects.select_related("reporter").filter(pk=report_id).first()
    if report is None:
        return None, "report deleted"
    if not recipient_of(report):
        return None, "no address"
    if ReporterOptOut.objects.filter(signalement=report).exists():
        return None, "unsubscribed"
    if confirmed and not contact_confirmation.is_confirmed(report):
        return None, "address not confirmed"
    return report, ""


def _send_to_reporter(
    report: Signalement, template: str, *, what: str, subject: str, context: dict
) -> None:
    recipient = recipient_of(report)
    message = emails.compose(
        template,
        to=recipient,
        subject=subject,
        context={
            "as_reporter": True,
            "reference": report.reference,
            "title": report.title,
            "url": emails.report_url(report.pk),
            **context,
        },
        unsubscribe_url=report_unsubscribe_url(report.pk, recipient),
    )
    try:
        message.send()
    except Exception:
        logger.warning("Could not send the %s email for %s", what, report.reference)
        raise


@retried_task(delays=EMAIL_RETRY_DELAYS)
def send_creation_email(report_id: int) -> str:
    """Tell the reporter that their report was received: its reference and its link,
    and, to a contact address not confirmed yet, the link that confirms it."""
    report, why_not = _reporter_report(report_id, confirmed=False)
    if report is None:
        return why_not
    confirmed = contact_confirmation.adopt(report)
    with translation.override(language_for(report.language)):
        recipient = recipient_of(report)
        message = emails.compose(
            "report_created",
            to=recipient,
            subject=_("[%(reference)s] Your report was received") % {"reference": report.reference},
            context={
                "reference": report.reference,
                "title": report.title,
                "url": emails.report_url(report.pk),
                "stop_url": report_unsubscribe_url(report.pk, recipient),
                "confirm_url": "" if confirmed else contact_confirmation.confirm_url(report),
                "confirm_days": settings.CONTACT_CONFIRM_DAYS,
            },
        )
    message.send()
    return "sent" if confirmed else "sent, with the link to confirm the address"


@retried_task(delays=EMAIL_RETRY_DELAYS)
def send_contact_confirmation_email(report_id: int) -> str:
    """The link that confirms a report's contact address, once it was changed (the
    creation email carried the first address's)."""
    report, why_not = _reporter_report(report_id, confirmed=False)
    if report is None:
        return why_not
    if contact_confirmation.adopt(report):
        return "confirmed already"
    with translation.override(language_for(report.language)):
        message = emails.compose(
            "confirm_contact",
            to=report.contact_email,
            subject=_("[%(reference)s] Confirm your address") % {"reference": report.reference},
            context={
                "reference": report.reference,
                "url": emails.report_url(report.pk),
                "confirm_url": contact_confirmation.confirm_url(report),
                "confirm_days": settings.CONTACT_CONFIRM_DAYS,
            },
        )
    message.send()
    return "sent"


@retried_task(delays=EMAIL_RETRY_DELAYS)
def send_status_email(report_id: int, from_status: str, to_status: str, note: str = "") -> str:
    """Tell the reporter that their report moved from `from_status` to `to_status`.
    Returns what happened ("sent", or why nothing was)."""
    report, why_not = _reporter_report(report_id)
    if report is None:
        return why_not
    with translation.override(language_for(report.language)):
        subject, context = status_email(report, status=to_status, note=note)
        if to_status == Status.RESOLVED:
            context.update(verdict_links(report))
        _send_to_reporter(report, "status_changed", what="status", subject=subject, context=context)
    return "sent"


def verdict_links(report: Signalement) -> dict:
    """The "fixed" / "not fixed" links of a "resolved" email (`feedback.py`), while the
    report's resolution may be answered (an email sent late, after the report was
    reopened or answered, asks nothing)."""
    if not feedback.is_open(report):
        return {}
    urls = feedback.feedback_urls(report)
    return {
        "fixed_url": urls["fixed"],
        "not_fixed_url": urls["not_fixed"],
        "feedback_days": settings.SIGNALEMENT_FEEDBACK_DAYS,
    }


def status_email(signalement: Signalement, *, status: str, note: str = "") -> tuple[str, dict]:
    """The subject and the templates' context of the email telling that the report is
    now `status`, in the active language."""
    status_words = str(STATUS_IN_A_SENTENCE[status])
    subject = _("[%(reference)s] Your report is %(status)s") % {
        "reference": signalement.reference,
        "status": status_words,
    }
    return subject, {"status": status_words, "note": note}


@retried_task(delays=EMAIL_RETRY_DELAYS)
def send_comment_email(report_id: int, comment_id: int) -> str:
    """Tell the reporter of an agent's public update on their report."""
    report, why_not = _reporter_report(report_id)
    if report is None:
        return why_not
    comment = Comment.objects.filter(pk=comment_id, is_internal=False).first()
    if comment is None:
        return "comment deleted"
    with translation.override(language_for(report.language)):
        subject = _("[%(reference)s] A new update on your report") % {"reference": report.reference}
        _send_to_reporter(
            report, "comment_added", what="comment", subject=subject, context={"body": comment.body}
        )
    return "sent"


@retried_task(delays=EMAIL_RETRY_DELAYS)
def notify_followers(report_id: int, *, status: str = "", note: str = "", comment_id=None) -> str:
    """An email task for each confirmed follower of the report, about a status change
    or a public comment. Not to the reporter's address (the reporter's own emails say
    it, or they wrote the comment); not to others when the report is no longer public."""
    report = Signalement.objects.select_related("reporter").filter(pk=report_id).first()
    if report is None:
        return "report deleted"
    reporter = recipient_of(report)
    follows = Subscription.objects.filter(
        kind=Subscription.Kind.FOLLOW, signalement=report, confirmed_at__isnull=False
    ).order_by("pk")
    sent = 0
    for follow in follows:
        if emails.same_address(follow.email, reporter):
            continue
        if not report.is_public and not (
            report.reporter_id and follow.user_id == report.reporter_id
        ):
            continue
        send_update_email.enqueue(follow.pk, status=status, note=note, comment_id=comment_id)
        sent += 1
    return f"{sent} follower(s)"


@retried_task(delays=EMAIL_RETRY_DELAYS)
def send_update_email(follow_id: int, *, status: str = "", note: str = "", comment_id=None) -> str:
    """A status change or a public comment, to one follower of the report."""
    follow = (
        Subscription.objects.select_related("signalement__category")
        .filter(pk=follow_id, confirmed_at__isnull=False)
        .first()
    )
    if follow is None:
        return "unsubscribed"
    report = follow.signalement
    body = ""
    if comment_id is not None:
        comment = Comment.objects.filter(pk=comment_id, is_internal=False).first()
        if comment is None:
            return "comment deleted"
        body = comment.body
    with translation.override(language_for(follow.language)):
        context = {"as_reporter": False, **report_summary(report), "body": body, "note": note}
        if status:
            context["status"] = str(STATUS_IN_A_SENTENCE[status])
            template = "status_changed"
            subject = _("[%(reference)s] The report you follow is %(status)s") % {
                "reference": report.reference,
                "status": context["status"],
            }
        else:
            template = "comment_added"
            subject = _("[%(reference)s] A new update on the report you follow") % {
                "reference": report.reference
            }
        message = emails.compose(
            template,
            to=follow.email,
            subject=subject,
            context=context,
            unsubscribe_url=report_unsubscribe_url(report.pk, follow.email),
        )
    message.send()
    return "sent"
