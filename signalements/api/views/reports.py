"""Reports: `/api/signalements/`. Anyone creates reports and reads public ones; reporters
also read and (while `new`) edit their own; agents read and triage everything; admins
delete. The report's sub-resources (photos, comments, history, workflow, statistics,
following it) are actions of the same viewset, each in its own module; what the
endpoints promise is in `api/schema.py`."""

import re
from functools import partial

from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpResponse
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from signalements import events, replicas, reporter_tokens, rollup, routing, services
from signalements.idempotency import idempotent
from signalements.languages import active_language
from signalements.models import PREFETCHED_PHOTOS, Signalement, with_photos
from signalements.roles import agent_scope, is_agent
from signalements.validation import SignalementWriteSerializer

from .. import preconditions, reading, schema
from ..filters import KeptFilterBackend, SignalementFilter
from ..pagination import QuerysetRows, SignalementPagination
from ..permissions import SignalementPermission
from ..renderers import FormatOverrideNegotiation, GeoJSONRenderer
from ..response_cache import COUNTS_KEY
from ..serializers import (
    PublicSignalementSerializer,
    SignalementSerializer,
    SimilarSignalementSerializer,
)
from ..throttling import (
    AnonymousCreateThrottle,
    AnonymousExpensiveReadThrottle,
    UserWriteThrottle,
)
from .attachments import AttachmentActions
from .base import MethodFirst
from .comments import CommentActions
from .feedback import FeedbackActions
from .history import HistoryActions
from .stats import StatsActions, rollup_filters
from .subscriptions import FollowActions
from .transition import TransitionActions

# An id that the lean read path looks up itself (others: DRF's 404).
LEAN_PK = re.compile(r"[0-9]{1,18}")


