"""Reporters' personal data over time: retention for closed reports, erasure on request.

The personal data on a report are its contact fields (`contact_name`, `contact_email`,
`contact_phone`) and its reporter (the account that filed it). The API shows them only to
that reporter and to agents (the API's `PublicSignalementSerializer`, `history.py`);
this module makes sure they are not kept longer than needed:

- `anonymize()` (the `anonymize_reports` command, run daily from cron) blanks the contact
  fields and detaches the reporter of closed reports past the retention period
  (`RETENTION_DAYS`, statuses `RETENTION_STATUSES`), and deletes their follows; it also
  deletes the follows and alerts whose address was never confirmed
  (`SUBSCRIPTION_CONFIRM_DAYS`, `subscriptions.py`).
- `erase_contact_data()` (`POST /api/me/erase-contact-data/`) blanks the contact fields
  of a reporter's own reports at their request; they stay linked to their reports.

Both also blank the reporter's own words in their verdicts on these reports (`Feedback.
comment`, `feedback.py`: a private answer to the agents, which may hold a phone number as
well as any contact field), in the verdicts' history too; anonymization also detaches the
reporter as the verdicts' author. The quotation of such words in a reopened report's note
is a comment body, and stays (see below).

Both are recorded in the report's history as a change with a reason, and both also blank
the same data in the report's earlier historical records: otherwise the history (read by
agents, the admin's "History" page) would keep it forever. Anonymization goes further and
removes every trace of the reporter's identity on the report: the reporter in the
historical records, the reporter as the author (`history_user`) of historical records,
and as the author of the comments they wrote (which stay, "written as reporter"). Free
text (description, comment bodies) is not rewritten: a name typed there stays.

When a report was closed: `resolved_at` for a resolved report (set by the workflow). A
rejected report has no closing date of its own, so its last change (`updated_at`) is
used: it is at or after the rejection, so the retention period never starts early; any
later change to the report restarts it.

Both operations select only reports that still hold something to blank (on the report or
in its history), so they are idempotent: a second run finds nothing and records nothing.
The rows are locked and checked again before they are changed, so a report reopened or
edited meanwhile is left alone.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext
from simple_history.utils import bulk_update_with_history

from . import contact_confirmation
from .languages import default_language
from .models import CLOSED_STATUSES, Comment, Feedback, Signalement, Status, Subscription
from .subscriptions import prune_unconfirmed

logger = logging.getLogger(__name__)

CONTACT_FIELDS = ("contact_name", "contact_email", "contact_phone")
BLANK_CONTACT = dict.fromkeys(CONTACT_FIELDS, "")
# Used when the settings (RETENTION_DAYS, RETENTION_STATUSES) do not say otherwise.
DEFAULT_RETENTION_DAYS = 365
DEFAULT_RETENTION_STATUSES = (Status.RESOLVED.value, Status.REJECTED.value)
# Reports changed per transaction: short locks, and a failure loses one batch at most.
BATCH_SIZE = 200


def retention_reason(days: int) -> str:
    """The history's note of an anonymization, in the site's language (`LANGUAGE_CODE`:
    the agents who read the history), whoever runs it."""
    with translation.override(default_language()):
        return ngettext(
            "Anonymized after %(days)d day (retention)",
            "Anonymized after %(days)d days (retention)",
            days,
        ) % {"days": days}


def erasure_reason() -> str:
    """The history's note of an erasure, in the site's language, whatever the language of
    the reporter's request."""
    with translation.override(default_language()):
        return gettext("Contact data erased at the reporter's request")


HistoricalSignalement = Signalement.history.model
HistoricalFeedback = Feedback.history.model


