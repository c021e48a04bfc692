"""What staff do from a report's page without leaving it: move it along the workflow
(with an optional public note, which may start from a reply template), take it ("assign to me"), add an internal note or a
public update. Each is a POST to the report's admin URL, through the same services as
the REST API (`services.transition` locks the row), then back to the report's page
with a message.

`panel()` gives the change page what it shows above the form: these forms, the
report's location for the map, its latest history."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from signalements import events, reply_templates, services
from signalements.models import TRANSITIONS, Comment, Signalement, Status

HISTORY_SHOWN = 8
NOTE_MAX_LENGTH = Comment._meta.get_field("body").max_length or 4000


def urls(model_admin) -> list:
    """The report page's workflow URLs, under the report's admin URL."""
    wrap = model_admin.admin_site.admin_view
    return [
        path(
            "<path:object_id>/transition/",
            wrap(
                require_POST(lambda request, object_id: transition(model_admin, request, object_id))
            ),
            name="signalements_signalement_transition",
        ),
        path(
            "<path:object_id>/assign-to-me/",
            wrap(
                require_POST(
                    lambda request, object_id: assign_to_me(model_admin, request, object_id)
                )
            ),
            name="signalements_signalement_assign_to_me",
        ),
        path(
            "<path:object_id>/comment/",
            wrap(require_POST(lambda request, object_id: comment(model_admin, request, object_id))),
            name="signalements_signalement_comment",
        ),
    ]


def _report(model_admin, request, object_id) -> Signalement:
    """The report, for a user who may change it."""
    report = get_object_or_404(model_admin.get_queryset(request), pk=object_id)
    if not model_admin.has_change_permission(request, report):
        raise PermissionDenied
    return report


def _back(report) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:signalements_signalement_change", args=[report.pk]))


def _note(request, name: str) -> str | None:
    """The posted text, stripped; None (and a message) when it is too long."""
    text = request.POST.get(name, "").strip().replace("\x00", "")
    if len(text) > NOTE_MAX_LENGTH:
        messages.error(
            request,
            _("The note is too long: at most %(max)d characters.") % {"max": NOTE_MAX_LENGTH},
        )
        return None
    return text


def transition(model_admin, request, object_id):
    report = _report(model_admin, request, object_id)
    to_status = request.POST.get("to_status", "")
    note = _note(request, "note")
    if note is None:
        return _back(report)
    if to_status not in Status.values:
        messages.error(request, _("Unknown status."))
        return _back(report)
    template_code = request.POST.get("template", "").strip()
    if template_code:
        note = _note_with_template(request, report, template_code, to_status, note)
        if note is None:
            return _back(report)
    try:
        moved = services.transition(
            signalement=report, to_status=to_status, by=request.user, note=note
        )
    except services.TransitionNotAllowed as refused:
        messages.error(
            request,
            _(
                "The report is now “%(current)s”: it cannot move to “%(status)s”. Nothing was changed."
            )
            % {
                "current": Status(refused.signalement.status).label,
                "status": Status(to_status).label,
            },
        )
        return _back(report)
    messages.success(
        request,
        (
            _("Report %(reference)s moved to “%(status)s”, with a public note.")
            if note
            else _("Report %(reference)s moved to “%(status)s”.")
        )
        % {"reference": moved.reference, "status": Status(to_status).label},
    )
    return _back(report)


def _note_with_template(request, report, code: str, to_status: str, note: str) -> str | None:
    """The chosen template's text filled for the report, then the typed note on a new
    line: the page's template choice without JavaScript (with it, the choice fills the
    note's box and is not posted). None (and a message) when the template does not fit
    this move, or the whole is too long."""
    try:
        template = reply_templates.chosen(code, report, to_status)
    except reply_templates.TemplateNotAvailable:
        messages.error(
            request,
            _(
                "The reply template “%(code)s” is not offered for a move of this report to "
                "“%(status)s”. Nothing was changed."
            )
            % {"code": code, "status": Status(to_status).label},
        )
        return None
    combined = reply_templates.with_note(reply_templates.render(template, report), note)
    if len(combined) > NOTE_MAX_LENGTH:
        messages.error(
            request,
            _("The note is too long: at most %(max)d characters.") % {"max": NOTE_MAX_LENGTH},
        )
        return None
    return combined


def assign_to_me(model_admin, request, object_id):
    report = _report(model_admin, request, object_id)
    report.assigned_to = request.user
    report._history_user = request.user
    report._change_reason = _("Assigned to themself")
    with transaction.atomic():
        report.save(update_fields=["assigned_to", "updated_at"])
        events.emit(events.UPDATED, report, actor=request.user, fields=["assigned_to"])
    messages.success(
        request, _("Report %(reference)s is assigned to you.") % {"reference": report.reference}
    )
    return _back(report)


def comment(model_admin, request, object_id):
    report = _report(model_admin, request, object_id)
    body = _note(request, "body")
    if body is None:
        return _back(report)
    if not body:
        messages.error(request, _("Write the note before adding it."))
        return _back(report)
    is_internal = request.POST.get("visibility", "internal") != "public"
    services.add_comment(
        signalement=report, author=request.user, body=body, is_internal=is_internal, as_agent=True
    )
    messages.success(
        request,
        _("Internal note added.") if is_internal else _("Public update added."),
    )
    return _back(report)


def panel(request, report: Signalement, model_admin) -> dict:
    """What the report's page shows above its form."""
    may_change = model_admin.has_change_permission(request, report)
    history = list(
        report.history.select_related("history_user").order_by("-history_date", "-history_id")[
            : HISTORY_SHOWN + 1
        ]
    )
    next_statuses = [
        Status(value) for value in Status.values if value in TRANSITIONS[report.status]
    ]
    return {
        "may_change": may_change,
        "status": Status(report.status),
        "next_statuses": next_statuses,
        "templates": _template_choices(report, next_statuses) if may_change else None,
        "dry_run_url": (
            reverse("admin:signalements_routingrule_dry_run") + f"?report={report.pk}"
            if request.user.has_perm("signalements.view_routingrule")
            else None
        ),
        "assigned_to_me": report.assigned_to_id == request.user.pk,
        "note_max_length": NOTE_MAX_LENGTH,
        "location": (
            {
                "lat": float(report.latitude),
                "lng": float(report.longitude),
                "text": f"{_plain(report.latitude)}, {_plain(report.longitude)}",
            }
            if report.latitude is not None
            else None
        ),
        "history": [_history_row(record) for record in history[:HISTORY_SHOWN]],
        "history_more": len(history) > HISTORY_SHOWN,
        "map": map_settings(),
    }


