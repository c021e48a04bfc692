"""Reply templates: the saved texts agents pick for the public note of a status change
(`models.ReplyTemplate`), offered by the admin's workflow panel and applied by
`?template=<code>` on the API's transition.

`available()` says which templates fit a report and a target status: active ones, for
its category or for any, for that status or for any. `render()` fills the placeholders
`{reference}`, `{category}` and `{due_at}` for the report.

The text is written by staff, but it is filled for a report and sent to its reporter, so
filling it must never evaluate anything: `str.format_map` would follow
`{reference.__class__.__mro__}` (attribute access on the value, before any mapping can
refuse it), pad `{reference:>999999999}` to a gigabyte, and raise on a lone `{`. Each
placeholder is therefore replaced by plain text substitution of its exact name; every
other brace, known or not, is left as written."""

import re

from django.db.models import Q, QuerySet
from django.utils import formats, timezone

from .models import ReplyTemplate, Signalement

PLACEHOLDERS = ("reference", "category", "due_at")

_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
# What looks like a placeholder: a name in braces (`{refrence}`, `{due_at}`).
_ANYTHING_LIKE_A_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateNotAvailable(Exception):
    """The code names no active template, or one for another category or status."""

    def __init__(self, code: str, template: ReplyTemplate | None = None):
        super().__init__(code)
        self.code = code
        self.template = template  # None: no active template has this code


def available(signalement: Signalement, to_status: str) -> QuerySet[ReplyTemplate]:
    """The active templates that fit the report's category (or any category) and the
    move to `to_status` (or any move), by name."""
    return ReplyTemplate.objects.filter(
        Q(category__isnull=True) | Q(category_id=signalement.category_id),
        Q(to_status="") | Q(to_status=to_status),
        is_active=True,
    ).order_by("name", "id")


def available_for_moves(signalement: Signalement, statuses) -> dict[str, list[ReplyTemplate]]:
    """`available()` for each of `statuses`, in one query (the admin's panel offers a
    choice for each next status)."""
    statuses = list(statuses)
    templates = list(
        ReplyTemplate.objects.filter(
            Q(category__isnull=True) | Q(category_id=signalement.category_id),
            Q(to_status="") | Q(to_status__in=statuses),
            is_active=True,
        ).order_by("name", "id")
    )
    return {
        status: [template for template in templates if template.to_status in ("", status)]
        for status in statuses
    }


def chosen(code: str, signalement: Signalement, to_status: str) -> ReplyTemplate:
    """The template `code`, if it fits this report and move; else TemplateNotAvailable
    (which says whether the code is unknown, or the template is for something else)."""
    template = available(signalement, to_status).filter(code=code).first()
    if template is None:
        raise TemplateNotAvailable(
            code, ReplyTemplate.objects.filter(code=code, is_active=True).first()
        )
    return template


def values(signalement: Signalement) -> dict[str, str]:
    """The placeholders' texts for a report; `{due_at}` in the local time zone and the
    active language's format (empty when the report has no due date)."""
    due_at = ""
    if signalement.due_at is not None:
        due_at = formats.date_format(timezone.localtime(signalement.due_at), "DATETIME_FORMAT")
    category = signalement.category
    return {
        "reference": signalement.reference,
        "category": category.name if category is not None else "",
        "due_at": due_at,
    }


def fill(body: str, filled: dict[str, str]) -> str:
    """`body` with each `{name}` of PLACEHOLDERS replaced by its text; nothing else in it
    is interpreted (see the module's doc)."""
    return _PLACEHOLDER.sub(lambda found: filled[found.group(1)], body)


def render(template: ReplyTemplate, signalement: Signalement) -> str:
    """The template's text filled for the report."""
    return fill(template.body, values(signalement))


def with_note(text: str, note: str) -> str:
    """The note of a move made with a template: the template's text, then the agent's
    own note on a new line when there is one."""
    text, note = text.strip(), note.strip()
    return "\n".join(part for part in (text, note) if part)


def unknown_placeholders(body: str) -> list[str]:
    """Names in braces that are not placeholders (`{refrence}`): left as written when
    the text is filled, most likely a typing mistake."""
    return sorted(
        {name for name in _ANYTHING_LIKE_A_PLACEHOLDER.findall(body) if name not in PLACEHOLDERS}
    )
