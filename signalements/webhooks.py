"""Webhooks for integrators: what happens to reports, POSTed to the endpoints that admins
registered, signed as Standard Webhooks sign (https://www.standardwebhooks.com).

- **The outbox.** `on_event` listens to the domain's events (`events.py`) inside the
  change's transaction: it writes the event (`WebhookEvent`, its JSON body as sent) and
  one `WebhookDelivery` per active endpoint that wants it (its `events`, its
  `categories`), then enqueues `deliver` for each once the change commits. No event for
  a change that rolled back, no change without its event.
- **The body.** `{"type", "timestamp", "data"}`: `data.signalement` is the report's public
  representation (never the reporter's contact fields, nor who it is assigned to), with
  what the kind adds: the fields set, the statuses from and to, the public comment, the
  photos. An internal note is no event for integrators (nothing is sent, not even that one
  was written); an update of private fields only neither.
- **Delivery.** `deliver` POSTs the body with `webhook-id` (the event's id, the same at
  every attempt: receivers dedupe on it), `webhook-timestamp` and `webhook-signature`
  (`v1,` HMAC-SHA256 of `id.timestamp.body` with the endpoint's secret, by the reference
  `standardwebhooks` package). A 2xx is delivered; anything else (a 3xx too: redirects are
  not followed, a timeout, a refused connection) fails and is tried again after each of
  WEBHOOK_RETRY_DELAYS (1 min, 5 min, 30 min, 2 h, 6 h), then given up. Every attempt is
  a `WebhookDeliveryAttempt` row (status, duration, the first 500 bytes of the answer,
  the error).
- **Safety (SSRF).** The URL's host is resolved and refused when any of its addresses is
  not a public unicast one (loopback, private, link-local, multicast, reserved…, IPv4
  and IPv6), at registration and again at each attempt (DNS may change since), and the
  connection goes to the address checked. WEBHOOK_ALLOW_PRIVATE=1 lifts the rule.
- **Order.** One report's events reach an endpoint in the order they happened: a delivery
  waits while an earlier one of the same report to the same endpoint is neither
  delivered nor given up; when that one ends, the next is enqueued.
- **At least once.** A delivery is claimed (`delivering`) for one attempt; a claim older
  than the lease (twice the timeout, and 2 s: its worker was killed) is taken over. The
  sweeper (`manage.py worker`, every WEBHOOK_SWEEP_SECONDS) enqueues what is due and
  queued nowhere: a lost enqueue, a killed worker, an endpoint reactivated.
- **Health.** An endpoint with no success for WEBHOOK_DISABLE_AFTER_HOURS since its first
  failure is disabled, and the superusers are emailed.

The secret is a shared secret: kept in the database (the server needs it to sign), shown
to the admin once, when the endpoint is created or its secret rotated.
"""

import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tasks import task
from standardwebhooks import Webhook

from . import events, metrics, photo_access
from .models import (
    Attachment,
    Comment,
    Signalement,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
    WebhookEvent,
    new_webhook_secret,
)
from .tasks import enqueue_on_commit, periodic, retried_task

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status
UNFINISHED = (Status.PENDING, Status.DELIVERING)
EXCERPT_BYTES = 500
USER_AGENT = "Signalements-Webhooks/1"
SWEEP_LIMIT = 1000

# --- The body ----------------------------------------------------------------------------

# What integrators read of a report: the public representation of the REST API, less the
# contact fields and the assignee (staff only).
PUBLIC_FIELDS = (
    "id",
    "uuid",
    "reference",
    "title",
    "description",
    "date",
    "category",
    "status",
    "priority",
    "latitude",
    "longitude",
    "address",
    "media_url",
    "extra",
    "attachments",
    "department",
    "areas",
    "due_at",
    "duplicate_of",
    "is_public",
    "created_at",
    "updated_at",
    "resolved_at",
)


