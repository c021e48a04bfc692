"""The workflow: `POST /api/signalements/{id}/transition/`."""

from django.db import transaction
from rest_framework.decorators import action
from rest_framework.response import Response

from signalements import services
from signalements.idempotency import idempotent

from ..errors import Conflict
from ..permissions import IsAgent
from ..serializers import TransitionSerializer


class TransitionActions:
    """Agents move a report through the workflow's transition table
    (`signalements.models.TRANSITIONS`), with an optional public note."""

    @action(detail=True, methods=["post"], permission_classes=[IsAgent])
    @idempotent
    def transition(self, request, pk=None):
        signalement = self.get_object()
        payload = TransitionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        with transaction.atomic():  # If-Match checked under the lock the move takes
            self.check_if_match(request)
            try:
                signalement = services.transition(
                    signalement=signalement,
                    to_status=payload.validated_data["status"],
                    by=request.user,
                    note=payload.validated_data.get("note", ""),
                )
            except services.TransitionNotAllowed as refused:
                raise Conflict(str(refused), code="transition_not_allowed") from None
            response = Response(self.get_serializer(signalement).data)
            self.add_etag(request, response)
        return response
