"""A report's comments: `/api/signalements/{id}/comments/`."""

from django.utils.translation import gettext as _
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from signalements import services
from signalements.idempotency import idempotent
from signalements.models import Comment
from signalements.roles import is_agent

from ..permissions import CommentPermission
from ..serializers import CommentSerializer


class CommentActions:
    """Public updates, which anyone who sees the report reads, and internal notes, which
    agents alone read and write. The reporter and agents write updates."""

    @action(
        detail=True,
        methods=["get", "post"],
        pagination_class=None,
        filterset_class=None,
        serializer_class=CommentSerializer,
        permission_classes=[CommentPermission],
    )
    @idempotent
    def comments(self, request, pk=None):
        signalement = self.get_object()
        agent = is_agent(request.user)
        if request.method == "GET":
            comments = Comment.objects.filter(signalement=signalement)
            if not agent:
                comments = comments.filter(is_internal=False)
            return Response(CommentSerializer(comments, many=True).data)

        serializer = CommentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if serializer.validated_data.get("is_internal") and not agent:
            raise serializers.ValidationError(
                {"is_internal": [_("Only agents may write internal notes.")]}, code="agents_only"
            )
        comment = services.add_comment(
            signalement=signalement,
            author=request.user,
            body=serializer.validated_data["body"],
            is_internal=serializer.validated_data.get("is_internal", False),
            as_agent=agent,
        )
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)
