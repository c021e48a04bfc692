"""What happens to reports, announced by the domain to whoever listens: the emails to
reporters and followers (`notifications.py`), the webhooks' outbox (`webhooks.py`).

Every door and service that changes a report calls `emit()` inside the transaction that
makes the change. Listeners run there too: a listener that writes (an outbox row) writes
in that transaction, so there is no event for a change that rolled back and no change
without its event; a listener that sends something enqueues a task on commit
(`tasks.enqueue_on_commit`). A listener must not fail for reasons of its own: its
exception would undo the change.

The kinds are those of the webhooks' `events` (the contract integrators subscribe to).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

CREATED = "signalement.created"
UPDATED = "signalement.updated"
STATUS_CHANGED = "signalement.status_changed"
COMMENTED = "signalement.commented"
ATTACHMENT_ADDED = "signalement.attachment_added"
KINDS = (CREATED, UPDATED, STATUS_CHANGED, COMMENTED, ATTACHMENT_ADDED)


@dataclass(frozen=True)
class Event:
    """`kind` happened to `report` (a Signalement, as saved), by `actor` (a user, or None
    for an anonymous reporter or an API key). `data` depends on the kind:

    - CREATED: {}
    - UPDATED: {"fields": [names of the fields the request set]}
    - STATUS_CHANGED: {"from": status, "to": status, "note": public note, "notify": bool}
    - COMMENTED: {"comment_id": id, "is_internal": bool, "author_role": "agent"|"reporter"}
    - ATTACHMENT_ADDED: {"attachment_ids": [ids]}
    """

    kind: str
    report: object
    actor: object = None
    data: dict = field(default_factory=dict)


Listener = Callable[[Event], None]
LISTENERS: list[Listener] = []


def listen(listener: Listener) -> Listener:
    """Call `listener` with every event (a decorator; the listening module is imported
    by `apps.py`)."""
    if listener not in LISTENERS:
        LISTENERS.append(listener)
    return listener


def emit(kind: str, report, *, actor=None, **data) -> Event:
    """Announce that `kind` happened to `report`. Call it inside the change's
    transaction."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    event = Event(kind=kind, report=report, actor=actor, data=data)
    for listener in LISTENERS:
        listener(event)
    return event
