"""Routing an import's reports as a create through the API would (`routing.py`): their
areas, their department and priority (unless the row names them), their due date
(`service_levels.py`), and the reason that becomes their history's note.

`routing.plan()` costs a few queries a report; here a batch is routed at once and
without the database, but for what is new: the active areas are read once into a
spatial index (`areas.AreaIndex`: a batch's points are matched in one call), the
service levels once (`service_levels.Levels`), and `routing.route()` is asked once per
distinct (category, areas, answers the rules look at), its verdicts kept. The areas,
rules and levels are those of the import's start."""

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import NamedTuple

import orjson
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from .. import areas as area_lookup
from .. import routing, service_levels
from ..models import Priority, RoutingRule


class Routed(NamedTuple):
    """What routing gives a report (`routing.plan()` for a create)."""

    area_ids: tuple[int, ...]
    department_id: int | None
    priority: str
    due_at: datetime | None
    reason: str


class BulkRouter:
    """Routes the rows of a batch (see the module's doc). `routing.route()` reads the
    database: `database` is held while it runs (the import's writer shares the
    connection)."""

    # Routing verdicts kept at most (a rule on a free-text answer makes many).
    MATCHES_MAX = 10_000

    def __init__(self, note: str, database: AbstractContextManager | None = None):
        self.note = note
        self.database = database or nullcontext()
        self.areas = area_lookup.AreaIndex()
        self.levels = service_levels.Levels()
        self.rule_fields = sorted(
            set(
                RoutingRule.objects.filter(is_active=True)
                .exclude(extra_field="")
                .values_list("extra_field", flat=True)
            )
        )
        self.no_answers = (b"null",) * len(self.rule_fields)
        # (category id, area ids, answers, department named) -> (department id,
        # priority or None, reason)
        self.matches: dict[tuple, tuple] = {}

    def due_at(self, category_id: int | None, priority: str, start: datetime):
        """`service_levels.due_at()`, without a query."""
        return service_levels.due_from(self.levels.level_for(category_id, priority), start)

    def _answers(self, extra: dict) -> tuple:
        """The answers the rules look at, as a key."""
        if not extra:
            return self.no_answers
        return tuple(
            orjson.dumps(extra.get(name), option=orjson.OPT_SORT_KEYS) for name in self.rule_fields
        )

    def _decide(self, keys: list[tuple], areas: list[list], rows: list[dict]) -> None:
        """The verdicts of the keys not seen yet, as `routing.route()` gives them."""
        with self.database, translation.override(settings.LANGUAGE_CODE):
            for key, found, attrs in zip(keys, areas, rows, strict=True):
                if key in self.matches:
                    continue
                if len(self.matches) >= self.MATCHES_MAX:
                    self.matches.clear()
                reasons = [self.note]
                if found:
                    reasons.append(
                        _("areas: %(areas)s") % {"areas": ", ".join(a.name for a in found)}
                    )
                if "department" in attrs:  # named by the row: kept
                    department = attrs["department"]
                    department_id, priority = (department.pk if department else None), None
                else:
                    match = routing.route(attrs.get("category"), list(key[1]), attrs["extra"])
                    department_id = match.department.pk if match.department else None
                    priority = match.priority
                    if match.department is not None:
                        reasons.append(match.reason)
                self.matches[key] = (department_id, priority, "; ".join(reasons))

    def route(self, rows: list[dict], now: datetime) -> list[Routed]:
        """Each row's routing; a row without `created_at` is created at `now`."""
        areas = self.areas.containing_many(
            [(attrs.get("latitude"), attrs.get("longitude")) for attrs in rows]
        )
        keys = []
        for attrs, found in zip(rows, areas, strict=True):
            category = attrs.get("category")
            if "department" in attrs:
                answers, named = (), attrs["department"]
            else:
                answers, named = self._answers(attrs["extra"]), False
            keys.append(
                (category.pk if category else None, tuple(a.pk for a in found), answers, named)
            )
        matches = self.matches
        if any(key not in matches for key in keys):
            self._decide(keys, areas, rows)
        routed = []
        due_at: Callable = self.due_at
        for attrs, key in zip(rows, keys, strict=True):
            department_id, rule_priority, reason = matches[key]
            priority = attrs.get("priority") or rule_priority or Priority.NORMAL
            due = due_at(key[0], priority, attrs.get("created_at") or now)
            routed.append(Routed(key[1], department_id, priority, due, reason))
        return routed