def iso(value: datetime | None) -> str | None:
    """A datetime as the REST API writes it (ISO 8601, the server's time zone)."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def absolute(url: str) -> str:
    """A photo's URL as integrators can fetch it: on the server's public address
    (PUBLIC_BASE_URL, the emails' links' too)."""
    base = getattr(settings, "PUBLIC_BASE_URL", "")
    return urljoin(base.rstrip("/") + "/", url) if base and url.startswith("/") else url


def photo_links() -> photo_access.Links:
    """The photo URLs of a body: on the public address; a hidden report's signed for
    WEBHOOK_PHOTO_URL_TTL_SECONDS (a body is kept and retried for hours)."""
    return photo_access.Links(absolute, ttl=settings.WEBHOOK_PHOTO_URL_TTL_SECONDS)


def attachment_data(attachment: Attachment, *, public: bool, links=None) -> dict:
    links = links or photo_links()
    return {
        "id": attachment.pk,
        "url": links.url(attachment.file.name, public=public),
        "thumbnail_url": links.url(attachment.thumbnail.name, public=public),
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "created_at": iso(attachment.created_at),
    }


def report_data(report: Signalement) -> dict:
    """The report's public representation, as the REST API gives it to the public."""
    original = report.duplicate_of
    links = photo_links()
    return {
        "id": report.pk,
        "uuid": str(report.uuid),
        "reference": report.reference,
        "title": report.title,
        "description": report.description,
        "date": iso(report.date),
        "category": report.category.code if report.category_id else None,
        "status": report.status,
        "priority": report.priority,
        "latitude": float(report.latitude) if report.latitude is not None else None,
        "longitude": float(report.longitude) if report.longitude is not None else None,
        "address": report.address,
        "media_url": report.media_url,
        "extra": report.extra,
        "attachments": [
            attachment_data(photo, public=report.is_public, links=links)
            for photo in report.attachments.all()
        ],
        "department": report.department.code if report.department_id else None,
        "areas": report.area_codes,
        "due_at": iso(report.due_at),
        # A report the public may not see does not exist for it.
        "duplicate_of": original.pk if original is not None and original.is_public else None,
        "is_public": report.is_public,
        "created_at": iso(report.created_at),
        "updated_at": iso(report.updated_at),
        "resolved_at": iso(report.resolved_at),
    }


def event_data(event: events.Event) -> dict | None:
    """The `data` of the body of `event`, or None when integrators are told nothing: an
    internal note, an update of fields they do not see."""
    extra: dict = {}
    if event.kind == events.UPDATED:
        fields = [name for name in event.data.get("fields", []) if name in PUBLIC_FIELDS]
        if not fields:
            return None
        extra = {"fields": fields}
    elif event.kind == events.STATUS_CHANGED:
        extra = {"from": event.data["from"], "to": event.data["to"], "note": event.data["note"]}
    elif event.kind == events.COMMENTED:
        if event.data["is_internal"]:
            return None
        comment = Comment.objects.get(pk=event.data["comment_id"])
        if comment.is_internal:
            return None
        extra = {
            "comment": {
                "id": comment.pk,
                "body": comment.body,
                "author_role": comment.author_role,
                "created_at": iso(comment.created_at),
            }
        }
    report = Signalement.objects.select_related("category", "duplicate_of").get(pk=event.report.pk)
    if event.kind == events.ATTACHMENT_ADDED:
        photos = Attachment.objects.filter(pk__in=event.data["attachment_ids"])
        public = report.is_public  # a hidden report's photos on signed URLs
        extra = {"attachments": [attachment_data(photo, public=public) for photo in photos]}
    return {"signalement": report_data(report), **extra}


def wants(endpoint: WebhookEndpoint, kind: str, report: Signalement) -> bool:
    if kind not in endpoint.events:
        return False
    categories = {category.pk for category in endpoint.categories.all()}
    return not categories or report.category_id in categories


@events.listen
def on_event(event: events.Event) -> None:
    """Write the event to the outbox with a delivery per endpoint that wants it, in the
    change's transaction; enqueue the deliveries once it commits."""
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(is_active=True).prefetch_related(
            "categories"
        )
        if wants(endpoint, event.kind, event.report)
    ]
    if not endpoints:
        return
    data = event_data(event)
    if data is None:
        return
    now = timezone.now()
    body = {
        "type": event.kind,
        "timestamp": now.astimezone(UTC).isoformat()[:-6] + "Z",
        "data": data,
    }
    outbox = WebhookEvent.objects.create(
        event_id=f"evt_{uuid.uuid4().hex}",
        type=event.kind,
        report_id=event.report.pk,
        created_at=now,
        payload=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            endpoint=endpoint,
            event=outbox,
            report_key=event.report.pk,
            next_attempt_at=now,
            created_at=now,
        )
        for endpoint in endpoints
    )
    for delivery in deliveries:
        enqueue_on_commit(deliver, delivery.pk)