def _template_choices(report: Signalement, next_statuses: list[Status]) -> dict | None:
    """The reply templates offered for the report's next moves: grouped by the status
    they are written for (then those for any move), and each one's text filled for the
    report, for the script that copies it into the note's box. None when there are none."""
    by_status = reply_templates.available_for_moves(
        report, [status.value for status in next_statuses]
    )
    groups = [
        {
            "label": _("Move to “%(status)s”") % {"status": status.label},
            "templates": [t for t in by_status[status.value] if t.to_status == status.value],
        }
        for status in next_statuses
    ]
    any_move = {t.pk: t for found in by_status.values() for t in found if not t.to_status}
    groups.append({"label": _("Any move"), "templates": list(any_move.values())})
    groups = [group for group in groups if group["templates"]]
    if not groups:
        return None
    values = reply_templates.values(report)
    texts = {
        template.code: reply_templates.fill(template.body, values)
        for group in groups
        for template in group["templates"]
    }
    return {"groups": groups, "texts": texts}


def _plain(number) -> str:
    """A coordinate as written in the API, without trailing zeros (48.111, not 48.111000)."""
    return format(number.normalize(), "f")


def _history_row(record) -> dict:
    kinds = {"+": _("created"), "~": _("changed"), "-": _("deleted")}
    return {
        "date": record.history_date,
        "user": record.history_user,
        "kind": kinds.get(record.history_type, record.history_type),
        "status": Status(record.status).label if record.status in Status.values else record.status,
        "reason": record.history_change_reason or "",
    }


def map_settings() -> dict:
    """The map's tiles (ADMIN_MAP_TILES_URL; none when empty: the map shows the
    points on a blank background) and their attribution."""
    return {
        "tiles": settings.ADMIN_MAP_TILES_URL,
        "attribution": settings.ADMIN_MAP_ATTRIBUTION,
    }
