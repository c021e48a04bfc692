"""Webhooks for integrators: the endpoints admins register, the outbox of events (one row
per event, written in the transaction of the change) and each event's delivery to each
endpoint, with the log of its attempts. What they do is in `signalements/webhooks.py`."""

import base64
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .categories import Category
from .reports import Signalement

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_webhook_secret() -> str:
    """A signing secret in the Standard Webhooks format: `whsec_` and the base64 of
    random bytes (32, the spec asks for 24 to 64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


class WebhookEndpoint(models.Model):
    """A URL to which the events an integrator subscribed to are POSTed, signed with the
    endpoint's secret. The secret is shared with the integrator (shown once, when the
    endpoint is created or its secret rotated) and kept in clear here: the server needs
    it to sign."""

    url = models.URLField(
        _("URL"), max_length=2000, help_text=_("Where the events are POSTed (https).")
    )
    events = models.JSONField(
        _("events"), default=list, help_text=_("The kinds of events sent to this endpoint.")
    )
    categories = models.ManyToManyField(
        Category,
        verbose_name=_("categories"),
        blank=True,
        related_name="webhook_endpoints",
        help_text=_("Only reports of these categories; none: every category."),
    )
    secret = models.CharField(
        _("secret"), max_length=100, default=new_webhook_secret, editable=False
    )
    is_active = models.BooleanField(
        pgettext_lazy("webhook endpoint", "active"),
        default=True,
        help_text=_("Untick to stop sending events to this endpoint."),
    )
    failing_since = models.DateTimeField(
        _("failing since"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("The first failed attempt since the last success."),
    )
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True, editable=False)
    disabled_reason = models.CharField(
        _("reason disabled"), max_length=300, blank=True, editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    """The outbox: an event as it is sent (`payload`, the JSON body of every delivery),
    written in the transaction of the change it tells of."""

    event_id = models.CharField(_("event id"), max_length=40, unique=True, editable=False)
    type = models.CharField(_("type"), max_length=40, editable=False)
    report = models.ForeignKey(
        Signalement,
        verbose_name=_("report"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    # The body POSTed, as text: the same bytes at every attempt (PostgreSQL's jsonb
    # would reorder the keys).
    payload = models.TextField(_("payload"), editable=False)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookDelivery(models.Model):
    """One event to one endpoint, until it is delivered or given up."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERING = "delivering", _("delivering")
        DELIVERED = "delivered", _("delivered")
        FAILED_GIVEN_UP = "failed_given_up", _("failed, given up")

    endpoint = models.ForeignKey(
        WebhookEndpoint,
        verbose_name=_("endpoint"),
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    event = models.ForeignKey(
        WebhookEvent, verbose_name=_("event"), on_delete=models.CASCADE, related_name="deliveries"
    )
    # The event's report, again here so that the order of one report's deliveries to
    # one endpoint is read from one table (and kept if the report is deleted).
    report_key = models.BigIntegerField(_("report id"), null=True, editable=False, db_index=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    delivering_since = models.DateTimeField(
        _("delivering since"), null=True, blank=True, editable=False
    )
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_status = models.PositiveIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhookdelivery_unique")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhookdelivery_due"),
            models.Index(fields=["endpoint", "report_key", "status"], name="webhookdelivery_order"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class WebhookDeliveryAttempt(models.Model):
    """One try at a delivery: what the endpoint answered, or why it could not."""

    delivery = models.ForeignKey(
        WebhookDelivery,
        verbose_name=_("delivery"),
        on_delete=models.CASCADE,
        related_name="attempt_log",
    )
    number = models.PositiveIntegerField(_("attempt"))
    started_at = models.DateTimeField(_("time"), default=timezone.now)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    status_code = models.PositiveIntegerField(_("HTTP status"), null=True, blank=True)
    response_excerpt = models.TextField(_("response (first 500 bytes)"), blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    succeeded = models.BooleanField(_("succeeded"), default=False)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["delivery", "number", "id"]

    def __str__(self) -> str:
        return f"#{self.number}"