# --- Safety: where a webhook may go ------------------------------------------------------

NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(ValueError):
    """A webhook URL we refuse to call; the message says why, `code` names the rule
    (`invalid`: not an http(s) URL; `unsafe_url`: where it leads)."""

    def __init__(self, message: str, code: str = "unsafe_url"):
        super().__init__(message)
        self.code = code


def is_forbidden(address: str) -> bool:
    """Whether `address` is anything but a public unicast address (IPv4 or IPv6, an IPv4
    inside an IPv6 address looked at as the IPv4 it is)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def resolve(host: str, port: int) -> list[str]:
    """The addresses of `host`, in the resolver's order (OSError when it has none)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (UnicodeError, ValueError) as error:  # a name IDNA cannot encode
        raise OSError(str(error)) from error
    return list(dict.fromkeys(info[4][0] for info in infos))


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an http(s) URL, or UnsafeURL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeURL(_("Enter a valid URL."), code="invalid") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(_("Enter an http or https URL."), code="invalid")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL(_("A webhook URL may not contain credentials."))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def check_url(url: str) -> None:
    """Refuse (UnsafeURL) a URL whose host resolves to an address that is not public.
    A name that does not resolve now is accepted: it is checked again at each attempt."""
    _scheme, host, port, _path = split_url(url)
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return
    try:
        addresses = resolve(host, port)
    except OSError:
        return
    refused = [address for address in addresses if is_forbidden(address)]
    if refused:
        raise UnsafeURL(
            _(
                "This URL leads to a private, loopback or reserved address (%(address)s): "
                "webhooks go to public addresses only."
            )
            % {"address": refused[0]}
        )


# --- Delivery ------------------------------------------------------------------------------


@dataclass
class Outcome:
    succeeded: bool
    status_code: int | None = None
    excerpt: str = ""
    error: str = ""
    ip_address: str | None = None
    duration_ms: int = 0


class PinnedHTTPConnection(http.client.HTTPConnection):
    """A connection to the address that was checked, not to whatever the name resolves
    to by the time it connects."""

    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def signed_headers(endpoint: WebhookEndpoint, event: WebhookEvent, body: str) -> dict:
    """The Standard Webhooks headers of one attempt (a fresh timestamp each)."""
    sent_at = datetime.fromtimestamp(int(time.time()), tz=UTC)
    signature = Webhook(endpoint.secret).sign(msg_id=event.event_id, timestamp=sent_at, data=body)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": event.event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }


