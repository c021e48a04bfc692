"""Webhook endpoints: `/api/webhooks/` (superusers only). The create answers the signing
secret, once; `rotate-secret` makes a new one. What is sent, and how, is the domain's
(`signalements/webhooks.py`)."""

from django.db import transaction
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from signalements import webhooks
from signalements.models import WebhookEndpoint

from .. import schema
from ..permissions import IsAdmin
from ..serializers.webhooks import (
    CreatedWebhookEndpointSerializer,
    WebhookEndpointSerializer,
    WebhookSecretSerializer,
)
from .base import MethodFirst


@schema.webhooks
class WebhookEndpointViewSet(MethodFirst, viewsets.ModelViewSet):
    """Where integrators receive the events of reports, signed."""

    queryset = WebhookEndpoint.objects.prefetch_related("categories").order_by("-created_at", "-id")
    serializer_class = WebhookEndpointSerializer
    permission_classes = [IsAdmin]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.save(created_by=request.user)
        return Response(
            CreatedWebhookEndpointSerializer(endpoint, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    def perform_update(self, serializer):
        was_active = serializer.instance.is_active
        with transaction.atomic():
            endpoint = serializer.save()
            webhooks.endpoint_saved(endpoint, was_active=was_active)

    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        secret = webhooks.rotate_secret(self.get_object())
        return Response(WebhookSecretSerializer({"secret": secret}).data)
