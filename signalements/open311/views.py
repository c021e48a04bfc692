"""Open311 GeoReport v2 views. Each answers in the format of its URL's suffix and keeps
out of the OpenAPI schema (`schema = None`): the REST API's contract stays its own."""

from django.conf import settings
from django.core.validators import slug_re
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.http import QueryDict
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, parsers, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from signalements import events
from signalements.idempotency import idempotent
from signalements.languages import active_language
from signalements.models import (
    CLOSED_STATUSES,
    Category,
    Comment,
    ExtraField,
    Signalement,
    Status,
    with_photos,
)
from signalements.validation import SignalementWriteSerializer

from . import CHANGESET, SPECIFICATION, errors
from .authentication import ApiKeyAuthentication, ApiKeyThrottle, HasApiKey
from .renderers import FORMATS, Open311JSONRenderer, Open311XMLRenderer, SuffixNegotiation
from .serializers import (
    CLOSED,
    OPEN,
    CreatedServiceRequestSerializer,
    RequestsQuerySerializer,
    ServiceDefinitionSerializer,
    ServiceRequestSerializer,
    ServiceSerializer,
    open311_errors,
    parse_service_request_id,
    single_values,
    to_signalement_data,
)

OPEN_STATUSES = [status for status in Status.values if status not in CLOSED_STATUSES]


class Open311View(APIView):
    """The Open311 base: suffix formats, Open311 errors, public reads; only POST
    authenticates (with an API key) and is throttled per key."""

    schema = None
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = []
    parser_classes = [parsers.FormParser, parsers.MultiPartParser]
    renderer_classes = [Open311JSONRenderer, Open311XMLRenderer]
    content_negotiation_class = SuffixNegotiation
    metadata_class = None
    http_method_names = ["get", "head"]
    # The XML root element, and the element of each item when the body is a list.
    xml_root: str
    xml_item: str | None = None

    def get_exception_handler(self):
        return errors.exception_handler

    @property
    def default_response_headers(self):
        headers = super().default_response_headers
        headers.pop("Vary", None)  # the URL chooses the format, not `Accept`
        return headers

    def initial(self, request, *args, **kwargs):
        # A method the resource does not have is a 405 before any credential is asked.
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            self.format_kwarg = self.get_format_suffix(**kwargs)  # the error's format
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)
        self.check_jurisdiction(request)

    def check_jurisdiction(self, request) -> None:
        """A `jurisdiction_id` other than the configured one (`OPEN311_JURISDICTION_ID`)
        is a 404, as the spec says; none, or any when none is configured, is fine."""
        params = request.data if request.method == "POST" else request.query_params
        if not isinstance(params, QueryDict):
            params = QueryDict()
        given = single_values(params, ["jurisdiction_id"]).get("jurisdiction_id", "").strip()
        configured = settings.OPEN311_JURISDICTION_ID
        if configured and given and given != configured:
            raise exceptions.NotFound({"jurisdiction_id": [_("Unknown jurisdiction.")]})


class DiscoveryView(Open311View):
    """GET discovery.{json,xml}: where this API is and what it speaks."""

    xml_root = "discovery"

    def get(self, request, format=None):
        return Response(
            {
                "changeset": CHANGESET,
                "contact": settings.OPEN311_CONTACT or None,
                "key_service": settings.OPEN311_KEY_SERVICE or None,
                "endpoints": [
                    {
                        "specification": SPECIFICATION,
                        "url": request.build_absolute_uri(reverse("open311:root")),
                        "changeset": CHANGESET,
                        "type": "production",
                        "formats": list(FORMATS.values()),
                    }
                ],
            }
        )


def active_services():
    return Category.objects.filter(is_active=True).annotate(
        has_extra_fields=Exists(ExtraField.objects.filter(category=OuterRef("pk")))
    )


