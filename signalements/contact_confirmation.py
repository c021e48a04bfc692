"""A report's contact address gets its status changes and updates only once its owner
confirmed it.

Anyone may type any address as a report's `contact_email`. The first email (the report
was received, `notifications.send_creation_email`) goes to it, with a link: "confirm this
address to receive updates". The later ones (status changes, the agents' updates, the
"is it fixed?" question) go only to a confirmed address; until then their tasks answer
"address not confirmed". An address is confirmed:

- by that link (signed, its own salt, valid `CONTACT_CONFIRM_DAYS`; GET says what it
  confirms, POST confirms, as a follow's link: `/api/contact/confirm/<token>/`); a report
  whose contact address is changed gets a link for the new one (`confirm_contact` email);
- or before: for an earlier report, or as a confirmed follow or alert
  (`subscriptions.py`): it is used at once, and recorded for the new report too, so that
  the erasure of the earlier one does not take it away;
- a logged-in reporter's account address needs none: it is the one written to (before
  any contact address), accounts are made by administrators who set their address (there
  is no self-registration), and the caller proved to be that account.

What is kept (`ConfirmedContact`, one per report) is a keyed hash of the normalized
address (HMAC-SHA256 with `SECRET_KEY`: no one without the key can test an address
against it), never the address; it goes with the report's contact data (`forget`, called
by the erasure at the reporter's request and by the retention's anonymization). Rotating
`SECRET_KEY` makes the addresses confirm again.
"""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from . import emails, signed_links
from .models import ConfirmedContact, Signalement, Subscription
from .signed_links import InvalidToken

__all__ = ["InvalidToken"]

CONFIRM_SALT = "signalements.contact.confirm"
DIGEST_SALT = "signalements.contact.address"


def address_digest(address: str) -> str:
    """The keyed hash of an address (64 hexadecimal digits)."""
    return salted_hmac(DIGEST_SALT, emails.mailbox(address), algorithm="sha256").hexdigest()


def writes_to_account(report: Signalement) -> bool:
    """Whether the report's emails go to its reporter's account address (confirmed)."""
    return bool(report.reporter_id and report.reporter.email)


def is_confirmed(report: Signalement) -> bool:
    """Whether the reporter's emails about this report may be sent: to their account's
    address, or to a contact address confirmed (for this report or any other, or as a
    follow or an alert)."""
    if writes_to_account(report):
        return True
    if not report.contact_email:
        return False
    digest = address_digest(report.contact_email)
    return ConfirmedContact.objects.filter(address_digest=digest).exists() or (
        Subscription.objects.alias(address=Lower("email"))
        .filter(address=report.contact_email.strip().lower(), confirmed_at__isnull=False)
        .exists()
    )


def adopt(report: Signalement) -> bool:
    """Whether the report's contact address is confirmed already (`is_confirmed`); if it
    is, recorded for this report too."""
    if writes_to_account(report):
        return True
    if not is_confirmed(report):
        return False
    _record(report.pk, address_digest(report.contact_email))
    return True


def _record(report_id: int, digest: str) -> None:
    try:
        with transaction.atomic():
            ConfirmedContact.objects.update_or_create(
                signalement_id=report_id,
                defaults={"address_digest": digest, "confirmed_at": timezone.now()},
            )
    except IntegrityError:  # confirmed at the same moment by another request
        pass


# --- The link -------------------------------------------------------------------------------


def confirm_period() -> timedelta:
    return timedelta(days=settings.CONTACT_CONFIRM_DAYS)


def confirm_token(report: Signalement) -> str:
    """A link's token: the report and its current address's hash (a link sent to an
    earlier address does not confirm the next one)."""
    digest = address_digest(report.contact_email)
    return signing.dumps({"r": report.pk, "a": digest}, salt=CONFIRM_SALT)


def confirm_url(report: Signalement) -> str:
    return emails.public_url(reverse("contact-confirm", args=[confirm_token(report)]))


def pending(token: str) -> tuple[Signalement, bool]:
    """The report a link names, and whether its address is confirmed already;
    InvalidToken when the link is not ours, too old, or its address is no longer the
    report's (changed, erased) or the report is gone."""
    payload = signed_links.load(token, salt=CONFIRM_SALT, max_age=confirm_period())
    report_id, digest = payload.get("r"), payload.get("a")
    if not isinstance(report_id, int) or not isinstance(digest, str):
        raise InvalidToken()
    report = Signalement.objects.select_related("reporter").filter(pk=report_id).first()
    if report is None or not report.contact_email:
        raise InvalidToken()
    if address_digest(report.contact_email) != digest:
        raise InvalidToken()
    confirmed = ConfirmedContact.objects.filter(
        signalement_id=report.pk, address_digest=digest
    ).exists()
    return report, confirmed


def confirm(token: str) -> Signalement:
    """Confirm the address of this link for its report (again: nothing more)."""
    report, confirmed = pending(token)
    if not confirmed:
        _record(report.pk, address_digest(report.contact_email))
    return report


# --- Erasure ------------------------------------------------------------------------------


def forget(report_ids) -> int:
    """The confirmations of these reports' contact addresses go (with their contact
    data); how many there were."""
    deleted = ConfirmedContact.objects.filter(signalement_id__in=list(report_ids)).delete()
    return deleted[1].get(ConfirmedContact._meta.label, 0)
