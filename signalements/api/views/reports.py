"""REST API views: thin viewsets; scoping in `get_queryset`, rules elsewhere."""

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.db.models import ProtectedError, Q
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from drf_standardized_errors.openapi_serializers import ClientErrorEnum
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from . import attachments, history, reporter_tokens, retention, services, stats
from .filters import CategoryFilter, SignalementFilter
from .models import Attachment, Category, Comment, Signalement, with_photos
from .permissions import (
    AttachmentPermission,
    CommentPermission,
    IsAdminOrReadOnly,
    IsAgent,
    Role,
    SignalementPermission,
    is_agent,
    role_of,
)
from .renderers import (
    FormatOverrideNegotiation,
    GeoJSONRenderer,
    SignalementFeatureCollectionSerializer,
)
from .serializers import (
    AttachmentSerializer,
    AttachmentUploadSerializer,
    CategorySerializer,
    CommentSerializer,
    CreatedSignalementSerializer,
    PublicSignalementSerializer,
    SignalementSerializer,
    SimilarSignalementSerializer,
    TransitionSerializer,
)
from .throttling import AnonymousCreateThrottle, LoginThrottle, UserWriteThrottle


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class ConflictErrorSerializer(serializers.Serializer):
    """The 409 error body, in the shape of every other error."""

    class ErrorSerializer(serializers.Serializer):
        code = serializers.CharField()
        detail = serializers.CharField()
        attr = serializers.CharField(allow_null=True)

    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = ErrorSerializer(many=True)


WRITE_ACTIONS = ["create", "update", "partial_update"]
# An integer parameter longer than 1000 characters is refused as `max_string_length`.
PAGINATION_ERROR_CODES = ["invalid", "min_value", "max_string_length"]