class ServiceListView(Open311View):
    """GET services.{json,xml}: the active categories."""

    xml_root, xml_item = "services", "service"

    def get(self, request, format=None):
        return Response(ServiceSerializer(active_services(), many=True).data)


class ServiceDefinitionView(Open311View):
    """GET services/{service_code}.{json,xml}: an active category's extra fields."""

    xml_root = "service_definition"

    def get(self, request, service_code, format=None):
        category = get_object_or_404(
            Category.objects.filter(is_active=True).prefetch_related("extra_fields"),
            code=service_code,
        )
        return Response(ServiceDefinitionSerializer(category).data)


def public_requests():
    """The reports anyone may read, with their latest public status note."""
    latest_note = (
        Comment.objects.filter(signalement=OuterRef("pk"), is_internal=False, status__isnull=False)
        .order_by("-created_at", "-id")
        .values("body")[:1]
    )
    return with_photos(
        Signalement.objects.filter(is_public=True)
        .select_related("category")
        .annotate(status_notes=Subquery(latest_note))
        .order_by("-created_at", "-id")
    )


class ServiceRequestListView(Open311View):
    """GET requests.{json,xml}: public service requests, newest first, filtered.
    POST requests.{json,xml}: create one (with an API key)."""

    xml_root, xml_item = "service_requests", "request"
    http_method_names = ["get", "head", "post"]
    permission_classes = [HasApiKey]
    throttle_classes = [ApiKeyThrottle]

    def get(self, request, format=None):
        query = RequestsQuerySerializer.from_query(request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        requests = public_requests()
        if "service_request_id" in params:
            requests = requests.filter(pk__in=params["service_request_id"])
        else:
            requests = requests.filter(
                created_at__gte=params["start_date"], created_at__lte=params["end_date"]
            )
            if "service_code" in params:
                requests = requests.filter(category__code__in=params["service_code"])
            statuses = set(params.get("status", []))
            if statuses == {OPEN}:
                requests = requests.filter(status__in=OPEN_STATUSES)
            elif statuses == {CLOSED}:
                requests = requests.filter(status__in=CLOSED_STATUSES)
        start = (params["page"] - 1) * params["page_size"]
        page = requests[start : start + params["page_size"]]
        return Response(
            ServiceRequestSerializer(page, many=True, context={"request": request}).data
        )

    @idempotent
    def post(self, request, format=None):
        form = request.data if isinstance(request.data, QueryDict) else QueryDict()
        # The category's fields tell how to read the `attribute[code]` strings.
        code = form.get("service_code", "").strip()
        category = None
        if slug_re.fullmatch(code):
            category = (
                Category.objects.filter(code=code, is_active=True)
                .prefetch_related("extra_fields")
                .first()
            )
        data = to_signalement_data(form, category)
        serializer = SignalementWriteSerializer(data=data, context={"request": request})
        if not serializer.is_valid():
            # The serializer names every problem at once, the answers' (extra) included.
            raise serializers.ValidationError(open311_errors(serializer.errors))
        with transaction.atomic():  # the report and its event, one commit
            signalement = serializer.save(
                reporter=None, api_key=request.auth, language=active_language()
            )
            events.emit(events.CREATED, signalement)
        return Response(CreatedServiceRequestSerializer([signalement], many=True).data)


class ServiceRequestView(Open311View):
    """GET requests/{service_request_id}.{json,xml}: one public request, in a list."""

    xml_root, xml_item = "service_requests", "request"

    def get(self, request, service_request_id, format=None):
        pk = parse_service_request_id(service_request_id)
        if pk is None:
            raise exceptions.NotFound()
        signalement = get_object_or_404(public_requests(), pk=pk)
        return Response(
            ServiceRequestSerializer([signalement], many=True, context={"request": request}).data
        )


# Any other URL under /open311/v2/ (`services.yaml`, `foo`): an Open311 404, whatever the
# method (no CSRF check: nothing is done).
unknown_url = csrf_exempt(errors.not_found)
