"""The reporter's verdict (`models/feedback.py`): once a report is resolved, its reporter
says whether the problem is really fixed, during `FEEDBACK_DAYS` (14) after the
resolution. FixMyStreet asks the same question; its oldest open request (#897) is about a
"not fixed" that never reaches the people who could act on it. Here it does:

- "fixed" is recorded, and the report stays resolved;
- "not fixed" reopens the report (`resolved → in_progress` through the workflow, the
  reporter's words as the public note and the history's reason), or, when the report's
  category says so (`Category.reopen_policy = "request"`), files a reopen request: an
  internal note on the report, and a pending verdict that an agent accepts (the report
  reopens) or refuses (it stays resolved), in the admin or the API.

One verdict per resolution (a report resolved again may be answered again), given by the
logged-in reporter or by whoever holds the signed link of the "resolved" email: the link
names the report and the resolution (its `resolved_at`), so a link to an earlier
resolution answers nothing once the report was reopened or resolved again.

Everything here runs in one transaction with the report's row locked: two answers sent at
once (a double click, the link and the app) or two agents deciding at once serialize, and
the second one is refused (`Refused`). The notes written on the report are in the site's
language (`LANGUAGE_CODE`): they are part of the report's file, like the history."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from . import emails, services, signed_links
from .languages import default_language
from .models import DESCRIPTION_MAX_LENGTH, Feedback, Reopen, ReopenPolicy, Signalement, Status
from .signed_links import InvalidToken

LINK_SALT = "signalements.feedback.link"
COMMENT_MAX_LENGTH = 4000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Why a verdict or a decision is refused (the REST API's error codes).
NOT_RESOLVED = "not_resolved"
OTHER_RESOLUTION = "other_resolution"
TOO_LATE = "too_late"
ALREADY_ANSWERED = "already_answered"
NOT_PENDING = "not_pending"


class Refused(Exception):
    """A verdict or a decision that the report's state does not allow now; `code` says
    why (one of the constants above)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def period() -> timedelta:
    return timedelta(days=settings.SIGNALEMENT_FEEDBACK_DAYS)


def deadline(signalement: Signalement) -> datetime | None:
    """Until when the reporter may answer the report's current resolution (None: it is
    not resolved)."""
    if signalement.status != Status.RESOLVED or signalement.resolved_at is None:
        return None
    return signalement.resolved_at + period()


def is_open(signalement: Signalement) -> bool:
    """Whether the current resolution may be answered: resolved, in time, not answered."""
    until = deadline(signalement)
    return (
        until is not None
        and timezone.now() <= until
        and not Feedback.objects.filter(
            signalement=signalement, resolved_at=signalement.resolved_at
        ).exists()
    )


# --- The signed link ----------------------------------------------------------------------


def _stamp(moment: datetime) -> int:
    """A moment as whole microseconds since 1970 (exact, unlike a float timestamp)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def _moment(stamp: int) -> datetime:
    return EPOCH + timedelta(microseconds=stamp)


def feedback_token(signalement: Signalement) -> str:
    """The token of the link that answers the report's current resolution. It holds no
    personal data (a report id and a time), and is valid `FEEDBACK_DAYS`."""
    if signalement.resolved_at is None:
        raise ValueError(f"{signalement.reference} is not resolved")
    return signing.dumps(
        {"r": signalement.pk, "t": _stamp(signalement.resolved_at)}, salt=LINK_SALT
    )


def feedback_urls(signalement: Signalement) -> dict[str, str]:
    """The "fixed" and "not fixed" links of the report's "resolved" email: the same page,
    its answer chosen in advance. Opening one changes nothing (mail filters open links);
    the page's form records the verdict."""
    path = reverse("feedback-link", args=[feedback_token(signalement)])
    return {
        answer: emails.public_url(f"{path}?{urlencode({'answer': answer})}")
        for answer in ("fixed", "not_fixed")
    }


@dataclass
class Link:
    """What a valid link names: a report, the resolution it answers, and the verdict
    already given for it (None: not yet)."""

    signalement: Signalement
    resolved_at: datetime
    feedback: Feedback | None

    @property
    def deadline(self) -> datetime:
        return self.resolved_at + period()


def read_token(token: str) -> Link:
    """The link's report and resolution. A resolution that is no longer the report's (it
    was reopened or resolved again) is still shown once answered (the reporter sees
    their verdict), and is refused as expired otherwise."""
    payload = signed_links.load(token, salt=LINK_SALT, max_age=period())
    report_id, stamp = payload.get("r"), payload.get("t")
    if not isinstance(report_id, int) or not isinstance(stamp, int):
        raise InvalidToken()
    signalement = Signalement.objects.filter(pk=report_id).first()
    if signalement is None:
        raise InvalidToken()
    resolved_at = _moment(stamp)
    answered = Feedback.objects.filter(signalement=signalement, resolved_at=resolved_at).first()
    current = signalement.resolved_at is not None and _stamp(signalement.resolved_at) == stamp
    if answered is None and not current:
        raise InvalidToken(expired=True)
    return Link(signalement=signalement, resolved_at=resolved_at, feedback=answered)


# --- The verdict ----------------------------------------------------------------------------


def _quoting(template: str, text: str) -> str:
    """`template % {"text": text}`, the text shortened so that the whole fits in a
    comment (DESCRIPTION_MAX_LENGTH)."""
    note = template % {"text": text}
    overflow = len(note) - DESCRIPTION_MAX_LENGTH
    if overflow > 0:
        note = template % {"text": text[: len(text) - overflow - 1] + "…"}
    return note


def reopen_note(comment: str) -> str:
    """The public note of a report reopened by its reporter: why, in their words."""
    with translation.override(default_language()):
        if not comment:
            return _("Reopened: the reporter says the problem is not fixed.")
        return _quoting(
            _("Reopened: the reporter says the problem is not fixed: “%(text)s”"), comment
        )


