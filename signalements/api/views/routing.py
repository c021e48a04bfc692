"""Departments, areas, routing rules, service levels and reply templates (see
`signalements/routing.py`):

| resource                | reads                         | writes |
|-------------------------|-------------------------------|--------|
| `/api/departments/`     | everyone (agents: members too) | admins |
| `/api/areas/`           | everyone                      | admins |
| `/api/service-levels/`  | everyone                      | admins |
| `/api/routing-rules/`   | agents (and the dry run)      | admins |
| `/api/reply-templates/` | agents                        | admins |

Departments, areas and templates are named by `code`; rules and service levels by id.
Every change is kept in its history (django-simple-history), and the routing of the
reports follows at their next routed write (create, new category or place)."""

from django.db import transaction
from django.db.models import ProtectedError
from django.http import Http404
from django.utils.translation import gettext_lazy as _lazy
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from signalements import areas as area_shapes
from signalements import routing
from signalements.models import (
    Area,
    Department,
    ReplyTemplate,
    RoutingRule,
    ServiceLevel,
    Signalement,
)
from signalements.roles import agent_scope, is_agent
from signalements.tasks import enqueue_on_commit

from .. import schema
from ..errors import Conflict
from ..filters import AreaFilter, DepartmentFilter, ReplyTemplateFilter
from ..permissions import AgentsReadAdminsWrite, IsAdminOrReadOnly
from ..serializers.routing import (
    AreaSerializer,
    DepartmentSerializer,
    DryRunQuerySerializer,
    ReplyTemplateSerializer,
    RoutingDryRunSerializer,
    RoutingRuleSerializer,
    ServiceLevelSerializer,
    StaffDepartmentSerializer,
)
from .base import MethodFirst

CODE = r"[-a-zA-Z0-9_]+"


class Protected:
    """A delete refused while other rows refer to the object (a 409, not a 500)."""

    in_use_message = ""

    def perform_destroy(self, instance):
        try:
            with transaction.atomic():
                instance.delete()
        except ProtectedError:
            raise Conflict(str(self.in_use_message), code="in_use") from None


@schema.departments
class DepartmentViewSet(Protected, MethodFirst, viewsets.ModelViewSet):
    """The teams that handle reports."""

    in_use_message = _lazy(
        "Routing rules send reports to this department: change them, or "
        "deactivate the department (is_active=false) instead."
    )
    queryset = Department.objects.prefetch_related("members").order_by("code")
    permission_classes = [IsAdminOrReadOnly]
    filterset_class = DepartmentFilter
    lookup_field = "code"
    lookup_value_regex = CODE

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False) or is_agent(self.request.user):
            return StaffDepartmentSerializer
        return DepartmentSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset if is_agent(self.request.user) else queryset.filter(is_active=True)


@schema.areas
class AreaViewSet(MethodFirst, viewsets.ModelViewSet):
    """Districts, neighbourhoods…: named polygons that reports lie in."""

    queryset = Area.objects.order_by("kind", "code")
    serializer_class = AreaSerializer
    permission_classes = [IsAdminOrReadOnly]
    filterset_class = AreaFilter
    lookup_field = "code"
    lookup_value_regex = CODE

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset if is_agent(self.request.user) else queryset.filter(is_active=True)

    # A new or reshaped area (or one switched on or off) holds other reports: theirs are
    # recomputed in the background once the change is committed, as from the admin.
    def perform_create(self, serializer):
        area = serializer.save()
        enqueue_on_commit(area_shapes.reassign_later, [area.pk])

    def perform_update(self, serializer):
        before = (serializer.instance.geometry, serializer.instance.is_active)
        area = serializer.save()
        if (area.geometry, area.is_active) != before:
            enqueue_on_commit(area_shapes.reassign_later, [area.pk])


@schema.service_levels
class ServiceLevelViewSet(MethodFirst, viewsets.ModelViewSet):
    """How long each category's reports may take."""

    queryset = ServiceLevel.objects.select_related("category").order_by(
        "category__code", "priority", "id"
    )
    serializer_class = ServiceLevelSerializer
    permission_classes = [IsAdminOrReadOnly]


@schema.routing_rules
class RoutingRuleViewSet(MethodFirst, viewsets.ModelViewSet):
    """Ordered rules: the first that matches a report chooses its department."""

    queryset = RoutingRule.objects.select_related("department").prefetch_related(
        "categories", "areas"
    )
    serializer_class = RoutingRuleSerializer
    permission_classes = [AgentsReadAdminsWrite]

    @action(detail=False, methods=["get"], url_path="dry-run", pagination_class=None)
    def dry_run(self, request):
        """Where routing would send a report now (`?signalement=<id>`), rule by rule."""
        query = DryRunQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        reports = Signalement.objects.select_related("category", "department")
        scope = agent_scope(request.user)
        if scope is not None:
            reports = reports.filter(scope)
        signalement = reports.filter(pk=query.validated_data["signalement"]).first()
        if signalement is None:
            raise Http404
        result = routing.explain(signalement)
        match = result.match
        data = {
            "signalement": signalement.pk,
            "areas": sorted(area.code for area in result.areas),
            "department": match.department.code if match.department else None,
            "priority": match.priority,
            "rule": match.rule.pk if match.rule else None,
            "reason": match.reason,
            "keep_routing": signalement.keep_routing,
            "current_department": signalement.department.code if signalement.department else None,
            "rules": result.trials,
        }
        return Response(RoutingDryRunSerializer(data).data)


@schema.reply_templates
class ReplyTemplateViewSet(MethodFirst, viewsets.ModelViewSet):
    """Saved texts for the note of a status change (`?template=` on the transition)."""

    queryset = ReplyTemplate.objects.select_related("category").order_by("code")
    serializer_class = ReplyTemplateSerializer
    permission_classes = [AgentsReadAdminsWrite]
    filterset_class = ReplyTemplateFilter
    lookup_field = "code"
    lookup_value_regex = CODE
