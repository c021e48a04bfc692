"""A report's photos: `/api/signalements/{id}/attachments/` (list, add) and
`/api/signalements/{id}/attachments/{attachment_id}/` (remove)."""

from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from signalements import attachments
from signalements.idempotency import idempotent
from signalements.models import Attachment

from ..permissions import AttachmentPermission
from ..serializers import AttachmentSerializer, AttachmentUploadSerializer


class AttachmentActions:
    """Anyone sees the photos of a report they can see; agents add and remove them, and
    the report's reporter while it is `new` (see `AttachmentPermission`)."""

    @action(
        detail=True,
        methods=["get", "post"],
        pagination_class=None,
        filterset_class=None,
        parser_classes=[MultiPartParser],
        permission_classes=[AttachmentPermission],
    )
    @idempotent
    def attachments(self, request, pk=None):
        signalement = self.get_object()
        context = self.get_serializer_context()
        if request.method == "GET":
            return Response(
                AttachmentSerializer(signalement.photos, many=True, context=context).data
            )
        upload = AttachmentUploadSerializer(data=request.data)
        try:
            if "photos" in request.data:
                attachments.check_room(signalement, len(request.data.getlist("photos")))
            upload.is_valid(raise_exception=True)
            added = attachments.add(
                signalement=signalement,
                photos=upload.validated_data["photos"],
                by=request.user,
            )
        except attachments.TooManyPhotos as refused:
            raise serializers.ValidationError(
                {"photos": [str(refused)]}, code="too_many_photos"
            ) from None
        return Response(
            AttachmentSerializer(added, many=True, context=context).data,
            status=status.HTTP_201_CREATED,
        )

    @action(
        detail=True,
        methods=["delete"],
        url_path=r"attachments/(?P<attachment_id>[0-9]{1,18})",
        pagination_class=None,
        filterset_class=None,
        permission_classes=[AttachmentPermission],
    )
    def attachment(self, request, pk=None, attachment_id=None):
        signalement = self.get_object()
        try:
            photo = signalement.attachments.get(pk=attachment_id)
        except Attachment.DoesNotExist:
            raise exceptions.NotFound(_("No such photo on this report.")) from None
        attachments.remove(photo)
        return Response(status=status.HTTP_204_NO_CONTENT)
