"""Business operations on reports that are more than plain CRUD."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import TRANSITIONS, Signalement, Status


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


def transition(*, signalement: Signalement, to_status: str) -> Signalement:
    """Move a report to `to_status` if the workflow allows it, and return it.

    The row is locked for the length of the transaction, so two simultaneous
    transitions of one report serialize: the second one sees the first one's result.
    """
    with transaction.atomic():
        locked = Signalement.objects.select_for_update().get(pk=signalement.pk)
        if to_status not in TRANSITIONS[locked.status]:
            raise TransitionNotAllowed(locked, to_status)
        locked.status = to_status
        locked.resolved_at = timezone.now() if to_status == Status.RESOLVED else None
        locked.save(update_fields=["status", "resolved_at", "updated_at"])
    return locked
