"""Webhooks for integrators: registration (API and admin, superusers only, the secret
shown once, the SSRF rule), the outbox (written in the change's transaction, nothing
private in it), delivery to a real HTTP receiver on 127.0.0.1 (Standard Webhooks
signatures checked with the reference `standardwebhooks` package, retries, order,
redirects, timeouts), the sweeper, the disabling of a failing endpoint, the admin's log.

Tasks run inline here (TASKS_BACKEND=immediate, which cannot defer): a retry waits for
the sweeper, which the tests run themselves. The real worker: `test_webhooks_live.py`."""

import base64
import json
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook, WebhookVerificationError

from signalements import events, services, webhooks
from signalements.models import (
    Status,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
    WebhookEvent,
)

from . import images
from .factories import CategoryFactory, SignalementFactory
from .test_attachments import upload
from .webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

ALL = list(events.KINDS)
REPORT = {
    "title": "Lampadaire éteint",
    "description": "Le lampadaire devant le 12 est éteint.",
    "date": "2025-04-29T16:30:00+02:00",
    "category": "eclairage",
    "latitude": 48.111,
    "longitude": -1.68,
    "contact_name": "Camille Secret-Name",
    "contact_email": "camille.secret@example.org",
    "contact_phone": "06 99 88 77 66",
}
CONTACT_VALUES = ("Camille Secret-Name", "camille.secret@example.org", "06 99 88 77 66")


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.WEBHOOK_RETRY_DELAYS = (timedelta(0), timedelta(0), timedelta(0))
    settings.WEBHOOK_TIMEOUT_SECONDS = 5


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def category(db):
    return CategoryFactory(code="eclairage", name="Éclairage")


@pytest.fixture
def endpoint(receiver, category):
    return WebhookEndpoint.objects.create(url=receiver.url, events=ALL)


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run what is enqueued on commit (the tests run in a transaction that never does)."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def settle(on_commit, rounds: int = 30) -> None:
    """Run the sweeper until no delivery is pending (the inline backend cannot defer a
    retry: the sweeper starts it once due)."""
    for _ in range(rounds):
        if not WebhookDelivery.objects.filter(status__in=webhooks.UNFINISHED).exists():
            return
        with on_commit():
            webhooks.sweep_webhook_deliveries()
        time.sleep(0.01)


def create_report(on_commit, client=None, **fields) -> dict:
    with on_commit():
        response = (client or APIClient()).post(
            reverse("signalement-list"), {**REPORT, **fields}, format="json"
        )
    assert response.status_code == 201, response.content
    return response.json()


def transition(on_commit, client, report_id, to_status, note=""):
    with on_commit():
        response = client.post(
            reverse("signalement-transition", args=[report_id]),
            {"status": to_status, "note": note},
            format="json",
        )
    assert response.status_code == 200, response.content


def comment(on_commit, client, report_id, body, *, internal=False):
    with on_commit():
        response = client.post(
            reverse("signalement-comments", args=[report_id]),
            {"body": body, "is_internal": internal},
            format="json",
        )
    assert response.status_code == 201, response.content


def all_payloads() -> str:
    return "\n".join(WebhookEvent.objects.values_list("payload", flat=True))


# --- Registration through the API --------------------------------------------------------


