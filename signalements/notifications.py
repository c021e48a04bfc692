"""Emails to reporters. Sent after the change has committed; a mail failure is logged
and never fails or undoes the change that caused it. Written in the report's language
(that of the request that created it: French unless the reporter's app asked for
English)."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from .languages import language_for
from .models import Signalement, Status

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


def status_changed(signalement: Signalement, *, from_status: str, note: str = "") -> bool:
    """Tell the reporter that their report changed status. Returns whether a mail left."""
    recipient = recipient_of(signalement)
    if not recipient:
        return False
    with translation.override(language_for(signalement.language)):
        subject, body = status_email(signalement, note=note)
    try:
        send_mail(
            subject=subject,
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[recipient],
        )
    except Exception:  # a mail server problem must never break the workflow
        logger.exception("Could not send the status email for %s", signalement.reference)
        return False
    return True


def status_email(signalement: Signalement, *, note: str = "") -> tuple[str, str]:
    """The subject and body of a status change's email, in the active language."""
    values = {
        "reference": signalement.reference,
        "status": STATUS_IN_A_SENTENCE[signalement.status],
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
