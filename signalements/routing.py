"""Routing: which department handles a report, at which priority, and by when.

On create, and when the category, the place or the priority of a report changes
(whichever door changes it: the API, the admin, Open311), `Signalement.save()` asks
`plan()` what follows from the change and `apply()` carries it out:

- the report's areas are those containing its location (`areas.containing`);
- its department and priority come from the first active routing rule that matches
  (category, area, extra answer), else the category's department: unless the report
  keeps its routing (`keep_routing`, set by an agent), or the same write sets the
  department by hand;
- its due date comes from its category's service level (`service_levels.due_at`).

The reason ("rule 3: Voirie in Nord → Voirie Nord") is the history's note of the write.
`explain()` is the dry run: which rule a report would match, and why the others do not.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, router
from django.db.models.signals import m2m_changed
from django.dispatch import receiver
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from . import areas as area_lookup
from . import service_levels
from .models import Area, Department, RoutingRule, Signalement


@dataclass
class Match:
    """The outcome of routing: the department, the priority (None: unchanged), the rule
    that decided (None: the category's default, or nothing) and why, in words."""

    department: Department | None
    priority: str | None
    rule: RoutingRule | None
    reason: str


@dataclass
class RuleTrial:
    rule: RoutingRule
    matches: bool
    why_not: str = ""


@dataclass
class Plan:
    """What a write of a report changes by routing: fields to save, areas to set."""

    creating: bool = False
    fields: set[str] = field(default_factory=set)
    area_ids: list[int] | None = None
    area_codes: list[str] | None = None
    reasons: list[str] = field(default_factory=list)


# The active rules, read once per process and database and kept while the rules and the
# departments stay as they were: a create then pays one small query (the fingerprint)
# inside its transaction instead of three. Any write to a rule (its categories and areas
# too: `rule_links_changed`) or to a department changes the fingerprint.
_FINGERPRINT = (
    "SELECT COUNT(*), MAX({rule}.{updated}), SUM({rule}.{id}), "
    "(SELECT MAX({updated}) FROM {department}) FROM {rule}"
)
_rules: dict[str, tuple[tuple, list[RoutingRule]]] = {}


def _active_rules() -> list[RoutingRule]:
    using = router.db_for_read(RoutingRule)
    connection = connections[using]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            _FINGERPRINT.format(
                rule=quote(RoutingRule._meta.db_table),
                department=quote(Department._meta.db_table),
                updated=quote("updated_at"),
                id=quote("id"),
            )
        )
        fingerprint = tuple(str(value) for value in cursor.fetchone())
    cached = _rules.get(using)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    rules = list(
        RoutingRule.objects.using(using)
        .filter(is_active=True)
        .select_related("department")
        .prefetch_related("categories", "areas")
    )
    for rule in rules:  # what `_why_not` tests, once per read of the rules
        rule.category_ids = frozenset(category.pk for category in rule.categories.all())
        rule.area_ids = frozenset(area.pk for area in rule.areas.all())
    _rules[using] = (fingerprint, rules)
    return rules


@receiver(m2m_changed, sender=RoutingRule.categories.through)
@receiver(m2m_changed, sender=RoutingRule.areas.through)
def rule_links_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """A rule's categories or areas changed: so does the rule (its `updated_at`, and so
    the fingerprint of the cached rules)."""
    if not action.startswith("post_"):
        return
    if reverse:  # category.routing_rules.add(rule…): the rules are `pk_set`
        rules = RoutingRule.objects.filter(pk__in=pk_set or ())
        if action == "post_clear":
            rules = RoutingRule.objects.all()
    else:
        rules = RoutingRule.objects.filter(pk=instance.pk)
    rules.update(updated_at=timezone.now())


def _answers(value) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    if value is None:
        return []
    if isinstance(value, bool):
        return ["true" if value else "false"]
    return [str(value)]


def _why_not(rule: RoutingRule, category_id, area_ids: set[int], extra: dict) -> str:
    """Why a rule does not match, or "" when it does."""
    if not rule.department.is_active:
        return _("its department is not active")
    if rule.category_ids and category_id not in rule.category_ids:
        return _("another category")
    if rule.area_ids and not rule.area_ids & area_ids:
        return _("outside its areas")
    if rule.extra_field and rule.extra_value not in _answers((extra or {}).get(rule.extra_field)):
        return _("the answer to %(field)s differs") % {"field": rule.extra_field}
    return ""


def describe(rule: RoutingRule) -> str:
    """ "rule 3: Voirie in Nord → Voirie Nord" (its name when it has one)."""
    categories = ", ".join(category.name for category in rule.categories.all())
    places = ", ".join(area.name for area in rule.areas.all())
    condition = rule.name or categories or _("any category")
    if places and not rule.name:
        condition = _("%(what)s in %(where)s") % {"what": condition, "where": places}
    if rule.extra_field and not rule.name:
        condition += f" ({rule.extra_field} = {rule.extra_value})"
    return _("rule %(number)s: %(condition)s → %(department)s") % {
        "number": rule.order or rule.pk,
        "condition": condition,
        "department": rule.department.name,
    }


def _trials(category_id, area_ids, extra):
    """Each active rule, in order, and whether a report with these values matches it
    (lazily: routing stops at the first match)."""
    area_ids = set(area_ids)
    for rule in _active_rules():
        why_not = _why_not(rule, category_id, area_ids, extra)
        yield RuleTrial(rule, not why_not, why_not)


