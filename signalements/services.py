"""Business operations on reports that are more than plain CRUD."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from . import events, geo
from .models import CLOSED_STATUSES, TRANSITIONS, Comment, Signalement, Status


class TransitionNotAllowed(Exception):
    """The workflow does not allow moving a report from its status to the one asked."""

    def __init__(self, signalement: Signalement, to_status: str) -> None:
        self.signalement = signalement
        self.to_status = to_status
        self.allowed = sorted(TRANSITIONS[signalement.status])
        super().__init__(
            _("Cannot move %(reference)s from %(from)s to %(to)s; allowed: %(allowed)s.")
            % {
                "reference": signalement.reference,
                "from": signalement.status,
                "to": to_status,
                "allowed": ", ".join(self.allowed) or "-",
            }
        )


def transition(
    *,
    signalement: Signalement,
    to_status: str,
    by=None,
    note: str = "",
    notify: bool = True,
    as_agent: bool = True,
) -> Signalement:
    """Move a report to `to_status` if the workflow allows it, and return it.

    The row is locked for the length of the transaction, so two simultaneous
    transitions of one report serialize: the second one sees the first one's result.
    The change is recorded in the history (by `by`), a non-empty `note` becomes a public
    update (written as an agent's, unless `as_agent` is false: the reporter's own words,
    when their "not fixed" reopens the report), and the change is announced
    (`events.STATUS_CHANGED`): the reporter is emailed (unless `notify` is false, e.g.
    for imports) by a task enqueued once the transaction has committed.
    """
    with transaction.atomic():
        locked = Signalement.objects.select_for_update().get(pk=signalement.pk)
        if to_status not in TRANSITIONS[locked.status]:
            raise TransitionNotAllowed(locked, to_status)
        from_status = locked.status
        locked.status = to_status
        locked.resolved_at = timezone.now() if to_status == Status.RESOLVED else None
        if by is not None:
            locked._history_user = by
        locked._change_reason = note
        locked.save(update_fields=["status", "resolved_at", "updated_at"])
        if note:
            Comment.objects.create(
                signalement=locked,
                author=by,
                author_role="agent" if as_agent else "reporter",
                body=note,
                status=to_status,
            )
        events.emit(
            events.STATUS_CHANGED,
            locked,
            actor=by,
            **{"from": from_status, "to": to_status, "note": note, "notify": notify},
        )
    return locked


def add_comment(
    *, signalement: Signalement, author, body: str, is_internal: bool, as_agent: bool
) -> Comment:
    """A public update or (agents only, checked by the caller) an internal note."""
    with transaction.atomic():
        comment = Comment.objects.create(
            signalement=signalement,
            author=author,
            author_role="agent" if as_agent else "reporter",
            body=body,
            is_internal=is_internal,
        )
        commented(comment, by=author)
    return comment


def commented(comment: Comment, *, by=None) -> None:
    """Announce a comment written (through `add_comment`, or the admin's inline)."""
    events.emit(
        events.COMMENTED,
        comment.signalement,
        actor=by,
        comment_id=comment.pk,
        is_internal=comment.is_internal,
        author_role=comment.author_role,
    )


def may_have_duplicates(signalement: Signalement) -> bool:
    """Only a report with a category and a location is compared with others."""
    return signalement.category_id is not None and signalement.latitude is not None


def possible_duplicates(
    *, signalement: Signalement, among: QuerySet, limit: int = 5
) -> list[Signalement]:
    """Open reports of the same category near this one (`DUPLICATE_RADIUS_M`), created
    in the last `DUPLICATE_WINDOW_DAYS` days, nearest first: candidates for
    `duplicate_of`. `among` is what the caller may see."""
    if not may_have_duplicates(signalement):
        return []
    since = timezone.now() - timedelta(days=settings.SIGNALEMENT_DUPLICATE_WINDOW_DAYS)
    candidates = (
        among.filter(category_id=signalement.category_id, created_at__gte=since)
        .exclude(status__in=CLOSED_STATUSES)
        .exclude(pk=signalement.pk)
    )
    nearby = geo.within_radius(
        candidates,
        signalement.latitude,
        signalement.longitude,
        settings.SIGNALEMENT_DUPLICATE_RADIUS_M,
    )
    return list(nearby.order_by("distance_sq", "-created_at", "-id")[:limit])
