"""Webhooks in the back office (superusers): endpoints, registered here or through the
API, with their recent deliveries; deliveries, with the log of their attempts, filtered by
status, and resent from here. The signing secret is shown once, in a message, when the
endpoint is created or its secret rotated."""

import json

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from signalements import events, webhooks
from signalements.models import (
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
)

RECENT_DELIVERIES = 20


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        label=_("URL"),
        max_length=2000,
        assume_scheme="https",
        help_text=_("Where the events are POSTed (https)."),
    )
    events = forms.MultipleChoiceField(
        label=_("events"),
        choices=[(kind, kind) for kind in events.KINDS],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The kinds of events sent to this endpoint."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "events", "categories", "is_active"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            webhooks.check_url(url)
        except webhooks.UnsafeURL as refused:
            raise forms.ValidationError(str(refused), code=refused.code) from None
        return url


def show_secret(modeladmin, request, endpoint: WebhookEndpoint) -> None:
    modeladmin.message_user(
        request,
        format_html(
            _(
                "The signing secret of {} is <code>{}</code>. Give it to the integrator now: "
                "it will not be shown again."
            ),
            endpoint.url,
            endpoint.secret,
        ),
        messages.WARNING,
    )


@admin.action(description=_("Give the selected endpoints a new signing secret"))
def rotate_secrets(modeladmin, request, queryset):
    for endpoint in queryset:
        webhooks.rotate_secret(endpoint)
        show_secret(modeladmin, request, endpoint)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "events_display", "is_active", "failing_since", "disabled_at"]
    list_filter = ["is_active"]
    search_fields = ["url"]
    filter_horizontal = ["categories"]
    actions = [rotate_secrets]
    readonly_fields = [
        "failing_since",
        "disabled_at",
        "disabled_reason",
        "created_by",
        "created_at",
        "recent_deliveries",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["url", "events", "categories", "is_active"]
        return ["url", "events", "categories", "is_active", *self.readonly_fields]

    @admin.display(description=_("events"))
    def events_display(self, endpoint):
        return ", ".join(endpoint.events)

    @admin.display(description=_("recent deliveries"))
    def recent_deliveries(self, endpoint):
        deliveries = endpoint.deliveries.select_related("event").order_by("-id")[:RECENT_DELIVERIES]
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:signalements_webhookdelivery_change", args=[delivery.pk]),
                    delivery.event.type,
                    delivery.get_status_display(),
                    delivery.attempts,
                    delivery.last_status or "—",
                    delivery.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                )
                for delivery in deliveries
            ),
        )
        every = reverse("admin:signalements_webhookdelivery_changelist")
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>"
            '<p><a href="{}?endpoint__id__exact={}">{}</a></p>',
            _("event"),
            _("status"),
            _("attempts"),
            _("last HTTP status"),
            _("created at"),
            rows,
            every,
            endpoint.pk,
            _("All the deliveries of this endpoint"),
        )

    def save_model(self, request, obj, form, change):
        was_active = form.initial.get("is_active", True) if change else True
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        webhooks.endpoint_saved(obj, was_active=was_active)
        if not change:
            show_secret(self, request, obj)


class WebhookDeliveryAttemptInline(admin.TabularInline):
    """Every attempt of the delivery, oldest first, as logged."""

    model = WebhookDeliveryAttempt
    fields = [
        "number",
        "time",
        "duration_ms",
        "status_code",
        "succeeded",
        "error",
        "response_excerpt",
        "ip_address",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("time"), ordering="started_at")
    def time(self, attempt):
        """To the millisecond: retries come seconds apart in tests, minutes in production."""
        return timezone.localtime(attempt.started_at).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@admin.action(description=_("Resend the selected deliveries"), permissions=["change"])
def resend_deliveries(modeladmin, request, queryset):
    count = webhooks.resend(queryset)
    modeladmin.message_user(
        request,
        ngettext(
            "%(count)d delivery queued again (only delivered or given-up ones are resent).",
            "%(count)d deliveries queued again (only delivered or given-up ones are resent).",
            count,
        )
        % {"count": count},
        messages.SUCCESS,
    )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event_type",
        "report",
        "endpoint",
        "status",
        "attempts",
        "last_status",
        "last_attempt_at",
        "next_attempt_at",
    ]
    list_filter = ["status", "event__type", "endpoint"]
    list_select_related = ["event__report", "endpoint"]
    search_fields = ["event__event_id"]
    inlines = [WebhookDeliveryAttemptInline]
    actions = [resend_deliveries]
    fields = [
        "endpoint",
        "event_id",
        "event_type",
        "report",
        "status",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_status",
        "last_error",
        "delivered_at",
        "created_at",
        "payload",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("event id"), ordering="event__event_id")
    def event_id(self, delivery):
        return delivery.event.event_id

    @admin.display(description=_("type"), ordering="event__type")
    def event_type(self, delivery):
        return delivery.event.type

    @admin.display(description=_("report"), ordering="report_key")
    def report(self, delivery):
        report = delivery.event.report
        if report is None:
            return f"#{delivery.report_key}" if delivery.report_key else "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:signalements_signalement_change", args=[report.pk]),
            report.reference,
        )

    @admin.display(description=_("payload"))
    def payload(self, delivery):
        try:
            text = json.dumps(json.loads(delivery.event.payload), indent=2, ensure_ascii=False)
        except ValueError:
            text = delivery.event.payload
        return format_html("<pre>{}</pre>", text)
