"""Reports: `/api/signalements/`. Anyone creates reports and reads public ones; reporters
also read and (while `new`) edit their own; agents read and triage everything; admins
delete. The report's sub-resources (photos, comments, history, workflow, statistics) are
actions of the same viewset, each in its own module; what the endpoints promise is in
`api/schema.py`."""

from django.db.models import Q
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from signalements import reporter_tokens, services
from signalements.models import Signalement, with_photos
from signalements.roles import is_agent

from .. import schema
from ..filters import SignalementFilter
from ..permissions import SignalementPermission
from ..renderers import FormatOverrideNegotiation, GeoJSONRenderer
from ..serializers import (
    PublicSignalementSerializer,
    SignalementSerializer,
    SimilarSignalementSerializer,
)
from ..throttling import AnonymousCreateThrottle, UserWriteThrottle
from .attachments import AttachmentActions
from .comments import CommentActions
from .history import HistoryActions
from .stats import StatsActions
from .transition import TransitionActions


@schema.signalements
class SignalementViewSet(
    AttachmentActions,
    CommentActions,
    HistoryActions,
    StatsActions,
    TransitionActions,
    viewsets.ModelViewSet,
):
    """Incident reports. Anyone creates reports and reads public ones; reporters also
    read and (while `new`) edit their own; agents read and triage everything; admins
    delete."""

    queryset = with_photos(Signalement.objects.select_related("category"))
    serializer_class = SignalementSerializer
    filterset_class = SignalementFilter
    permission_classes = [SignalementPermission]
    throttle_classes = [AnonymousCreateThrottle, UserWriteThrottle]
    content_negotiation_class = FormatOverrideNegotiation

    def get_renderers(self):
        # The list also speaks GeoJSON, for maps; other actions JSON only. (No action: a
        # method the URL does not allow, a 405 whatever the format, not a 404.) The schema
        # declares the GeoJSON response itself (`list` in api/schema.py) and leaves the
        # renderer out, so that errors are documented as what they are: always JSON.
        renderers = super().get_renderers()
        fake_view = getattr(self, "swagger_fake_view", False)
        if getattr(self, "action", None) in ("list", None) and not fake_view:
            renderers.append(GeoJSONRenderer())
        return renderers

    def get_queryset(self):
        queryset = super().get_queryset()
        user = self.request.user
        if is_agent(user):
            return queryset.select_related("assigned_to", "duplicate_of")
        # Others see no assignee, and a duplicate's original only to check that they may
        # see it: fetched for the reports that have one (most have none: no query).
        queryset = queryset.prefetch_related("duplicate_of")
        visible = Q(is_public=True)
        if user.is_authenticated:
            visible |= Q(reporter=user)
        if (token_holder_of := reporter_tokens.signalement_id(self.request)) is not None:
            visible |= Q(pk=token_holder_of)
        return queryset.filter(visible)

    def filter_queryset(self, queryset):
        # The list's filters choose among reports; a report named by its id is not
        # filtered (DRF would apply them in `get_object` too, building the filter form on
        # every read of one report and making `?status=…` a 404).
        if getattr(self, "detail", False):
            return queryset
        return super().filter_queryset(queryset)

    def get_serializer_class(self):
        # The schema documents the full representation; at run time only agents get it.
        if getattr(self, "swagger_fake_view", False) or is_agent(self.request.user):
            return SignalementSerializer
        return PublicSignalementSerializer

    def perform_create(self, serializer):
        user = self.request.user
        if user.is_authenticated:
            self._created = serializer.save(reporter=user)
            self._reporter_token = None
        else:
            # An anonymous reporter's proof of authorship, returned once (create below).
            self._reporter_token, stored = reporter_tokens.issue()
            self._created = serializer.save(reporter=None, **stored)

    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        signalement = self._created
        response.data["possible_duplicates"] = self._similar_to(signalement)
        response.data["reporter_token"] = self._reporter_token
        response.data["reporter_token_expires_at"] = (
            serializers.DateTimeField().to_representation(signalement.reporter_token_expires_at)
            if self._reporter_token
            else None
        )
        if self._reporter_token:
            response["Cache-Control"] = "no-store"  # the secret must not sit in a cache
        return response

    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def similar(self, request, pk=None):
        return Response(self._similar_to(self.get_object()))

    def _similar_to(self, signalement: Signalement) -> list:
        candidates = services.possible_duplicates(
            signalement=signalement, among=self.get_queryset()
        )
        return SimilarSignalementSerializer(
            candidates, many=True, context={"origin": signalement}
        ).data