def _decide(category, trials) -> Match:
    """The first matching rule's department (and priority), else the category's."""
    for trial in trials:
        if trial.matches:
            rule = trial.rule
            return Match(rule.department, rule.priority or None, rule, describe(rule))
    department = category.department if category is not None else None
    if department is not None and department.is_active:
        reason = _("category %(category)s → %(department)s") % {
            "category": category.name,
            "department": department.name,
        }
        return Match(department, None, None, reason)
    return Match(None, None, None, _("no rule and no department for this category"))


def route(category, area_ids, extra) -> Match:
    """The department (and priority) of a report with this category, areas and extra
    answers: the first matching rule, else the category's active department."""
    return _decide(category, _trials(category.pk if category else None, area_ids, extra))


@dataclass
class DryRun:
    """Where routing would send a report now (`match`), each active rule's verdict, and
    the areas that contain the report's location."""

    match: Match
    trials: list[RuleTrial]
    areas: list[Area]


def explain(signalement: Signalement) -> DryRun:
    """The dry run (whether or not the report keeps its routing): the areas and the rules
    are looked at once."""
    areas = area_lookup.containing(signalement.latitude, signalement.longitude)
    category = signalement.category
    trials = list(
        _trials(category.pk if category else None, [a.pk for a in areas], signalement.extra)
    )
    return DryRun(_decide(category, trials), trials, areas)


def _loaded(signalement: Signalement) -> dict | None:
    return signalement.__dict__.get("_routing_loaded")


def remember(signalement: Signalement) -> None:
    """Note the routed-on values as loaded from the database (`Signalement.from_db`)."""
    signalement.__dict__["_routing_loaded"] = {
        "category_id": signalement.category_id,
        "latitude": signalement.latitude,
        "longitude": signalement.longitude,
        "priority": signalement.priority,
        "department_id": signalement.department_id,
    }


def _changed(signalement: Signalement, loaded: dict | None, name: str) -> bool:
    if loaded is None:
        return True
    old, new = loaded[name], getattr(signalement, name)
    if name in ("latitude", "longitude") and old is not None and new is not None:
        return float(old) != float(new)
    return old != new


def plan(signalement: Signalement, update_fields) -> Plan:
    """What routing changes in this write of the report (see the module's doc)."""
    creating = signalement._state.adding
    result = Plan(creating=creating)
    loaded = None if creating else _loaded(signalement)
    if loaded is None and not creating:
        return result  # not loaded from the database here: nothing to compare with

    def written(name: str) -> bool:
        return update_fields is None or name in update_fields

    moved = (written("latitude") or written("longitude")) and (
        _changed(signalement, loaded, "latitude") or _changed(signalement, loaded, "longitude")
    )
    recategorized = written("category") and _changed(signalement, loaded, "category_id")
    if creating or moved:
        found = area_lookup.containing(signalement.latitude, signalement.longitude)
        result.area_ids = [area.pk for area in found]
        result.area_codes = sorted(area.code for area in found)
        if found and creating:
            result.reasons.append(
                _("areas: %(areas)s") % {"areas": ", ".join(area.name for area in found)}
            )
    set_by_hand = not creating and _changed(signalement, loaded, "department_id")
    if (creating or moved or recategorized) and not signalement.keep_routing and not set_by_hand:
        area_ids = result.area_ids
        if area_ids is None:
            area_ids = list(signalement.areas.values_list("pk", flat=True))
        match = route(signalement.category, area_ids, signalement.extra)
        if match.department != signalement.department or creating:
            signalement.department = match.department
            result.fields.add("department")
        if match.priority and match.priority != signalement.priority:
            signalement.priority = match.priority
            result.fields.add("priority")
        previous = None if creating else loaded["department_id"]
        if match.department is not None or previous is not None:
            if (match.department.pk if match.department else None) != previous or creating:
                result.reasons.append(match.reason)
    reprioritized = not creating and _changed(signalement, loaded, "priority")
    if creating or recategorized or reprioritized:
        start = signalement.created_at
        due = service_levels.due_at(signalement.category_id, signalement.priority, start)
        if creating or due != signalement.due_at:
            signalement.due_at = due
            result.fields.add("due_at")
    return result


# The fields whose change routes a report (or moves its due date).
ROUTED_ON = frozenset({"category", "latitude", "longitude", "priority"})


def before_save(signalement: Signalement, update_fields):
    """Apply the plan's fields to the report; returns the plan and the update_fields to
    save (with the plan's fields added when the write names its fields)."""
    if update_fields is not None and not ROUTED_ON.intersection(update_fields):
        return Plan(), update_fields  # a transition, say: nothing routing looks at
    with translation.override(settings.LANGUAGE_CODE):
        result = plan(signalement, update_fields)
    if result.reasons and not getattr(signalement, "_change_reason", None):
        signalement._change_reason = "; ".join(result.reasons)
    if update_fields is not None and result.fields:
        update_fields = {*update_fields, *result.fields}
    return result, update_fields


def after_save(signalement: Signalement, result: Plan) -> None:
    """Set the report's areas (a many-to-many: after its row exists), and note their
    codes on it (`area_codes_of`)."""
    if result.area_codes is not None:
        signalement.__dict__["_routed_area_codes"] = result.area_codes
    if result.area_ids is not None:
        if result.creating:
            if result.area_ids:
                signalement.areas.add(*result.area_ids)
        elif result.area_ids:
            signalement.areas.set(result.area_ids)
        else:
            signalement.areas.clear()
    remember(signalement)


def area_codes_of(signalement: Signalement) -> list[str]:
    """The codes of a report's areas: as routed by its last save when it was, else read."""
    known = signalement.__dict__.get("_routed_area_codes")
    return list(known) if known is not None else signalement.area_codes