def request_note(comment: str) -> str:
    """The internal note that shows agents a reopen request on the report's page."""
    with translation.override(default_language()):
        if not comment:
            return _(
                "Reopen request: the reporter says the problem is not fixed. Accept or "
                "refuse it in the reporters' verdicts."
            )
        return _quoting(
            _(
                "Reopen request: the reporter says the problem is not fixed: “%(text)s”. "
                "Accept or refuse it in the reporters' verdicts."
            ),
            comment,
        )


def accepted_note() -> str:
    """The public note of a reopen request accepted without a note of the agent's."""
    with translation.override(default_language()):
        return _("Reopened at the reporter's request: the problem is not fixed.")


def _check_length(field: str, text: str) -> None:
    if len(text) > COMMENT_MAX_LENGTH:
        raise ValidationError(
            {
                field: _("Ensure this field has no more than %(max)d characters.")
                % {"max": COMMENT_MAX_LENGTH}
            },
            code="max_length",
        )


def record(
    signalement: Signalement,
    is_fixed: bool,
    comment: str = "",
    author=None,
    *,
    resolution: datetime | None = None,
) -> Feedback:
    """The reporter's verdict on the report's current resolution (or on `resolution`,
    that of a signed link, which must still be the current one), by `author` (None:
    through the link). Raises `Refused` when the report is not resolved, the resolution
    is not the link's, the time is over, or it was answered already; a `ValidationError`
    for a comment longer than 4,000 characters."""
    comment = comment.strip()
    _check_length("comment", comment)
    with transaction.atomic():
        report = (
            Signalement.objects.select_for_update(of=("self",))  # not the category's row
            .select_related("category")
            .get(pk=signalement.pk)
        )
        answered = resolution or report.resolved_at
        if (
            answered is not None
            and Feedback.objects.filter(signalement=report, resolved_at=answered).exists()
        ):
            raise Refused(ALREADY_ANSWERED, _("The reporter has already answered this resolution."))
        if resolution is not None and report.resolved_at != resolution:
            raise Refused(
                OTHER_RESOLUTION,
                _("The report was reopened or resolved again since: this answers nothing."),
            )
        if report.status != Status.RESOLVED or report.resolved_at is None:
            raise Refused(NOT_RESOLVED, _("Only a resolved report can be answered."))
        if timezone.now() > report.resolved_at + period():
            raise Refused(
                TOO_LATE,
                _("A resolution can be answered during %(days)d days only.")
                % {"days": settings.SIGNALEMENT_FEEDBACK_DAYS},
            )
        feedback = Feedback(
            signalement=report,
            resolved_at=report.resolved_at,
            is_fixed=is_fixed,
            comment=comment,
            author=author,
        )
        if not is_fixed:
            policy = report.category.reopen_policy if report.category else ReopenPolicy.REOPEN
            feedback.reopen = Reopen.PENDING if policy == ReopenPolicy.REQUEST else Reopen.REOPENED
        if author is not None:
            feedback._history_user = author
        try:
            with transaction.atomic():  # a savepoint: the transaction goes on after a clash
                feedback.save()
        except IntegrityError:  # answered at the same time, outside the report's lock
            raise Refused(
                ALREADY_ANSWERED, _("The reporter has already answered this resolution.")
            ) from None
        if feedback.reopen == Reopen.REOPENED:
            services.transition(
                signalement=report,
                to_status=Status.IN_PROGRESS,
                by=author,
                note=reopen_note(comment),
                as_agent=False,
            )
        elif feedback.reopen == Reopen.PENDING:
            services.add_comment(
                signalement=report,
                author=author,
                body=request_note(comment),
                is_internal=True,
                as_agent=False,
            )
    return feedback


# --- The agents' decision on a reopen request -------------------------------------------------


def _decide(feedback: Feedback, *, by, note: str, outcome: str) -> tuple[Feedback, Signalement]:
    """Lock the report, then the verdict (always in this order: `record` locks the
    report too), check that the request is still pending, and record the decision."""
    note = note.strip()
    _check_length("note", note)
    report = Signalement.objects.select_for_update().get(pk=feedback.signalement_id)
    locked = Feedback.objects.select_for_update().get(pk=feedback.pk)
    if locked.reopen != Reopen.PENDING:
        raise Refused(
            NOT_PENDING, _("This verdict asks for no decision, or it was decided already.")
        )
    locked.reopen = outcome
    locked.decided_by = by
    locked.decided_at = timezone.now()
    locked.decision_note = note
    locked._history_user = by
    locked.save(update_fields=["reopen", "decided_by", "decided_at", "decision_note"])
    return locked, report


def accept(feedback: Feedback, by, note: str = "") -> Feedback:
    """Accept a reopen request: the report goes back to `in_progress` (unless someone
    reopened it already), `note` (or a sentence saying why) as the public note and the
    history's reason."""
    with transaction.atomic():
        decided, report = _decide(feedback, by=by, note=note, outcome=Reopen.ACCEPTED)
        if report.status == Status.RESOLVED:
            services.transition(
                signalement=report,
                to_status=Status.IN_PROGRESS,
                by=by,
                note=decided.decision_note or accepted_note(),
            )
    return decided


def refuse(feedback: Feedback, by, note: str = "") -> Feedback:
    """Refuse a reopen request: the report stays resolved. `note`, if any, is a public
    update: the reporter is emailed why."""
    with transaction.atomic():
        decided, report = _decide(feedback, by=by, note=note, outcome=Reopen.REFUSED)
        if decided.decision_note:
            services.add_comment(
                signalement=report,
                author=by,
                body=decided.decision_note,
                is_internal=False,
                as_agent=True,
            )
    return decided
