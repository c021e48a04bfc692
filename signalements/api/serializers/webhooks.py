"""Webhook endpoints, as the REST API shows and takes them (admins only). The signing
secret is the server's: returned by the create and by a rotation, never read again."""

import re

from django.utils.translation import gettext as _
from rest_framework import serializers

from signalements import events, webhooks
from signalements.models import Category, WebhookEndpoint
from signalements.validation import (
    NamedChoicesField,
    SafeSlugRelatedField,
    StrictURLField,
)

CATEGORY_CODE_RE = re.compile(r"[-a-zA-Z0-9_]+")
MAX_CATEGORIES = 100


class WebhookEndpointSerializer(serializers.ModelSerializer):
    url = StrictURLField(
        max_length=2000,
        help_text="Where the events are POSTed (https, on a public address: a host that "
        "resolves to a loopback, private, link-local or reserved address is refused).",
    )
    events = serializers.ListField(
        child=NamedChoicesField(choices=[(kind, kind) for kind in events.KINDS]),
        allow_empty=False,
        max_length=len(events.KINDS),
        help_text="The kinds of events sent to this endpoint.",
    )
    categories = SafeSlugRelatedField(
        pattern=CATEGORY_CODE_RE,
        slug_field="code",
        queryset=Category.objects.all(),
        many=True,
        required=False,
        help_text="Only reports of these categories (codes); empty: every category.",
    )
    is_active = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Whether events are sent. The server unticks it when the endpoint has "
        "failed for `WEBHOOK_DISABLE_AFTER_HOURS` (see `disabled_reason`); set it again "
        "to resume (what is pending is sent, in order).",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "events",
            "categories",
            "is_active",
            "failing_since",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "failing_since",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        ]

    def validate_url(self, url: str) -> str:
        try:
            webhooks.check_url(url)
        except webhooks.UnsafeURL as refused:
            raise serializers.ValidationError(str(refused), code=refused.code) from None
        return url

    def validate_events(self, kinds: list[str]) -> list[str]:
        return list(dict.fromkeys(kinds))  # each once, in the order given

    def validate_categories(self, categories: list[Category]) -> list[Category]:
        if len(categories) > MAX_CATEGORIES:
            raise serializers.ValidationError(
                _("Ensure this field has no more than %(count)d elements.")
                % {"count": MAX_CATEGORIES},
                code="max_length",
            )
        return categories


class CreatedWebhookEndpointSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (`whsec_` and base64), shared with you: shown this "
        "once, keep it to verify the `webhook-signature` of each delivery.",
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The new signing secret, shown this once; the old one signs no more.",
    )