def test_an_admin_registers_an_endpoint_and_sees_its_secret_once(superuser_client, category):
    response = superuser_client.post(
        reverse("webhook-list"),
        {"url": "https://93.184.215.14/hooks", "events": ALL[:2], "categories": ["eclairage"]},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert body["events"] == ALL[:2]
    assert body["categories"] == ["eclairage"]
    assert body["is_active"] is True
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == secret  # kept: the server signs with it
    detail = superuser_client.get(reverse("webhook-detail", args=[endpoint.pk])).json()
    listed = superuser_client.get(reverse("webhook-list")).json()["results"]
    assert "secret" not in detail and "secret" not in listed[0]
    assert secret not in json.dumps([detail, listed])


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anonymous", 401), ("reporter", 403), ("agent", 403), ("admin", 200)],
)
def test_only_superusers_manage_webhooks(
    who, expected, api_client, user_client, agent_client, superuser_client
):
    client = {
        "anonymous": api_client,
        "reporter": user_client,
        "agent": agent_client,
        "admin": superuser_client,
    }[who]
    endpoint = WebhookEndpoint.objects.create(url="https://93.184.215.14/", events=ALL)

    assert client.get(reverse("webhook-list")).status_code == expected
    assert client.get(reverse("webhook-detail", args=[endpoint.pk])).status_code == expected
    created = client.post(
        reverse("webhook-list"), {"url": "https://93.184.215.14/", "events": ALL}, format="json"
    )
    assert created.status_code == (201 if expected == 200 else expected)
    rotated = client.post(reverse("webhook-rotate-secret", args=[endpoint.pk]))
    assert rotated.status_code == expected
    if expected != 200:
        assert "secret" not in rotated.content.decode()
        assert WebhookEndpoint.objects.count() == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://localhost:8000/hooks",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.10/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[ff02::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[64:ff9b::a00:1]/",
        "http://2130706433/",
    ],
)
def test_a_url_leading_to_a_non_public_address_is_refused(superuser_client, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = superuser_client.post(
        reverse("webhook-list"), {"url": url, "events": ALL}, format="json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["attr"] == "url"
    assert response.json()["errors"][0]["code"] in ("unsafe_url", "invalid")
    assert not WebhookEndpoint.objects.exists()


def test_webhook_allow_private_lifts_the_rule(superuser_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    response = superuser_client.post(
        reverse("webhook-list"), {"url": "http://127.0.0.1:9/", "events": ALL}, format="json"
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("data", "attr", "code"),
    [
        ({"url": "https://93.184.215.14/", "events": ["signalement.deleted"]}, "events.0", "invalid_choice"),
        ({"url": "https://93.184.215.14/", "events": []}, "events", "empty"),
        ({"url": "https://93.184.215.14/", "events": "signalement.created"}, "events", "not_a_list"),
        ({"url": "https://93.184.215.14/", "events": ALL, "categories": ["nope"]}, "categories", "does_not_exist"),
        ({"url": "ftp://93.184.215.14/", "events": ALL}, "url", "invalid"),
        ({"url": "https://user:pw@93.184.215.14/", "events": ALL}, "url", "unsafe_url"),
        ({"url": 42, "events": ALL}, "url", "invalid"),
        ({"events": ALL}, "url", "required"),
    ],
)  # fmt: skip
def test_an_invalid_endpoint_is_a_400_naming_the_field(
    superuser_client, category, data, attr, code
):
    response = superuser_client.post(reverse("webhook-list"), data, format="json")

    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["attr"], error["code"]) == (attr, code)
    assert not WebhookEndpoint.objects.exists()


def test_rotating_the_secret_signs_with_the_new_one(
    superuser_client, endpoint, receiver, on_commit
):
    old = endpoint.secret
    response = superuser_client.post(reverse("webhook-rotate-secret", args=[endpoint.pk]))

    assert response.status_code == 200
    new = response.json()["secret"]
    assert new != old and new.startswith("whsec_")
    create_report(on_commit)
    received = receiver.received[0]
    received.verify(new)
    with pytest.raises(WebhookVerificationError):
        received.verify(old)


def test_reactivating_an_endpoint_clears_why_it_was_disabled(superuser_client, endpoint):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False,
        disabled_at=timezone.now(),
        disabled_reason="x",
        failing_since=timezone.now(),
    )
    response = superuser_client.patch(
        reverse("webhook-detail", args=[endpoint.pk]), {"is_active": True}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["disabled_at"] is None
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.disabled_reason, endpoint.failing_since) == (
        True,
        "",
        None,
    )


# --- The outbox ------------------------------------------------------------------------------


def test_each_change_writes_one_event_and_a_delivery_per_endpoint_that_wants_it(
    receiver, category, on_commit, agent_client
):
    every = WebhookEndpoint.objects.create(url=receiver.url, events=ALL)
    statuses_only = WebhookEndpoint.objects.create(url=receiver.url, events=[events.STATUS_CHANGED])
    other_category = WebhookEndpoint.objects.create(url=receiver.url, events=ALL)
    other_category.categories.add(CategoryFactory(code="voirie"))
    WebhookEndpoint.objects.create(url=receiver.url, events=ALL, is_active=False)

    report = create_report(on_commit)
    transition(on_commit, agent_client, report["id"], "acknowledged", note="Vu")

    created, changed = WebhookEvent.objects.order_by("id")
    assert (created.type, changed.type) == (events.CREATED, events.STATUS_CHANGED)
    assert created.event_id.startswith("evt_") and created.event_id != changed.event_id
    assert created.report_id == changed.report_id == report["id"]
    assert {d.endpoint for d in created.deliveries.all()} == {every}
    assert {d.endpoint for d in changed.deliveries.all()} == {every, statuses_only}
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_change_that_rolls_back_writes_no_event(endpoint, agent_user):
    report = SignalementFactory(category=endpoint.categories.first())

    with pytest.raises(RuntimeError), transaction.atomic():
        services.transition(signalement=report, to_status=Status.ACKNOWLEDGED, by=agent_user)
        assert WebhookEvent.objects.count() == 1  # written with the change…
        raise RuntimeError("the change fails after its event")

    assert WebhookEvent.objects.count() == 0  # …and gone with it
    assert WebhookDelivery.objects.count() == 0


def test_no_endpoint_no_event(category, on_commit):
    create_report(on_commit)
    assert not WebhookEvent.objects.exists()


def test_internal_notes_are_never_sent(endpoint, receiver, on_commit, agent_client):
    report = create_report(on_commit)
    comment(on_commit, agent_client, report["id"], "NOTE-INTERNE-123", internal=True)
    comment(on_commit, agent_client, report["id"], "Réparation prévue lundi")

    assert receiver.types() == [events.CREATED, events.COMMENTED]
    assert "NOTE-INTERNE-123" not in all_payloads()
    assert "NOTE-INTERNE-123" not in b"".join(r.body for r in receiver.received).decode()
    public = receiver.received[1].verify(endpoint.secret)
    assert public["data"]["comment"]["body"] == "Réparation prévue lundi"
    assert public["data"]["comment"]["author_role"] == "agent"


def test_contact_fields_are_never_sent(endpoint, receiver, on_commit, agent_client):
    report = create_report(on_commit)
    with on_commit():
        agent_client.patch(
            reverse("signalement-detail", args=[report["id"]]),
            {"contact_phone": "06 11 11 11 11"},
            format="json",
        )  # private fields only: nothing integrators see changed, no event
    with on_commit():
        agent_client.patch(
            reverse("signalement-detail", args=[report["id"]]),
            {"priority": "high", "contact_name": "Camille Secret-Name"},
            format="json",
        )

    assert receiver.types() == [events.CREATED, events.UPDATED]
    sent = all_payloads() + b"".join(r.body for r in receiver.received).decode()
    for value in (*CONTACT_VALUES, "06 11 11 11 11", "contact_", "assigned_to"):
        assert value not in sent
    assert receiver.received[1].json["data"]["fields"] == ["priority"]


def test_the_body_of_each_kind(endpoint, receiver, on_commit, agent_client):
    report = create_report(on_commit)
    with on_commit():
        agent_client.patch(
            reverse("signalement-detail", args=[report["id"]]), {"priority": "high"}, format="json"
        )
    transition(on_commit, agent_client, report["id"], "acknowledged", note="Équipe prévenue")
    comment(on_commit, agent_client, report["id"], "Intervention demain")
    with on_commit():
        assert (
            upload(agent_client, report["id"], ("a.jpg", images.jpeg_with_gps())).status_code == 201
        )

    bodies = [received.verify(endpoint.secret) for received in receiver.received]
    assert [body["type"] for body in bodies] == ALL
    for body in bodies:
        assert set(body) == {"type", "timestamp", "data"}
        assert body["timestamp"].endswith("Z")
        assert set(body["data"]["signalement"]) == set(webhooks.PUBLIC_FIELDS)
        assert body["data"]["signalement"]["id"] == report["id"]
        assert body["data"]["signalement"]["reference"] == report["reference"]
    created, updated, changed, commented, photographed = (body["data"] for body in bodies)
    assert set(created) == {"signalement"}
    assert created["signalement"]["status"] == "new"
    assert created["signalement"]["category"] == "eclairage"
    assert updated["fields"] == ["priority"]
    assert updated["signalement"]["priority"] == "high"
    assert (changed["from"], changed["to"], changed["note"]) == (
        "new",
        "acknowledged",
        "Équipe prévenue",
    )
    assert changed["signalement"]["status"] == "acknowledged"
    assert commented["comment"]["body"] == "Intervention demain"
    assert photographed["attachments"][0]["content_type"] == "image/jpeg"
    assert photographed["attachments"][0]["url"].startswith("http://127.0.0.1:8000/media/")
    assert photographed["signalement"]["attachments"] == photographed["attachments"]


# --- Delivery ------------------------------------------------------------------------------


def test_deliveries_are_signed_as_standard_webhooks_say(endpoint, receiver, on_commit):
    create_report(on_commit)

    (received,) = receiver.received
    event = WebhookEvent.objects.get()
    assert received.headers["webhook-id"] == event.event_id
    assert received.headers["content-type"] == "application/json"
    assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 60
    assert received.headers["webhook-signature"].startswith("v1,")
    assert received.body == event.payload.encode()
    assert received.verify(endpoint.secret)["type"] == events.CREATED
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(
            received.body, received.headers
        )
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 1, 204)