def retention_period() -> timedelta:
    """How long closed reports keep their personal data (`RETENTION_DAYS`)."""
    days = getattr(settings, "SIGNALEMENT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)
    return timedelta(days=days)


def retention_statuses() -> tuple[str, ...]:
    """The closed statuses whose reports are anonymized (`RETENTION_STATUSES`)."""
    return tuple(getattr(settings, "SIGNALEMENT_RETENTION_STATUSES", DEFAULT_RETENTION_STATUSES))


def check_statuses(statuses: Iterable[str]) -> tuple[str, ...]:
    """The statuses, if they are all closed ones; a ValueError naming the first bad one
    otherwise (an open report is still being handled: its contact data is needed)."""
    closed = ", ".join(sorted(CLOSED_STATUSES))
    checked = []
    for status in statuses:
        if status not in Status.values:
            raise ValueError(f"Unknown status {status!r}: choose among {closed}.")
        if status not in CLOSED_STATUSES:
            raise ValueError(
                f"Status {status!r} is not a closed status: only closed reports "
                f"({closed}) are anonymized."
            )
        if status not in checked:
            checked.append(status)
    if not checked:
        raise ValueError(f"No status given: choose among {closed}.")
    return tuple(checked)


def _contact_filled() -> Q:
    return Q(*(~Q(**{name: ""}) for name in CONTACT_FIELDS), _connector=Q.OR)


def holds_personal_data() -> Q:
    """Reports with something left to anonymize: contact data or a reporter, on the
    report or in its history, or a verdict that holds the reporter's words or account."""
    in_history = HistoricalSignalement.objects.filter(id=OuterRef("pk")).filter(
        _contact_filled() | Q(reporter__isnull=False)
    )
    in_verdicts = Feedback.objects.filter(signalement=OuterRef("pk")).filter(
        ~Q(comment="") | Q(author__isnull=False)
    )
    return _contact_filled() | Q(reporter__isnull=False) | Exists(in_history) | Exists(in_verdicts)


def holds_contact_data() -> Q:
    """Reports with contact data left, on the report or in its history."""
    in_history = HistoricalSignalement.objects.filter(id=OuterRef("pk")).filter(_contact_filled())
    return _contact_filled() | Exists(in_history)


def due_for_anonymization(*, cutoff: datetime, statuses: Iterable[str]) -> QuerySet:
    """Reports in `statuses` closed before `cutoff` that still hold personal data, with
    their closing date as `closed_at`, oldest id first."""
    return (
        Signalement.objects.annotate(closed_at=Coalesce("resolved_at", "updated_at"))
        .filter(status__in=list(statuses), closed_at__lt=cutoff)
        .filter(holds_personal_data())
        .order_by("pk")
    )


@dataclass(frozen=True)
class AnonymizedReport:
    pk: int
    reference: str
    status: str
    closed_at: datetime


@dataclass
class AnonymizationResult:
    """What `anonymize()` did, or in a dry run would do."""

    dry_run: bool
    cutoff: datetime
    older_than: timedelta
    statuses: tuple[str, ...]
    reports: list[AnonymizedReport] = field(default_factory=list)
    # The follows of these reports, deleted with them; the follows and alerts whose
    # address was not confirmed in time (SUBSCRIPTION_CONFIRM_DAYS), deleted too.
    follows: int = 0
    unconfirmed: int = 0

    @property
    def count(self) -> int:
        return len(self.reports)


def anonymize(
    *,
    older_than: timedelta | None = None,
    statuses: Iterable[str] | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> AnonymizationResult:
    """Blank the contact fields and detach the reporter of the reports in `statuses`
    (closed ones; default `RETENTION_STATUSES`) closed more than `older_than` ago
    (default `RETENTION_DAYS`) before `now`, in their history too, and record it in
    their history. With `dry_run`, only say which reports that would be."""
    older_than = retention_period() if older_than is None else older_than
    if older_than <= timedelta(0):
        raise ValueError("The retention period must be positive.")
    statuses = check_statuses(retention_statuses() if statuses is None else statuses)
    cutoff = (now or timezone.now()) - older_than
    result = AnonymizationResult(
        dry_run=dry_run, cutoff=cutoff, older_than=older_than, statuses=statuses
    )
    due = due_for_anonymization(cutoff=cutoff, statuses=statuses)
    if dry_run:
        result.reports = [_summary(report) for report in due.iterator()]
        result.follows = Subscription.objects.filter(
            signalement_id__in=[report.pk for report in result.reports]
        ).count()
        result.unconfirmed = prune_unconfirmed(now=now, dry_run=True)
        return result

    reason = retention_reason(older_than.days)
    ids = list(due.values_list("pk", flat=True))
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        with transaction.atomic():
            # Lock the rows, then look again: a report reopened or already anonymized
            # (a concurrent run) since the selection is left alone.
            list(
                Signalement.objects.select_for_update()
                .filter(pk__in=batch)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            reports = list(due.filter(pk__in=batch))
            if reports:
                _anonymize_batch(reports, reason=reason)
                result.follows += _delete_follows(reports)
        result.reports += [_summary(report) for report in reports]
    result.unconfirmed = prune_unconfirmed(now=now)
    return result


def _summary(report: Signalement) -> AnonymizedReport:
    return AnonymizedReport(report.pk, report.reference, report.status, report.closed_at)


def _anonymize_batch(reports: list[Signalement], *, reason: str) -> None:
    ids = [report.pk for report in reports]
    # Who filed each report, as the report and its history know it: their name must
    # not stay as the author of the historical records (e.g. the creation).
    filed_by = defaultdict(set)
    for pk, reporter_id in (
        HistoricalSignalement.objects.filter(id__in=ids, reporter__isnull=False)
        .order_by()
        .values_list("id", "reporter_id")
        .distinct()
    ):
        filed_by[reporter_id].add(pk)
    for report in reports:
        if report.reporter_id is not None:
            filed_by[report.reporter_id].add(report.pk)
    for reporter_id, report_ids in filed_by.items():
        HistoricalSignalement.objects.filter(id__in=report_ids, history_user_id=reporter_id).update(
            history_user=None
        )
    HistoricalSignalement.objects.filter(id__in=ids).update(reporter=None, **BLANK_CONTACT)
    Comment.objects.filter(
        signalement_id__in=ids, author_role="reporter", author__isnull=False
    ).update(author=None)
    erase_verdict_comments(ids, detach_author=True)
    _blank_and_record(reports, detach_reporter=True, reason=reason, by=None)
    # The confirmation of their contact addresses goes with the addresses.
    contact_confirmation.forget(ids)


def erase_verdict_comments(report_ids: list[int], *, detach_author: bool) -> int:
    """Blank the reporter's words in their verdicts on these reports, in the verdicts'
    history too; with `detach_author`, the verdicts and their history no longer name the
    reporter's account (as author, or as who recorded them). The agents' decisions stay.
    Returns how many verdicts changed."""
    verdicts = Feedback.objects.filter(signalement_id__in=report_ids)
    history = HistoricalFeedback.objects.filter(signalement_id__in=report_ids)
    if not detach_author:
        history.exclude(comment="").update(comment="")
        return verdicts.exclude(comment="").update(comment="")
    history.filter(history_user_id=F("author_id")).update(history_user=None)
    history.filter(~Q(comment="") | Q(author__isnull=False)).update(comment="", author=None)
    return verdicts.filter(~Q(comment="") | Q(author__isnull=False)).update(comment="", author=None)


def _delete_follows(reports: list[Signalement]) -> int:
    """Anonymized reports' followers hear no more of them (their addresses are personal
    data too): how many follows go."""
    follows = Subscription.objects.filter(signalement_id__in=[report.pk for report in reports])
    return follows.delete()[1].get(Subscription._meta.label, 0)


def _blank_and_record(reports: list[Signalement], *, detach_reporter: bool, reason: str, by):
    """Blank the reports' contact fields (and reporter) and record each change in its
    history, with `reason`, made by `by` (None: the system)."""
    now = timezone.now()
    fields = [*CONTACT_FIELDS, "updated_at"]
    if detach_reporter:
        fields.append("reporter")
    for report in reports:
        for name, value in BLANK_CONTACT.items():
            setattr(report, name, value)
        if detach_reporter:
            report.reporter = None
        report.updated_at = now
    bulk_update_with_history(
        reports,
        Signalement,
        fields,
        default_user=by,
        default_change_reason=reason,
        default_date=now,
    )


def erase_contact_data(*, user) -> int:
    """Blank the contact fields of `user`'s own reports (in their history too) and record
    it in their history; they stay the reporter. Their words in their verdicts on these
    reports are blanked too. Returns how many reports had contact data left (0 on a
    second call)."""
    with transaction.atomic():
        own = Signalement.objects.filter(reporter=user).order_by("pk")
        erase_verdict_comments(
            list(own.select_for_update().values_list("pk", flat=True)), detach_author=False
        )
        reports = list(own.filter(holds_contact_data()))
        if not reports:
            return 0
        HistoricalSignalement.objects.filter(id__in=[report.pk for report in reports]).update(
            **BLANK_CONTACT
        )
        _blank_and_record(reports, detach_reporter=False, reason=erasure_reason(), by=user)
        # The confirmation of their contact addresses goes with the addresses.
        contact_confirmation.forget(report.pk for report in reports)
    logger.info("Erased the contact data of %d reports at their reporter's request.", len(reports))
    return len(reports)


@dataclass
class AddressErasure:
    """What `erase_address()` did: the reports whose contact data went, the reports whose
    history only held the address, the follows and alerts deleted."""

    reports: int = 0
    history_only: int = 0
    subscriptions: int = 0


def erase_address(*, email: str) -> AddressErasure:
    """The erasure for a person known by their address only (an anonymous reporter's
    request, carried out by an operator: `manage.py erase_contact_data --email`): blank
    the contact fields of the reports given with `email` (case ignored), in their history
    too, and their words in their verdicts, recorded in the reports' history; blank the
    contact fields of the historical records that hold the address on reports that now
    have another one; delete the follows and alerts at the address."""
    result = AddressErasure()
    with transaction.atomic():
        given = Signalement.objects.filter(contact_email__iexact=email).order_by("pk")
        ids = list(given.select_for_update().values_list("pk", flat=True))
        erase_verdict_comments(ids, detach_author=False)
        reports = list(given.filter(holds_contact_data()))
        if reports:
            HistoricalSignalement.objects.filter(id__in=ids).update(**BLANK_CONTACT)
            _blank_and_record(reports, detach_reporter=False, reason=erasure_reason(), by=None)
            contact_confirmation.forget(report.pk for report in reports)
        earlier = HistoricalSignalement.objects.filter(contact_email__iexact=email)
        result.history_only = earlier.values("id").distinct().count()
        earlier.update(**BLANK_CONTACT)
        result.reports = len(reports)
        result.subscriptions = (
            Subscription.objects.filter(email__iexact=email)
            .delete()[1]
            .get(Subscription._meta.label, 0)
        )
    logger.info(
        "Erased the contact data of %d reports (and %d reports' history) at a request.",
        result.reports,
        result.history_only,
    )
    return result
