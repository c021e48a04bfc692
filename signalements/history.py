"""A report's history, read from django-simple-history's records: who changed which
fields, when. Agents get every change; everyone else gets status changes only, with the
public note that came with each (a creation's note, the routing's reason, is for agents
only). (`api/serializers/history.py` shows it.)"""

from dataclasses import dataclass, field
from datetime import datetime

from .models import Signalement


@dataclass
class Change:
    field: str
    old: str | None
    new: str | None


@dataclass
class Entry:
    at: datetime
    kind: str  # "created" or "changed"
    by: str | None
    note: str
    changes: list[Change] = field(default_factory=list)


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def entries_for(signalement: Signalement, *, full: bool) -> list[Entry]:
    """The report's history, oldest first. `full` (agents) shows every field change and
    who made it; otherwise only status changes, without names."""
    records = list(
        signalement.history.select_related("history_user").order_by("history_date", "history_id")
    )
    entries = []
    previous = None
    for record in records:
        if previous is None:
            kind = "created"
            changes = [
                Change(tracked.attname, None, _text(getattr(record, tracked.attname)))
                for tracked in record.tracked_fields
                if getattr(record, tracked.attname) not in (None, "")
            ]
        else:
            kind = "changed"
            delta = record.diff_against(previous, foreign_keys_are_objs=False)
            changes = [Change(c.field, _text(c.old), _text(c.new)) for c in delta.changes]
            # simple-history's diff leaves out the fields not editable by hand; the due
            # date is one, yet it moves with the category and the priority.
            if record.due_at != previous.due_at:
                changes.append(Change("due_at", _text(previous.due_at), _text(record.due_at)))
        previous = record
        note = record.history_change_reason or ""
        if not full:
            changes = [c for c in changes if c.field == "status"]
            if not changes:
                continue
            if kind == "created":
                note = ""  # the routing's reason (`routing.py`): for agents

        entries.append(
            Entry(
                at=record.history_date,
                kind=kind,
                by=record.history_user.get_username() if full and record.history_user else None,
                note=note,
                changes=changes,
            )
        )
    return entries