def test_a_failed_delivery_is_retried_with_the_same_id_and_each_attempt_logged(
    endpoint, receiver, on_commit
):
    receiver.fail_first = 2
    create_report(on_commit)
    settle(on_commit)

    assert len(receiver.received) == 3
    assert len({received.webhook_id for received in receiver.received}) == 1
    for received in receiver.received:
        received.verify(endpoint.secret)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 3, 204)
    log = list(delivery.attempt_log.order_by("number"))
    assert [(a.number, a.status_code, a.succeeded) for a in log] == [
        (1, 500, False),
        (2, 500, False),
        (3, 204, True),
    ]
    assert log[0].response_excerpt == '{"error": "on purpose"}'
    assert log[0].error == "HTTP 500" and log[0].ip_address == "127.0.0.1"
    assert all(a.duration_ms >= 0 for a in log)


def test_retries_follow_the_schedule_then_give_up(endpoint, receiver, on_commit, settings):
    settings.WEBHOOK_RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5))
    receiver.status = 503
    create_report(on_commit)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.next_attempt_at - delivery.last_attempt_at == timedelta(minutes=1)

    with on_commit():
        assert webhooks.sweep_webhook_deliveries() == 0  # not due yet
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    with on_commit():
        webhooks.sweep_webhook_deliveries()
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.next_attempt_at - delivery.last_attempt_at == timedelta(minutes=5)
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    with on_commit():
        webhooks.sweep_webhook_deliveries()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        "failed_given_up",
        3,
        None,
    )
    assert len(receiver.received) == 3


