"""Emails to reporters. Sent after the change has committed; a mail failure is logged
and never fails or undoes the change that caused it."""

import logging

from django.conf import settings
from django.core.mail import send_mail

from .models import Signalement, Status

logger = logging.getLogger(__name__)

# The emails are in French, the language of the reporters this product serves first.
STATUS_LABELS_FR = {
    Status.NEW: "nouveau",
    Status.ACKNOWLEDGED: "pris en compte",
    Status.IN_PROGRESS: "en cours de traitement",
    Status.RESOLVED: "résolu",
    Status.REJECTED: "rejeté",
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
    label = STATUS_LABELS_FR[signalement.status]
    lines = [
        "Bonjour,",
        "",
        f"Votre signalement {signalement.reference} est désormais « {label} ».",
    ]
    if signalement.title:
        lines.append(f"Objet : {signalement.title}")
    if note:
        lines += ["", "Message de l'équipe :", note]
    lines += ["", "Merci de votre contribution.", "", "— Signalements"]
    try:
        send_mail(
            subject=f"[{signalement.reference}] Votre signalement est {label}",
            message="\n".join(lines),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[recipient],
        )
    except Exception:  # a mail server problem must never break the workflow
        logger.exception("Could not send the status email for %s", signalement.reference)
        return False
    return True