def text_of(data: bytes | str) -> str:
    """Text that both databases store (PostgreSQL refuses NUL)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    return data.replace("\x00", "\ufffd")


def post(url: str, body: str, headers: dict) -> Outcome:
    """One POST of `body` to `url`, to an address checked safe; never raises."""
    started = time.monotonic()
    outcome = Outcome(succeeded=False)
    try:
        scheme, host, port, path = split_url(url)
        addresses = resolve(host, port)
        if not settings.WEBHOOK_ALLOW_PRIVATE:
            refused = [address for address in addresses if is_forbidden(address)]
            if refused:
                raise UnsafeURL(f"refused: {host} resolves to a non-public address {refused[0]}")
        outcome.ip_address = addresses[0].split("%", 1)[0]
        connection_class = PinnedHTTPSConnection if scheme == "https" else PinnedHTTPConnection
        connection = connection_class(
            host, port, address=addresses[0], timeout=settings.WEBHOOK_TIMEOUT_SECONDS
        )
        try:
            connection.request("POST", path, body=body.encode("utf-8"), headers=headers)
            response = connection.getresponse()
            outcome.status_code = response.status
            outcome.excerpt = text_of(response.read(EXCERPT_BYTES))
        finally:
            connection.close()
        outcome.succeeded = 200 <= response.status < 300
        if not outcome.succeeded:
            outcome.error = f"HTTP {response.status}"
    except UnsafeURL as error:
        outcome.error = str(error)
    except TimeoutError:
        outcome.error = f"timeout after {settings.WEBHOOK_TIMEOUT_SECONDS:g} s"
    except Exception as error:  # DNS, connection, TLS, a malformed answer
        outcome.error = f"{type(error).__name__}: {error}"
    outcome.error = text_of(outcome.error)[:500]
    outcome.duration_ms = round((time.monotonic() - started) * 1000)
    return outcome


def lease() -> timedelta:
    """How long a claim holds: an attempt lasts at most about twice the timeout
    (connecting, then waiting for the answer); a claim older than this is abandoned."""
    return timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT_SECONDS + 2)


def earlier_unfinished(delivery: WebhookDelivery) -> QuerySet:
    """The deliveries of the same report to the same endpoint, of earlier events, still
    to be delivered: `delivery` waits for them."""
    return WebhookDelivery.objects.filter(
        endpoint_id=delivery.endpoint_id,
        report_key=delivery.report_key,
        event_id__lt=delivery.event_id,
        status__in=UNFINISHED,
    )


def log_interrupted(delivery_id: int, *, since: datetime, now: datetime) -> None:
    """The attempt of a worker that died (killed, its machine lost) in the log: how it
    ended is unknown (the endpoint may have received it). Not counted as a failure."""
    WebhookDeliveryAttempt.objects.create(
        delivery_id=delivery_id,
        number=WebhookDeliveryAttempt.objects.filter(delivery_id=delivery_id).count() + 1,
        started_at=since,
        duration_ms=round((now - since).total_seconds() * 1000),
        error="interrupted: the worker stopped during the attempt",
    )


def supports_defer() -> bool:
    return deliver.get_backend().supports_defer


@task()
def deliver(delivery_id: int) -> str:
    """Attempt one delivery, if it is due, its turn has come and nobody else is at it.
    Returns what happened."""
    now = timezone.now()
    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "event").filter(pk=delivery_id).first()
    )
    if delivery is None:
        return "deleted"
    if delivery.status in (Status.DELIVERED, Status.FAILED_GIVEN_UP):
        return delivery.status
    if not delivery.endpoint.is_active:
        return "endpoint inactive"
    if earlier_unfinished(delivery).exists():
        return "waiting for an earlier event"
    # Claimed here, for one attempt: pending and due, or delivering by a worker that
    # has not finished within the lease (killed).
    taking_over = delivery.status == Status.DELIVERING
    if taking_over:
        claim = Q(
            status=Status.DELIVERING,
            delivering_since=delivery.delivering_since,
            delivering_since__lt=now - lease(),
        )
    else:
        # Due, to the microsecond: a duplicate task (the sweeper may enqueue one while
        # the first is running) must not attempt again before the retry delay.
        claim = Q(status=Status.PENDING) & (
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        )
    claimed = WebhookDelivery.objects.filter(claim, pk=delivery.pk).update(
        status=Status.DELIVERING, delivering_since=now
    )
    if not claimed:
        return "not due, or being delivered"
    if taking_over:
        log_interrupted(delivery.pk, since=delivery.delivering_since, now=now)
    delivery.refresh_from_db(fields=["attempts"])
    body = delivery.event.payload
    outcome = post(
        delivery.endpoint.url, body, signed_headers(delivery.endpoint, delivery.event, body)
    )
    return finish(delivery, outcome, started_at=now)


def finish(delivery: WebhookDelivery, outcome: Outcome, *, started_at: datetime) -> str:
    """Log the attempt; the delivery is delivered, retried later, or given up."""
    now = timezone.now()
    attempts = delivery.attempts + 1
    delays = settings.WEBHOOK_RETRY_DELAYS
    if outcome.succeeded:
        result = {"status": Status.DELIVERED, "delivered_at": now, "next_attempt_at": None}
    elif attempts > len(delays):
        result = {"status": Status.FAILED_GIVEN_UP, "next_attempt_at": None}
    else:
        result = {"status": Status.PENDING, "next_attempt_at": now + delays[attempts - 1]}
    with transaction.atomic():
        WebhookDeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempt_log.count() + 1,
            started_at=started_at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            response_excerpt=outcome.excerpt,
            error=outcome.error,
            ip_address=outcome.ip_address,
            succeeded=outcome.succeeded,
        )
        # Only while the claim is ours: a worker that overran its lease leaves the
        # delivery to the one that took it over.
        ours = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=Status.DELIVERING, delivering_since=started_at
        ).update(
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            last_status=outcome.status_code,
            last_error=outcome.error,
            delivering_since=None,
            **result,
        )
        if not ours:
            return "attempted, but another worker took the delivery over"
        endpoint_health(delivery.endpoint_id, succeeded=outcome.succeeded, now=now)
        if result["status"] == Status.PENDING:
            if supports_defer():
                enqueue_on_commit(deliver.using(run_after=result["next_attempt_at"]), delivery.pk)
        else:
            enqueue_next(delivery)
    metrics.webhook_attempt(
        succeeded=outcome.succeeded, given_up=result["status"] == Status.FAILED_GIVEN_UP
    )
    return result["status"] if outcome.succeeded else f"{result['status']}: {outcome.error}"


def enqueue_next(delivery: WebhookDelivery) -> None:
    """Once a delivery ends, the next event of its report to its endpoint may go."""
    following = (
        WebhookDelivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            report_key=delivery.report_key,
            event_id__gt=delivery.event_id,
            status=Status.PENDING,
        )
        .order_by("event_id")
        .values_list("pk", flat=True)
        .first()
    )
    if following is not None:
        enqueue_on_commit(deliver, following)


# --- The endpoints' health ---------------------------------------------------------------


def endpoint_health(endpoint_id: int, *, succeeded: bool, now: datetime) -> None:
    """A success clears the endpoint's failing streak; a failure starts one, or, when it
    has lasted WEBHOOK_DISABLE_AFTER_HOURS, disables the endpoint (the superusers are
    told by email)."""
    endpoints = WebhookEndpoint.objects.filter(pk=endpoint_id)
    if succeeded:
        endpoints.filter(failing_since__isnull=False).update(failing_since=None)
        return
    endpoints.filter(failing_since__isnull=True).update(failing_since=now)
    window = timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS)
    failing_since = endpoints.values_list("failing_since", flat=True).first()
    if failing_since is None or now - failing_since < window:
        return
    with translation.override(settings.LANGUAGE_CODE):
        reason = _("No successful delivery for %(hours)g hours (failing since %(since)s).") % {
            "hours": settings.WEBHOOK_DISABLE_AFTER_HOURS,
            "since": iso(failing_since),
        }
    if endpoints.filter(is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:300]
    ):
        logger.warning("Webhook endpoint %s disabled: %s", endpoint_id, reason)
        enqueue_on_commit(send_endpoint_disabled_email, endpoint_id)


EMAIL_RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))


@retried_task(delays=EMAIL_RETRY_DELAYS)
def send_endpoint_disabled_email(endpoint_id: int) -> str:
    """Tell the superusers that an endpoint was disabled, in the site's language."""
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return "endpoint deleted"
    recipients = list(
        get_user_model()
        .objects.filter(is_superuser=True, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not recipients:
        return "no superuser with an email"
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("[Signalements] Webhook endpoint disabled: %(url)s") % {"url": endpoint.url}
        body = "\n".join(
            [
                _("Hello,"),
                "",
                _("The webhook endpoint %(url)s was disabled:") % {"url": endpoint.url},
                endpoint.disabled_reason,
                "",
                _(
                    "Its deliveries wait. Once the endpoint answers again, tick “active” in "
                    "the admin (Webhook endpoints): what is pending is sent, in order."
                ),
                "",
                "— Signalements",
            ]
        )
    send_mail(
        subject=subject,
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
    return "sent"


# --- What the doors do ------------------------------------------------------------------


def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """Give the endpoint a new secret and return it (the old one signs no more)."""
    endpoint.secret = new_webhook_secret()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint.secret


def endpoint_saved(endpoint: WebhookEndpoint, *, was_active: bool) -> None:
    """After an admin saved an endpoint: reactivated, it starts afresh (its pending
    deliveries go at the next sweep)."""
    if endpoint.is_active and not was_active:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            failing_since=None, disabled_at=None, disabled_reason=""
        )
        endpoint.failing_since = endpoint.disabled_at = None
        endpoint.disabled_reason = ""


def resend(deliveries: QuerySet) -> int:
    """Queue delivered or given-up deliveries again, with a new round of retries.
    Returns how many."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            deliveries.filter(status__in=(Status.DELIVERED, Status.FAILED_GIVEN_UP)).values_list(
                "pk", flat=True
            )
        )
        WebhookDelivery.objects.filter(pk__in=ids).update(
            status=Status.PENDING, attempts=0, next_attempt_at=now, delivered_at=None
        )
        for delivery_id in ids:
            enqueue_on_commit(deliver, delivery_id)
    return len(ids)


# --- The sweeper ---------------------------------------------------------------------------


def queued_delivery_ids() -> set[int]:
    """The deliveries that a task waiting in the database queue will attempt."""
    try:
        from django_tasks.base import TaskResultStatus
        from django_tasks_db import DatabaseBackend
        from django_tasks_db.models import DBTaskResult
    except ImportError:  # pragma: no cover
        return set()
    if not isinstance(deliver.get_backend(), DatabaseBackend):
        return set()
    waiting = DBTaskResult.objects.filter(
        status=TaskResultStatus.READY, task_path=deliver.module_path
    ).values_list("args_kwargs", flat=True)
    return {arguments["args"][0] for arguments in waiting if arguments.get("args")}


@periodic(every=timedelta(seconds=settings.WEBHOOK_SWEEP_SECONDS))
def sweep_webhook_deliveries() -> int:
    """At least once: enqueue the deliveries that are due and that no task will attempt
    (an enqueue lost, a worker killed mid-attempt, an endpoint reactivated). Returns how
    many were enqueued."""
    now = timezone.now()
    abandoned = list(
        WebhookDelivery.objects.filter(
            status=Status.DELIVERING, delivering_since__lt=now - lease()
        ).values_list("pk", "delivering_since")[:SWEEP_LIMIT]
    )
    for delivery_id, since in abandoned:
        with transaction.atomic():
            if WebhookDelivery.objects.filter(
                pk=delivery_id, status=Status.DELIVERING, delivering_since=since
            ).update(status=Status.PENDING, delivering_since=None, next_attempt_at=now):
                log_interrupted(delivery_id, since=since, now=now)
    waiting_for_earlier = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        report_key=OuterRef("report_key"),
        event_id__lt=OuterRef("event_id"),
        status__in=UNFINISHED,
    )
    due = (
        WebhookDelivery.objects.filter(
            status=Status.PENDING, endpoint__is_active=True, next_attempt_at__lte=now
        )
        .exclude(Exists(waiting_for_earlier))
        .order_by("event_id", "pk")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    queued = queued_delivery_ids()
    enqueued = 0
    for delivery_id in due:
        if delivery_id not in queued:
            deliver.enqueue(delivery_id)
            enqueued += 1
    if enqueued:
        logger.info("Webhook sweeper: %d delivery(ies) enqueued", enqueued)
    return enqueued


@periodic(every=timedelta(hours=1))
def prune_webhook_events() -> int:
    """The outbox does not grow forever: an event whose deliveries are all finished
    (delivered, or given up) goes, with its deliveries and their attempts, once older than
    WEBHOOK_KEEP_DAYS. Returns how many events went."""
    limit = timezone.now() - timedelta(days=settings.WEBHOOK_KEEP_DAYS)
    unfinished = WebhookDelivery.objects.filter(event_id=OuterRef("pk"), status__in=UNFINISHED)
    old = WebhookEvent.objects.filter(created_at__lt=limit).exclude(Exists(unfinished))
    deleted = 0
    while ids := list(old.values_list("pk", flat=True)[:SWEEP_LIMIT]):
        WebhookEvent.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
    if deleted:
        logger.info(
            "Webhooks: %d finished event(s) older than %d days deleted",
            deleted,
            settings.WEBHOOK_KEEP_DAYS,
        )
    return deleted