# Codes raised by model validation (`Signalement.clean()`, model field validators),
# which drf-standardized-errors cannot discover from the serializer fields.
@extend_validation_errors(["future_date"], field_name="date", actions=WRITE_ACTIONS)
@extend_validation_errors(["near_required"], field_name="radius", actions=["list", "stats"])
@extend_validation_errors(
    [
        "unknown_field",
        "required",
        "invalid",
        "invalid_choice",
        "max_length",
        "null_characters_not_allowed",
    ],
    field_name="extra.KEY",
    actions=WRITE_ACTIONS,
)
@extend_validation_errors(["incomplete_location"], field_name="latitude", actions=WRITE_ACTIONS)
@extend_validation_errors(["incomplete_location"], field_name="longitude", actions=WRITE_ACTIONS)
@extend_validation_errors(PAGINATION_ERROR_CODES, field_name="page", actions=["list"])
@extend_validation_errors(PAGINATION_ERROR_CODES, field_name="page_size", actions=["list"])
# Photos refused by `photos.process`, and one too many.
@extend_validation_errors(
    ["not_an_image", "corrupt", "file_too_large", "too_many_pixels", "empty"],
    field_name="photos.INDEX",
    actions=["attachments"],
    methods=["post"],
)
@extend_validation_errors(
    ["too_many_photos"], field_name="photos", actions=["attachments"], methods=["post"]
)
@extend_schema_view(
    list=extend_schema(
        summary="List reports: public ones, your own, or all for agents",
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=["json", "geojson"],
                description="`geojson`: the page as a GeoJSON FeatureCollection (RFC 7946), "
                "as with `Accept: application/geo+json`. Takes precedence over `Accept`.",
            )
        ],
        responses={
            (200, "application/json"): OpenApiResponse(
                SignalementSerializer,
                description="One page of reports. In GeoJSON (`?format=geojson` or "
                "`Accept: application/geo+json`): the same page as a FeatureCollection of "
                "Point features, coordinates `[longitude, latitude]`; a report without a "
                "location is a feature with a null geometry; `count`, `next` and "
                "`previous` as in JSON. Errors are always JSON (`application/json`).",
            ),
            (200, "application/geo+json"): SignalementFeatureCollectionSerializer,
        },
    ),
    create=extend_schema(
        summary="Create a report (open to anonymous clients)",
        responses={201: CreatedSignalementSerializer},
    ),
    retrieve=extend_schema(summary="Read a report"),
    update=extend_schema(
        summary="Replace a report's editable fields (agents; its reporter while new)"
    ),
    partial_update=extend_schema(
        summary="Change some of a report's fields (agents; its reporter while new)"
    ),
    destroy=extend_schema(summary="Delete a report (admins)"),
)
class SignalementViewSet(viewsets.ModelViewSet):
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
        # declares the GeoJSON response itself (`list` above) and leaves the renderer out,
        # so that errors are documented as what they are: always JSON.
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

    @extend_schema(
        operation_id="signalements_similar",
        summary="Possible duplicates of a report: open, same category, nearby, recent",
        responses=SimilarSignalementSerializer(many=True),
    )
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

    @extend_schema(
        methods=["GET"],
        operation_id="signalements_attachments_list",
        summary="A report's photos",
        responses=AttachmentSerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        operation_id="signalements_attachments_create",
        summary="Add photos to a report (agents; its reporter while it is new)",
        description="`multipart/form-data` with one or several files in `photos`. Only "
        "JPEG, PNG and WebP images are accepted, judged by their content; each is stored "
        "re-encoded without metadata (EXIF, GPS position), upright, with a thumbnail. "
        "Limits: `ATTACHMENTS_MAX_PER_REPORT` photos per report, `ATTACHMENT_MAX_BYTES` "
        "per file, `ATTACHMENT_MAX_PIXELS` per image. A refused file is a 400 whose "
        "`attr` is `photos.<index>` and whose detail starts with the file name; nothing "
        "is stored then. An anonymous reporter authenticates with the `X-Reporter-Token` "
        "header that the create returned.",
        request=AttachmentUploadSerializer,  # multipart/form-data: the action's parser
        responses={201: AttachmentSerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        pagination_class=None,
        filterset_class=None,
        parser_classes=[MultiPartParser],
        permission_classes=[AttachmentPermission],
    )
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

    @extend_schema(
        operation_id="signalements_attachments_destroy",
        summary="Remove a photo (agents; the report's reporter while it is new)",
        parameters=[OpenApiParameter("attachment_id", int, OpenApiParameter.PATH)],
        request=None,
        responses={204: None},
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
            raise exceptions.NotFound("No such photo on this report.") from None
        attachments.remove(photo)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="signalements_stats",
        summary="Statistics of the reports you can see, with the list's filters",
        description="Counts by status, by category and by month (created, resolved), and "
        "the median time to resolution, over the reports the list would return with the "
        "same filters: all of them for agents, public ones (and your own) for everyone "
        "else. Not paginated; `ordering` does not apply.",
        filters=True,
        responses=stats.SignalementStatsSerializer,
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="stats",
        pagination_class=None,
        filterset_class=stats.SignalementStatsFilter,
    )
    def stats(self, request):
        queryset = self.filter_queryset(self.get_queryset())  # a bad filter is a 400 here
        key = stats.public_cache_key(request)
        figures = cache.get(key) if key else None
        if figures is None:
            figures = stats.SignalementStatsSerializer(stats.compute(queryset)).data
            if key:
                cache.set(key, figures, settings.SIGNALEMENT_STATS_CACHE_SECONDS)
        return Response(figures)

    @extend_schema(
        operation_id="signalements_transition",
        summary="Move a report through the workflow (agents)",
        request=TransitionSerializer,
        responses={
            200: SignalementSerializer,
            409: OpenApiResponse(
                ConflictErrorSerializer,
                description="The workflow does not allow this move; the detail names "
                "the allowed next statuses.",
            ),
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAgent])
    def transition(self, request, pk=None):
        signalement = self.get_object()
        payload = TransitionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            signalement = services.transition(
                signalement=signalement,
                to_status=payload.validated_data["status"],
                by=request.user,
                note=payload.validated_data.get("note", ""),
            )
        except services.TransitionNotAllowed as refused:
            raise Conflict(str(refused), code="transition_not_allowed") from None
        return Response(self.get_serializer(signalement).data)

    @extend_schema(
        operation_id="signalements_history",
        summary="A report's history: who changed what, when",
        description="Agents see every change; everyone else sees the status changes "
        "and their public notes.",
        responses=history.HistoryEntrySerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def history(self, request, pk=None):
        signalement = self.get_object()
        entries = history.entries_for(signalement, full=is_agent(request.user))
        return Response(history.HistoryEntrySerializer(entries, many=True).data)

    @extend_schema(
        methods=["GET"],
        operation_id="signalements_comments_list",
        summary="A report's public updates (and, for agents, internal notes)",
        responses=CommentSerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        operation_id="signalements_comments_create",
        summary="Add a public update (reporter on their report, agents) or an internal "
        "note (agents)",
        request=CommentSerializer,
        responses={201: CommentSerializer},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        pagination_class=None,
        filterset_class=None,
        serializer_class=CommentSerializer,
        permission_classes=[CommentPermission],
    )
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
                {"is_internal": ["Only agents may write internal notes."]}, code="agents_only"
            )
        comment = services.add_comment(
            signalement=signalement,
            author=request.user,
            body=serializer.validated_data["body"],
            is_internal=serializer.validated_data.get("is_internal", False),
            as_agent=agent,
        )
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


@extend_validation_errors(
    ["unique", "null", "not_a_list"], field_name="extra_fields", actions=WRITE_ACTIONS
)
@extend_validation_errors(
    ["invalid_choices", "null", "not_a_list"],
    field_name="extra_fields.INDEX.choices",
    actions=WRITE_ACTIONS,
)
@extend_validation_errors(
    ["null", "invalid"], field_name="extra_fields.INDEX.choices.INDEX", actions=WRITE_ACTIONS
)
@extend_validation_errors(
    ["null", "invalid"], field_name="extra_fields.INDEX", actions=WRITE_ACTIONS
)
@extend_validation_errors(PAGINATION_ERROR_CODES, field_name="page", actions=["list"])
@extend_validation_errors(PAGINATION_ERROR_CODES, field_name="page_size", actions=["list"])
@extend_schema_view(
    list=extend_schema(summary="List categories (active ones, or all for agents)"),
    create=extend_schema(summary="Create a category (admins)"),
    retrieve=extend_schema(summary="Read a category"),
    update=extend_schema(summary="Replace a category (admins)"),
    partial_update=extend_schema(summary="Change some of a category's fields (admins)"),
    destroy=extend_schema(
        summary="Delete a category that no report uses (admins)",
        responses={
            204: None,
            409: OpenApiResponse(
                ConflictErrorSerializer, description="Reports still use this category."
            ),
        },
    ),
)
class CategoryViewSet(viewsets.ModelViewSet):
    """Kinds of problems; a report names its category by `code`."""

    queryset = Category.objects.prefetch_related("extra_fields")
    serializer_class = CategorySerializer
    filterset_class = CategoryFilter
    permission_classes = [IsAdminOrReadOnly]
    lookup_field = "code"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    def get_queryset(self):
        queryset = super().get_queryset()
        if not is_agent(self.request.user):
            queryset = queryset.filter(is_active=True)
        return queryset

    def perform_destroy(self, instance):
        try:
            instance.delete()
        except ProtectedError:
            raise Conflict(
                "Reports use this category: deactivate it (is_active=false) instead.",
                code="category_in_use",
            ) from None


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )

    def validate(self, attrs):
        user = authenticate(
            request=self.context.get("request"),
            username=attrs["username"],
            password=attrs["password"],
        )
        if user is None or not user.is_active:
            raise serializers.ValidationError(
                "Unable to log in with the credentials provided.", code="invalid_credentials"
            )
        return {"user": user}


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices)