def test_one_reports_events_arrive_in_order_even_when_the_first_is_retried(
    endpoint, receiver, on_commit, agent_client
):
    receiver.fail_first = 2
    receiver.fail_types = {events.CREATED}
    report = create_report(on_commit)
    transition(on_commit, agent_client, report["id"], "acknowledged")
    comment(on_commit, agent_client, report["id"], "En route")
    other = create_report(on_commit, title="Autre")  # another report, its own order
    assert receiver.types() == [events.CREATED, events.CREATED]
    held = WebhookDelivery.objects.filter(report_key=report["id"], status="pending")
    assert held.count() == 3

    settle(on_commit)

    mine = [
        r.json["type"]
        for r in receiver.received
        if r.json["data"]["signalement"]["id"] == report["id"]
    ]
    assert mine == [events.CREATED] * 3 + [events.STATUS_CHANGED, events.COMMENTED]
    assert [r.json["data"]["signalement"]["id"] for r in receiver.received].count(other["id"]) == 3
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_given_up_delivery_lets_the_next_event_go(endpoint, receiver, on_commit, agent_client):
    receiver.fail_first = 99
    receiver.fail_types = {events.CREATED}
    report = create_report(on_commit)
    transition(on_commit, agent_client, report["id"], "acknowledged")
    settle(on_commit)

    statuses = dict(WebhookDelivery.objects.values_list("event__type", "status"))
    assert statuses == {events.CREATED: "failed_given_up", events.STATUS_CHANGED: "delivered"}
    assert receiver.types() == [events.CREATED] * 4 + [events.STATUS_CHANGED]


