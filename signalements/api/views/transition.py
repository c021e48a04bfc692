"""The workflow: `POST /api/signalements/{id}/transition/[?template=<code>]`."""

from django.db import transaction
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from signalements import reply_templates, services
from signalements.idempotency import idempotent

from ..errors import Conflict
from ..permissions import IsAgent
from ..serializers import TransitionSerializer

NOTE_MAX_LENGTH = TransitionSerializer().fields["note"].max_length


class TemplateParameter(serializers.Serializer):
    """`?template=<code>`, parsed like any other input (a code is a slug; empty: none)."""

    template = serializers.SlugField(max_length=64, required=False, allow_blank=True)


class TransitionActions:
    """Agents move a report through the workflow's transition table
    (`signalements.models.TRANSITIONS`), with an optional public note, which may start
    with a reply template's text (`?template=`)."""

    @action(detail=True, methods=["post"], permission_classes=[IsAgent])
    @idempotent
    def transition(self, request, pk=None):
        signalement = self.get_object()
        payload = TransitionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        to_status = payload.validated_data["status"]
        note = payload.validated_data.get("note", "")
        template_code = _template_code(request)
        if template_code:
            note = _note_with_template(template_code, signalement, to_status, note)
        with transaction.atomic():  # If-Match checked under the lock the move takes
            self.check_if_match(request)
            try:
                signalement = services.transition(
                    signalement=signalement, to_status=to_status, by=request.user, note=note
                )
            except services.TransitionNotAllowed as refused:
                raise Conflict(str(refused), code="transition_not_allowed") from None
            response = Response(self.get_serializer(signalement).data)
            self.add_etag(request, response)
        return response


def _template_code(request) -> str:
    parameter = TemplateParameter(data=request.query_params)
    parameter.is_valid(raise_exception=True)
    return parameter.validated_data.get("template", "")


def _note_with_template(code: str, signalement, to_status: str, note: str) -> str:
    """The template's text filled for the report, then the body's `note` on a new line;
    a 400 naming `template` when the template does not fit this report and move."""
    try:
        template = reply_templates.chosen(code, signalement, to_status)
    except reply_templates.TemplateNotAvailable as refused:
        if refused.template is None:
            raise serializers.ValidationError(
                {
                    "template": _("No active reply template has the code “%(code)s”.")
                    % {"code": code}
                },
                code="unknown_template",
            ) from None
        raise serializers.ValidationError(
            {
                "template": _("The reply template “%(code)s” is for another category or status.")
                % {"code": code}
            },
            code="template_not_applicable",
        ) from None
    combined = reply_templates.with_note(reply_templates.render(template, signalement), note)
    if len(combined) > NOTE_MAX_LENGTH:
        raise serializers.ValidationError(
            {
                "note": _("With the template's text, the note has more than %(max)d characters.")
                % {"max": NOTE_MAX_LENGTH}
            },
            code="max_length",
        )
    return combined