@extend_validation_errors(["invalid_credentials"], field_name="non_field_errors", methods=["post"])
class AuthTokenView(APIView):
    """API tokens: exchange a username and password for a token; revoke it."""

    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [IsAuthenticated()]
        return super().get_permissions()

    def get_throttles(self):
        if self.request.method == "DELETE":
            return []
        return super().get_throttles()

    @extend_schema(
        operation_id="auth_token_create",
        summary="Get an API token for a username and password",
        request=TokenRequestSerializer,
        responses={200: TokenSerializer},
    )
    def post(self, request):
        payload = TokenRequestSerializer(data=request.data, context={"request": request._request})
        payload.is_valid(raise_exception=True)
        token, _ = Token.objects.get_or_create(user=payload.validated_data["user"])
        return Response({"token": token.key})

    @extend_schema(
        operation_id="auth_token_destroy",
        summary="Revoke your API token",
        request=None,
        responses={204: None},
    )
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    """Who the credentials belong to, and their role."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="me_retrieve", summary="Who am I?", responses=MeSerializer)
    def get(self, request):
        user = request.user
        return Response(
            MeSerializer(
                {
                    "id": user.pk,
                    "username": user.get_username(),
                    "email": user.email,
                    "role": role_of(user),
                }
            ).data
        )


class ErasedContactDataSerializer(serializers.Serializer):
    erased = serializers.IntegerField(
        min_value=0,
        help_text="How many of your reports had contact data, now erased (0 when none had "
        "any left).",
    )


class EraseContactDataView(APIView):
    """The caller's right to erasure of the contact data given with their reports."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="me_erase_contact_data_create",
        summary="Erase the contact data of your reports",
        description="Blanks `contact_name`, `contact_email` and `contact_phone` on every "
        "report you filed, also in their history, and records the erasure in each report's "
        "history. You stay their reporter: you still see and follow them (status emails go "
        "to your account's email). Calling it again erases nothing more (`erased`: 0).",
        request=None,
        responses=ErasedContactDataSerializer,
    )
    def post(self, request):
        erased = retention.erase_contact_data(user=request.user)
        return Response(ErasedContactDataSerializer({"erased": erased}).data)