def test_a_redirect_is_a_failure_and_is_not_followed(endpoint, receiver, on_commit):
    receiver.status = 302
    create_report(on_commit)

    assert [r.path for r in receiver.received] == ["/hooks"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_status, delivery.last_error) == (
        "pending",
        302,
        "HTTP 302",
    )


def test_an_endpoint_that_does_not_answer_in_time_fails(endpoint, receiver, on_commit, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.hang_first = True
    create_report(on_commit)
    receiver.release()

    attempt = WebhookDeliveryAttempt.objects.get()
    assert attempt.status_code is None and not attempt.succeeded
    assert attempt.error.startswith("timeout after 0.3")
    assert 250 <= attempt.duration_ms < 3000


def test_the_address_is_checked_again_at_delivery(endpoint, receiver, on_commit, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False  # registered while allowed; DNS may change too
    create_report(on_commit)

    assert receiver.received == []
    attempt = WebhookDeliveryAttempt.objects.get()
    assert "non-public address 127.0.0.1" in attempt.error
    assert attempt.status_code is None


# --- At least once: the sweeper ------------------------------------------------------------


def test_the_sweeper_delivers_what_was_never_enqueued(
    endpoint, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):  # the enqueue is lost
        APIClient().post(reverse("signalement-list"), REPORT, format="json")
    assert WebhookDelivery.objects.get().status == "pending"
    assert receiver.received == []

    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.sweep_webhook_deliveries() == 1

    assert receiver.types() == [events.CREATED]
    assert WebhookDelivery.objects.get().status == "delivered"


def test_the_sweeper_takes_over_an_attempt_whose_worker_died(
    endpoint, receiver, on_commit, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        APIClient().post(reverse("signalement-list"), REPORT, format="json")
    # A worker claimed it, and was killed before it could log anything.
    WebhookDelivery.objects.update(
        status="delivering", delivering_since=timezone.now() - timedelta(minutes=5)
    )

    with on_commit():
        assert webhooks.sweep_webhook_deliveries() == 1

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered"
    log = list(delivery.attempt_log.order_by("number").values_list("number", "error"))
    assert log == [(1, "interrupted: the worker stopped during the attempt"), (2, "")]
    assert receiver.types() == [events.CREATED]


def test_a_delivery_being_attempted_is_not_attempted_twice(endpoint, receiver, on_commit):
    with on_commit():
        APIClient().post(reverse("signalement-list"), REPORT, format="json")
    receiver.received.clear()
    WebhookDelivery.objects.update(status="delivering", delivering_since=timezone.now())

    assert webhooks.deliver.call(WebhookDelivery.objects.get().pk) == "not due, or being delivered"
    with on_commit():
        assert webhooks.sweep_webhook_deliveries() == 0
    assert receiver.received == []


def test_a_duplicate_task_does_not_attempt_before_the_retry_delay(
    endpoint, receiver, on_commit, settings
):
    # The sweeper may enqueue a delivery a second time while its first task runs (it is
    # no longer waiting then); that task must not retry early, even by a second.
    settings.WEBHOOK_RETRY_DELAYS = (timedelta(milliseconds=800),)
    receiver.fail_first = 1
    create_report(on_commit)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)

    assert webhooks.deliver.call(delivery.pk) == "not due, or being delivered"
    assert len(receiver.received) == 1
    time.sleep(0.9)
    with on_commit():
        assert webhooks.deliver.call(delivery.pk) == "delivered"
    assert len(receiver.received) == 2


# --- A failing endpoint is disabled --------------------------------------------------------


def test_an_endpoint_failing_for_the_window_is_disabled_and_the_admins_told(
    endpoint, receiver, on_commit, settings, superuser
):
    settings.WEBHOOK_DISABLE_AFTER_HOURS = 24
    superuser.email = "chef@example.org"
    superuser.save()
    receiver.status = 500
    create_report(on_commit)
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.failing_since is not None  # the streak starts

    WebhookEndpoint.objects.update(failing_since=timezone.now() - timedelta(hours=25))
    with on_commit():
        webhooks.sweep_webhook_deliveries()

    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert endpoint.disabled_at is not None
    assert "24" in endpoint.disabled_reason
    (email,) = [email for email in mail.outbox if email.to == ["chef@example.org"]]
    assert endpoint.url in email.subject
    sent = len(receiver.received)
    with on_commit():
        webhooks.sweep_webhook_deliveries()
    assert len(receiver.received) == sent  # nothing more to a disabled endpoint


def test_a_success_ends_the_failing_streak(endpoint, receiver, on_commit):
    receiver.fail_first = 1
    create_report(on_commit)
    assert WebhookEndpoint.objects.get().failing_since is not None
    settle(on_commit)
    assert WebhookEndpoint.objects.get().failing_since is None


# --- The admin -----------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def test_the_admin_registers_an_endpoint_and_shows_the_secret_once(admin_client, category):
    response = admin_client.post(
        reverse("admin:signalements_webhookendpoint_add"),
        {"url": "https://93.184.215.14/hooks", "events": [events.CREATED], "is_active": "on"},
        follow=True,
    )

    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == [events.CREATED]
    assert endpoint.secret in response.content.decode()
    page = admin_client.get(
        reverse("admin:signalements_webhookendpoint_change", args=[endpoint.pk])
    )
    assert page.status_code == 200
    assert endpoint.secret not in page.content.decode()


def test_the_admin_refuses_a_private_address(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = admin_client.post(
        reverse("admin:signalements_webhookendpoint_add"),
        {"url": "http://192.168.0.1/", "events": [events.CREATED], "is_active": "on"},
    )
    assert response.status_code == 200
    assert "192.168.0.1" in response.context["adminform"].form.errors["url"][0]
    assert not WebhookEndpoint.objects.exists()


def test_the_admin_shows_deliveries_their_attempts_and_resends(
    admin_client, endpoint, receiver, on_commit
):
    receiver.fail_first = 1
    create_report(on_commit)
    settle(on_commit)
    delivery = WebhookDelivery.objects.get()

    changelist = reverse("admin:signalements_webhookdelivery_changelist")
    assert admin_client.get(changelist).status_code == 200
    filtered = admin_client.get(changelist, {"status__exact": "delivered"})
    assert delivery.event.type in filtered.content.decode()
    page = admin_client.get(
        reverse("admin:signalements_webhookdelivery_change", args=[delivery.pk])
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert "on purpose" in html and "HTTP 500" in html
    endpoint_page = admin_client.get(
        reverse("admin:signalements_webhookendpoint_change", args=[endpoint.pk])
    )
    assert reverse("admin:signalements_webhookdelivery_change", args=[delivery.pk]) in (
        endpoint_page.content.decode()
    )

    with on_commit():
        response = admin_client.post(
            changelist,
            {"action": "resend_deliveries", "_selected_action": [delivery.pk]},
            follow=True,
        )

    assert response.status_code == 200
    assert [r.webhook_id for r in receiver.received] == [delivery.event.event_id] * 3
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert list(delivery.attempt_log.values_list("number", flat=True)) == [1, 2, 3]


def test_agents_do_not_see_webhooks_in_the_admin(client, agent_user):
    client.force_login(agent_user)
    assert client.get(reverse("admin:signalements_webhookendpoint_changelist")).status_code == 403
    assert client.get(reverse("admin:signalements_webhookdelivery_changelist")).status_code == 403


# --- The README's verification snippets, as written -----------------------------------------


def readme_snippet(language: str) -> str:
    """The ```language block of the README's "Verifying a delivery"."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n### Verifying a delivery\n", 1)[1].split("\n### ", 1)[0]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_readmes_python_snippet_verifies_a_delivery(endpoint, receiver, on_commit):
    create_report(on_commit)
    (received,) = receiver.received
    namespace = {"secret": endpoint.secret}
    exec(readme_snippet("python"), namespace)

    assert namespace["receive"](received.body, received.headers)["type"] == events.CREATED
    forged = received.body.replace(b"created", b"updated")
    assert namespace["receive"](forged, received.headers) is None


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_the_readmes_node_snippet_verifies_a_delivery(endpoint, receiver, on_commit, tmp_path):
    create_report(on_commit)
    (received,) = receiver.received
    script = tmp_path / "verify.js"
    script.write_text(
        readme_snippet("js")
        + "\nconst input = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));\n"
        "const event = verifySignalementsWebhook(input.secret, input.headers, input.body);\n"
        "process.stdout.write(JSON.stringify(event && event.type));\n"
    )

    def verify(body: str, secret: str = endpoint.secret):
        data = {"secret": secret, "headers": received.headers, "body": body}
        done = subprocess.run(
            ["node", str(script)],
            input=json.dumps(data),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    body = received.body.decode()
    assert verify(body) == events.CREATED
    assert verify(body.replace("created", "updated")) is None
    assert verify(body, secret="whsec_" + base64.b64encode(b"k" * 32).decode()) is None


def test_a_task_run_again_takes_over_an_attempt_whose_worker_died(
    endpoint, receiver, on_commit, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        APIClient().post(reverse("signalement-list"), REPORT, format="json")
    WebhookDelivery.objects.update(
        status="delivering", delivering_since=timezone.now() - timedelta(minutes=5)
    )

    # recover_abandoned put the dead worker's task back in the queue: it runs again.
    with on_commit():
        assert webhooks.deliver.call(WebhookDelivery.objects.get().pk) == "delivered"

    log = list(WebhookDeliveryAttempt.objects.order_by("number").values_list("number", "error"))
    assert log == [(1, "interrupted: the worker stopped during the attempt"), (2, "")]


# --- The outbox does not grow forever ----------------------------------------------------


def test_finished_events_older_than_the_keep_days_are_pruned(
    endpoint, receiver, on_commit, settings
):
    settings.WEBHOOK_KEEP_DAYS = 30
    for _ in range(3):
        create_report(on_commit)
    settle(on_commit)
    old_delivered, old_pending, recent = WebhookEvent.objects.order_by("pk")
    assert old_delivered.deliveries.get().attempt_log.exists()
    # Still to deliver (its endpoint was down, say): kept, however old.
    WebhookDelivery.objects.filter(event=old_pending).update(status=WebhookDelivery.Status.PENDING)
    long_ago = timezone.now() - timedelta(days=31)
    WebhookEvent.objects.exclude(pk=recent.pk).update(created_at=long_ago)

    assert webhooks.prune_webhook_events() == 1

    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {old_pending.pk, recent.pk}
    assert not WebhookDelivery.objects.filter(event_id=old_delivered.pk).exists()
    assert not WebhookDeliveryAttempt.objects.filter(delivery__event_id=old_delivered.pk).exists()