@schema.signalements
class SignalementViewSet(
    MethodFirst,
    AttachmentActions,
    CommentActions,
    FeedbackActions,
    FollowActions,
    HistoryActions,
    StatsActions,
    TransitionActions,
    viewsets.ModelViewSet,
):
    """Incident reports. Anyone creates reports and reads public ones; reporters also
    read and (while `new`) edit their own; agents read and triage everything; admins
    delete."""

    queryset = with_photos(
        Signalement.objects.select_related("category", "department").prefetch_related("areas")
    )
    serializer_class = SignalementSerializer
    filterset_class = SignalementFilter
    permission_classes = [SignalementPermission]
    throttle_classes = [AnonymousCreateThrottle, AnonymousExpensiveReadThrottle, UserWriteThrottle]
    content_negotiation_class = FormatOverrideNegotiation
    # The writes that take an `If-Match` (api/preconditions.py).
    if_match_actions = ("update", "partial_update", "transition")

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
            scope = agent_scope(user)
            if scope is not None:
                queryset = queryset.filter(scope)
            return queryset.select_related("assigned_to", "duplicate_of", "department")
        # Others see no assignee, and a duplicate's original only to check that they may
        # see it: fetched for the reports that have one (most have none: no query).
        queryset = queryset.prefetch_related("duplicate_of")
        # `IN (true)` rather than `is_public = true`, which Django writes as the bare
        # column: SQLite uses no index for a bare column (its page 500 of public reports:
        # 52 ms through the newest-first index and the table, 0.2 ms through the index of
        # visibility and date, at 300,000 reports).
        visible = Q(is_public__in=[True])
        if user.is_authenticated:
            visible |= Q(reporter=user)
        if (token_holder_of := reporter_tokens.signalement_id(self.request)) is not None:
            visible |= Q(pk=token_holder_of)
        return queryset.filter(visible)

    filter_backends = [KeptFilterBackend]
    # The list's filter set, once validated (None: no filter given): what the count
    # policy asks the rollup for.
    filterset = None

    def filter_queryset(self, queryset):
        # The list's filters choose among reports; a report named by its id is not
        # filtered (DRF would apply them in `get_object` too, building the filter form on
        # every read of one report and making `?status=…` a 404). Without any of the
        # filters' parameters, the filter form (which would change nothing) is not built.
        if getattr(self, "detail", False) or not self._filtered():
            return queryset
        return super().filter_queryset(queryset)

    def _filtered(self) -> bool:
        filterset_class = getattr(self, "filterset_class", None)
        if filterset_class is None:
            return False
        parameters = self.request.query_params
        return any(name in parameters for name in filterset_class.base_filters)

    def get_serializer_class(self):
        # The schema documents the full representation; at run time only agents get it.
        if getattr(self, "swagger_fake_view", False) or is_agent(self.request.user):
            return SignalementSerializer
        return PublicSignalementSerializer

    # Reads, and the create's answer, take the lean path (`api/reading.py`): the same
    # bytes as DRF's, a few times faster. The browsable API and `; indent=` take DRF's
    # (as do the tests that compare both, with `lean_path` off).
    lean_path = True

    pagination_class = SignalementPagination

    # A page of reports, by page number or by cursor (`api/pagination.py`), in the lean
    # path's bytes or DRF's (the browsable API, `; indent=`). (No docstring: the schema's
    # description of the operation is the viewset's.)
    def list(self, request, *args, **kwargs):
        renderer = self._lean_renderer(request)
        scope = self.get_queryset()
        queryset = self.filter_queryset(scope)
        paginator = self.paginator
        if renderer is not None:
            queryset = queryset.prefetch_related(None).select_related(None)
        if paginator.uses_cursor(request):
            ordered = paginator.keyset(queryset, request)
            lean = renderer is not None and reading.NewestVisibleRows.applies_to(ordered)
            rows = reading.NewestVisibleRows(ordered) if lean else ordered
            window = rows[: paginator.page_size + 1]
            reports = self._page_reports(window, request, scope, renderer, lean=lean)
            data = paginator.get_cursor_response_data(paginator.cursor_page(list(reports)))
            if renderer is None:
                return Response(data)
            return self._lean_response(renderer, data, reports)
        rows = self._rows(queryset, request, renderer)
        page = paginator.paginate_queryset(rows, request, view=self)
        lean = isinstance(rows, reading.NewestVisibleRows)
        reports = self._page_reports(page, request, scope, renderer, lean=lean)
        if renderer is None:
            response = paginator.get_paginated_response(reports)
        else:
            data = {
                "count": paginator.page.paginator.count,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "results": reports,
            }
            response = self._lean_response(renderer, data, reports)
        response["X-Count"] = "exact" if rows.count_is_exact else "estimate"
        return response

    def _rows(self, queryset, request, renderer):
        """What the page numbers paginate, under the count policy: the lean SQL's rows
        when it applies, else the queryset's (ids for the lean path, reports for DRF)."""
        policy = {
            "exact": self.paginator.exact_count_requested(request),
            "counters": self._counters(request, queryset.db),
        }
        if renderer is None:
            return QuerysetRows(queryset, **policy)
        if reading.NewestVisibleRows.applies_to(queryset):
            # Own-table filters: the page's rows in one query, no ORM compilation.
            counts = request.META.get(COUNTS_KEY)  # the response cache's, if it saw it
            return reading.NewestVisibleRows(queryset, counts=counts, **policy)
        return QuerysetRows(queryset.values_list("pk", flat=True), **policy)

    def _counters(self, request, using: str):
        """The rollup's exact count of the caller's reports with these filters (status,
        category, department), or None when it cannot count them (a search, a place,
        dates, a reporter's own hidden reports…: see `views/stats.rollup_filters`)."""
        filters = rollup_filters(request, self.filterset, ignored={"ordering"})
        if filters is None or filters.dated:
            return None
        return partial(
            rollup.count,
            using,
            public_only=filters.public_only,
            statuses=filters.statuses,
            category_ids=filters.category_ids,
            department_ids=filters.department_ids,
        )

    def _page_reports(self, page, request, scope, renderer, *, lean: bool):
        """A page's reports as the API shows them: serialized by DRF (no lean
        renderer), represented from the lean SQL's rows (`lean`), or read by id."""
        if renderer is None:
            return self.get_serializer(list(page), many=True).data
        agent = is_agent(request.user)
        if lean:
            return reading.represent(page, request, agent=agent, using=scope.db)
        if hasattr(page, "values_list"):  # a cursor's window of reports
            page = page.values_list("pk", flat=True)
        return reading.read_reports(list(page), request, scope=scope, agent=agent)

    def retrieve(self, request, *args, **kwargs):
        renderer = self._lean_renderer(request)
        pk = kwargs.get(self.lookup_url_kwarg or self.lookup_field, "")
        if renderer is None or not LEAN_PK.fullmatch(str(pk)):
            instance = self.get_object()
            response = Response(self.get_serializer(instance).data)
            response["ETag"] = preconditions.etag(request, response.data, instance.version)
            return response
        reports = reading.read_reports(
            [int(pk)], request, scope=self.get_queryset(), agent=is_agent(request.user)
        )
        if not reports:
            raise Http404
        report = reports[0]
        response = self._lean_response(renderer, report, reports)
        response["ETag"] = preconditions.etag(request, report, reports.versions[report["id"]])
        return response

    def update(self, request, *args, **kwargs):
        """PUT and PATCH, with `If-Match` checked in their transaction (see
        `api/preconditions.py`); the answer carries the report's new ETag."""
        with transaction.atomic():
            self.check_if_match(request)
            response = super().update(request, *args, **kwargs)
            self.add_etag(request, response)
        return response

    def check_if_match(self, request) -> None:
        """`If-Match` against the ETag of the report of this URL, under its row lock."""
        pk = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, "")
        if not LEAN_PK.fullmatch(str(pk)):
            return  # not a report's id: the write answers its 404
        preconditions.check(request, int(pk), lambda: self.get_serializer(self.get_object()).data)

    @staticmethod
    def add_etag(request, response) -> None:
        data = getattr(response, "data", None)
        if response.status_code == 200 and isinstance(data, dict) and "id" in data:
            version = preconditions.version_of(data["id"])
            if version is not None:
                response["ETag"] = preconditions.etag(request, data, version)

    def _lean_renderer(self, request):
        renderer = getattr(request, "accepted_renderer", None)
        if not self.lean_path:
            return None
        if type(renderer) not in (JSONRenderer, GeoJSONRenderer):
            return None
        if request.accepted_media_type != renderer.media_type:  # e.g. `; indent=2`
            return None
        return renderer

    def _lean_response(self, renderer, data, reports, status: int = 200):
        content = reading.render(data, reports, geojson=isinstance(renderer, GeoJSONRenderer))
        if content is None:
            return Response(data, status=status)
        return HttpResponse(content, content_type=renderer.media_type, status=status)

    def perform_create(self, serializer):
        user = self.request.user
        # The reporter's emails are written in the language of the request.
        language = active_language()
        if user.is_authenticated:
            self._created = serializer.save(reporter=user, language=language)
            self._reporter_token = None
        else:
            # An anonymous reporter's proof of authorship, returned once (create below).
            self._reporter_token, stored = reporter_tokens.issue(self.request)
            # Its next reads with it find the report, on a replica too (replicas.py).
            replicas.handed_out("X-Reporter-Token", self._reporter_token)
            self._created = serializer.save(reporter=None, language=language, **stored)
        events.emit(events.CREATED, self._created, actor=user)

    def perform_update(self, serializer):
        updated = serializer.save()
        # The fields the request set (validation may add others, e.g. `extra` cleaned).
        fields = sorted(
            name for name in serializer.validated_data if name in serializer.initial_data
        )
        events.emit(events.UPDATED, updated, actor=self.request.user, fields=fields)

    @idempotent
    def create(self, request, *args, **kwargs):
        agent = is_agent(request.user)
        if agent:
            serializer = self.get_serializer(data=request.data)
        else:  # the public's fields, checked as PublicSignalementSerializer checks them
            self._check_agents_fields(request.data)
            serializer = SignalementWriteSerializer(
                data=request.data, context=self.get_serializer_context()
            )
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():  # the report and its history row, one commit
            self.perform_create(serializer)
        signalement = self._created
        signalement.__dict__[PREFETCHED_PHOTOS] = []  # a new report has none
        renderer = self._lean_renderer(request)
        if renderer is None:
            reports = None
            data = self.get_serializer(signalement).data
        else:
            reports = reading.read_reports(
                [signalement.pk],
                request,
                scope=Signalement.objects.all(),
                agent=agent,
                photos=False,
                areas={signalement.pk: routing.area_codes_of(signalement)},
            )
            data = reports[0]
        data["possible_duplicates"] = self._similar_to(signalement)
        data["reporter_token"] = self._reporter_token
        data["reporter_token_expires_at"] = (
            serializers.DateTimeField().to_representation(signalement.reporter_token_expires_at)
            if self._reporter_token
            else None
        )
        if reports is None:
            response = Response(data, status=status.HTTP_201_CREATED)
        else:
            if not reading.writes_alike(data["possible_duplicates"]):
                reports.exact_with_orjson = False
            response = self._lean_response(renderer, data, reports, status=201)
        if self._reporter_token:
            response["Cache-Control"] = "no-store"  # the secret must not sit in a cache
        return response

    # Agents' fields that the public may send but not set (one request body for both, as
    # the schema documents it): ignored, once valid.
    AGENTS_FIELDS = ("is_public", "assigned_to", "duplicate_of")

    def _check_agents_fields(self, data) -> None:
        """A body the schema calls invalid (`is_public: "abc"`) is a 400 for anyone, even
        where the values would be ignored (checked as agents' values are)."""
        if not isinstance(data, dict) or not any(name in data for name in self.AGENTS_FIELDS):
            return
        fields = SignalementSerializer(context=self.get_serializer_context()).fields
        errors = {}
        for name in self.AGENTS_FIELDS:
            if name in data:
                try:
                    fields[name].run_validation(data[name])
                except serializers.ValidationError as invalid:
                    errors[name] = invalid.detail
        if errors:
            raise serializers.ValidationError(errors)

    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def similar(self, request, pk=None):
        return Response(self._similar_to(self.get_object()))

    def _similar_to(self, signalement: Signalement) -> list:
        if not services.may_have_duplicates(signalement):
            return []
        candidates = services.possible_duplicates(
            signalement=signalement, among=self.get_queryset()
        )
        return SimilarSignalementSerializer(
            candidates, many=True, context={"origin": signalement}
        ).data
