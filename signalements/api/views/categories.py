"""Categories: `/api/categories/`, named by `code`. Everyone reads the active ones (agents
all of them); admins manage them."""

from django.db.models import ProtectedError
from django.utils.translation import gettext as _
from rest_framework import viewsets

from signalements.models import Category
from signalements.roles import is_agent

from .. import schema
from ..errors import Conflict
from ..filters import CategoryFilter
from ..permissions import IsAdminOrReadOnly
from ..serializers import CategorySerializer
from .base import MethodFirst


@schema.categories
class CategoryViewSet(MethodFirst, viewsets.ModelViewSet):
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
                _("Reports use this category: deactivate it (is_active=false) instead."),
                code="category_in_use",
            ) from None
