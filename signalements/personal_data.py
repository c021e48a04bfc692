"""A person's data, for their access request (GDPR art. 15): `manage.py
export_personal_data --email X`.

The person is an email address. Their data are:

- the **reports** whose contact email is that address (compared as the app stores it:
  trimmed, case ignored), now or in the report's history, or filed by an account with
  that address; each with its photos (the files' names and details, not their bytes),
  its comments, its history (every change, who made it said as "you", "staff" or
  nobody: the staff's names are theirs, not the person's), the reporter's verdicts on
  its resolutions, their opt-out from its emails, and whether they confirmed its contact
  address;
- their **follows and alerts** (`Subscription`), at that address or made while logged
  in to such an account;
- the **account(s)** with that address: username, names, dates, role (never the
  password's hash), and the comments they wrote on other reports (an agent's).

Internal notes (comments only agents read) are the staff's working notes about a
report. They are personal data of the reporter when they are about them, but may hold
the staff's own opinions and third parties' data: they are left out by default and
counted (`internal_notes_withheld`), so that whoever answers the request knows they
exist, reads them, and adds those to disclose with `include_internal_notes`. GDPR art.
15(4) lets a controller withhold what would harm others' rights; it does not let them
pretend the notes do not exist.
"""

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from . import history
from .models import (
    Comment,
    ConfirmedContact,
    Feedback,
    ReporterOptOut,
    Signalement,
    Subscription,
)
from .subscriptions import normalize

HistoricalSignalement = Signalement.history.model

REPORT_FIELDS = (
    "id",
    "uuid",
    "title",
    "description",
    "date",
    "status",
    "priority",
    "latitude",
    "longitude",
    "address",
    "media_url",
    "extra",
    "contact_name",
    "contact_email",
    "contact_phone",
    "is_public",
    "language",
    "created_at",
    "updated_at",
    "resolved_at",
)
ACCOUNT_FIELDS = (
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "is_staff",
    "is_superuser",
    "date_joined",
    "last_login",
)
SUBSCRIPTION_FIELDS = (
    "id",
    "kind",
    "email",
    "language",
    "created_at",
    "confirmed_at",
    "area",
    "latitude",
    "longitude",
    "radius_m",
    "min_latitude",
    "min_longitude",
    "max_latitude",
    "max_longitude",
    "categories",
    "frequency",
    "last_digest_at",
)


def _fields(instance, names) -> dict:
    return {name: getattr(instance, name) for name in names}


def reports_of(address: str, accounts: list) -> list[Signalement]:
    """The reports tied to `address` (an address as stored) or to one of `accounts`,
    by id."""
    in_history = HistoricalSignalement.objects.filter(
        Q(contact_email__iexact=address) | Q(reporter__in=accounts)
    ).values("id")
    return list(
        Signalement.objects.filter(
            Q(contact_email__iexact=address) | Q(reporter__in=accounts) | Q(pk__in=in_history)
        )
        .select_related("category")
        .order_by("pk")
    )


def export(email: str, *, include_internal_notes: bool = False) -> dict:
    """Everything this application holds about the person at `email`, as plain data
    (dates, decimals and UUIDs as Python objects: `DjangoJSONEncoder` writes them)."""
    address = normalize(email)
    accounts = list(get_user_model().objects.filter(email__iexact=address).order_by("pk"))
    account_ids = {account.pk for account in accounts}
    usernames = {account.get_username() for account in accounts}
    reports = reports_of(address, accounts)
    report_ids = [report.pk for report in reports]
    return {
        "email": address,
        "generated_at": timezone.now(),
        "internal_notes_included": include_internal_notes,
        "accounts": [_account(account) for account in accounts],
        "reports": [
            _report(
                report,
                address=address,
                account_ids=account_ids,
                usernames=usernames,
                include_internal_notes=include_internal_notes,
            )
            for report in reports
        ],
        "subscriptions": [
            {
                **_fields(subscription, SUBSCRIPTION_FIELDS),
                "report": subscription.signalement.reference if subscription.signalement else None,
            }
            for subscription in Subscription.objects.filter(
                Q(email__iexact=address) | Q(user__in=accounts)
            )
            .select_related("signalement")
            .order_by("pk")
        ],
        "comments_on_other_reports": [
            {**_comment(comment, account_ids), "report": comment.signalement.reference}
            for comment in Comment.objects.filter(author__in=accounts)
            .exclude(signalement_id__in=report_ids)
            .select_related("signalement")
            .order_by("pk")
        ],
    }


def _account(account) -> dict:
    return {
        **_fields(account, ACCOUNT_FIELDS),
        "groups": sorted(account.groups.values_list("name", flat=True)),
    }


def _why(report: Signalement, address: str, account_ids: set[int]) -> list[str]:
    reasons = []
    if report.contact_email.lower() == address.lower():
        reasons.append("contact_email")
    if report.reporter_id in account_ids:
        reasons.append("reporter_account")
    return reasons or ["history"]


def _comment(comment: Comment, account_ids: set[int]) -> dict:
    return {
        "id": comment.pk,
        "created_at": comment.created_at,
        "written_as": comment.author_role,
        "written_by_you": comment.author_id in account_ids,
        "internal": comment.is_internal,
        "status": comment.status,
        "body": comment.body,
    }


def _report(
    report: Signalement,
    *,
    address: str,
    account_ids: set[int],
    usernames: set[str],
    include_internal_notes: bool,
) -> dict:
    comments = list(report.comments.order_by("created_at", "pk"))
    shown = [c for c in comments if include_internal_notes or not c.is_internal]
    opt_out = ReporterOptOut.objects.filter(signalement=report).first()
    confirmed = ConfirmedContact.objects.filter(signalement=report).first()
    return {
        **_fields(report, REPORT_FIELDS),
        "reference": report.reference,
        "category": report.category.code if report.category else None,
        "linked_by": _why(report, address, account_ids),
        "filed_by_your_account": report.reporter_id in account_ids,
        "contact_address_confirmed_at": confirmed.confirmed_at if confirmed else None,
        "emails_refused_at": opt_out.created_at if opt_out else None,
        "photos": [
            {
                "id": photo.pk,
                "file": photo.file.name,
                "thumbnail": photo.thumbnail.name,
                "content_type": photo.content_type,
                "size": photo.size,
                "width": photo.width,
                "height": photo.height,
                "created_at": photo.created_at,
                "uploaded_by_you": photo.uploaded_by_id in account_ids,
            }
            for photo in report.attachments.order_by("created_at", "pk")
        ],
        "comments": [_comment(comment, account_ids) for comment in shown],
        "internal_notes_withheld": len(comments) - len(shown),
        "history": [
            {
                "at": entry.at,
                "kind": entry.kind,
                "by": _who(entry.by, usernames),
                "note": entry.note,
                "changes": [
                    {"field": change.field, "old": change.old, "new": change.new}
                    for change in entry.changes
                ],
            }
            for entry in history.entries_for(report, full=True)
        ],
        "verdicts": [
            {
                "resolution": verdict.resolved_at,
                "fixed": verdict.is_fixed,
                "comment": verdict.comment,
                "reopening": verdict.reopen,
                "decided_at": verdict.decided_at,
                "decision_note": verdict.decision_note,
                "created_at": verdict.created_at,
            }
            for verdict in Feedback.objects.filter(signalement=report).order_by("created_at", "pk")
        ],
    }


def _who(username: str | None, usernames: set[str]) -> str | None:
    """Who made a change, as the person may be told: themselves, the staff, or nobody
    (the system, an anonymous reporter)."""
    if username is None:
        return None
    return "you" if username in usernames else "staff"
