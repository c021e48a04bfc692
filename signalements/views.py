"""REST API views: thin viewsets; scoping in `get_queryset`, rules elsewhere."""

from django.db.models import ProtectedError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from drf_standardized_errors.openapi_serializers import ClientErrorEnum
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, serializers, status, viewsets

from .filters import CategoryFilter, SignalementFilter
from .models import Category, Signalement
from .permissions import IsStaffOrReadOnly, SignalementPermission, is_staff
from .serializers import CategorySerializer, PublicSignalementSerializer, SignalementSerializer
from .throttling import AnonymousCreateThrottle


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
@extend_validation_errors(["incomplete_location"], field_name="latitude", actions=WRITE_ACTIONS)
@extend_validation_errors(["incomplete_location"], field_name="longitude", actions=WRITE_ACTIONS)
@extend_validation_errors(PAGINATION_ERROR_CODES, field_name="page", actions=["list"])
@extend_validation_errors(PAGINATION_ERROR_CODES, field_name="page_size", actions=["list"])
@extend_schema_view(
    list=extend_schema(summary="List reports (public ones, or all for staff)"),
    create=extend_schema(summary="Create a report (open to anonymous clients)"),
    retrieve=extend_schema(summary="Read a report"),
    update=extend_schema(summary="Replace a report's editable fields (staff)"),
    partial_update=extend_schema(summary="Change some of a report's fields (staff)"),
    destroy=extend_schema(summary="Delete a report (staff)"),
)
class SignalementViewSet(viewsets.ModelViewSet):
    """Incident reports. Anonymous clients create reports and read public ones; staff
    read everything, including private contact fields, and edit or delete."""

    queryset = Signalement.objects.select_related("category")
    serializer_class = SignalementSerializer
    filterset_class = SignalementFilter
    permission_classes = [SignalementPermission]
    throttle_classes = [AnonymousCreateThrottle]

    def get_queryset(self):
        queryset = super().get_queryset()
        if not is_staff(self.request.user):
            queryset = queryset.filter(is_public=True)
        return queryset

    def get_serializer_class(self):
        # The schema documents the full representation; at run time only staff get it.
        if getattr(self, "swagger_fake_view", False) or is_staff(self.request.user):
            return SignalementSerializer
        return PublicSignalementSerializer


@extend_validation_errors(PAGINATION_ERROR_CODES, field_name="page", actions=["list"])
@extend_validation_errors(PAGINATION_ERROR_CODES, field_name="page_size", actions=["list"])
@extend_schema_view(
    list=extend_schema(summary="List categories (active ones, or all for staff)"),
    create=extend_schema(summary="Create a category (staff)"),
    retrieve=extend_schema(summary="Read a category"),
    update=extend_schema(summary="Replace a category (staff)"),
    partial_update=extend_schema(summary="Change some of a category's fields (staff)"),
    destroy=extend_schema(
        summary="Delete a category that no report uses (staff)",
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

    queryset = Category.objects.all()
    serializer_class = CategorySerializer
    filterset_class = CategoryFilter
    permission_classes = [IsStaffOrReadOnly]
    lookup_field = "code"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    def get_queryset(self):
        queryset = super().get_queryset()
        if not is_staff(self.request.user):
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
