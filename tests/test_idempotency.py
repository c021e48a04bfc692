"""Safe retries (`Idempotency-Key`, signalements/idempotency.py): a write sent again
with its key happens once and answers the same; another request under the same key is a
422; a key is its caller's; nothing is kept of a request that failed; keys expire."""

import hashlib
import io
import threading
import time
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from signalements.models import ApiKey, Attachment, Comment, IdempotencyKey, Signalement, Status

from . import images
from .factories import CategoryFactory, SignalementFactory, UserFactory
from .live import DATABASES, LiveServer, live_database

pytestmark = pytest.mark.django_db

NEW_REPORT = {"description": "Panne électrique", "date": "2025-04-29T16:30:00+02:00"}


def create(client, key, body=NEW_REPORT, **extra):
    return client.post(
        "/api/signalements/", body, format="json", headers={"Idempotency-Key": key}, **extra
    )


def test_a_retried_create_answers_the_same_and_writes_once(api_client):
    key = str(uuid.uuid4())
    first = create(api_client, key)
    again = create(api_client, key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert again["Cache-Control"] == "no-store"  # the reporter's secret is in it
    assert Signalement.objects.count() == 1
    # The same report, with the same working reporter token.
    token = first.json()["reporter_token"]
    assert token and again.json()["reporter_token"] == token
    shown = api_client.patch(
        f"/api/signalements/{first.json()['id']}/",
        {"title": "Rue de Brest"},
        format="json",
        headers={"X-Reporter-Token": token},
    )
    assert shown.status_code == 200, shown.content


def test_the_reporter_token_is_not_stored_with_the_response(api_client):
    response = create(api_client, "key-1")
    token = response.json()["reporter_token"].encode()
    stored = bytes(IdempotencyKey.objects.get().body)
    assert token not in stored
    assert b"\x00reporter-token\x00" in stored
    # And the key itself is not stored either: only a digest with the caller.
    assert not IdempotencyKey.objects.filter(digest__contains="key-1").exists()


def test_a_create_without_a_key_is_not_kept(api_client):
    assert api_client.post("/api/signalements/", NEW_REPORT, format="json").status_code == 201
    assert api_client.post("/api/signalements/", NEW_REPORT, format="json").status_code == 201
    assert Signalement.objects.count() == 2
    assert not IdempotencyKey.objects.exists()


def test_the_same_data_written_otherwise_is_the_same_request(api_client):
    key = "same-data"
    first = api_client.post(
        "/api/signalements/",
        '{"description": "Panne électrique", "date": "2025-04-29T16:30:00+02:00"}',
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )
    again = api_client.post(
        "/api/signalements/",
        '{ "date":"2025-04-29T16:30:00+02:00",  "description":"Panne \\u00e9lectrique" }',
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.content == first.content


def test_the_key_of_another_request_is_a_422_and_writes_nothing(api_client):
    key = str(uuid.uuid4())
    assert create(api_client, key).status_code == 201
    other = create(api_client, key, {**NEW_REPORT, "description": "Autre chose ici"})
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert other.json()["errors"][0]["attr"] == "Idempotency-Key"
    assert Signalement.objects.count() == 1


@pytest.mark.parametrize(
    "key",
    ["", " " * 0, "x" * 256, "clé", "a\tb", "a\x00b", "\x7f"],
    ids=["empty", "empty-2", "too-long", "non-ascii", "tab", "nul", "del"],
)
def test_a_malformed_key_is_a_400_naming_the_header(api_client, key):
    response = api_client.post(
        "/api/signalements/",
        NEW_REPORT,
        format="json",
        HTTP_IDEMPOTENCY_KEY=key.encode("utf-8").decode("latin-1"),
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "Idempotency-Key"
    assert not Signalement.objects.exists()


@pytest.mark.parametrize("key", ["a", "x" * 255, " ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"])
def test_keys_are_1_to_255_printable_ascii_characters(api_client, key):
    assert create(api_client, key).status_code == 201
    assert create(api_client, key)["Idempotent-Replayed"] == "true"


def test_a_refused_request_keeps_nothing_and_the_key_stays_free(api_client):
    key = str(uuid.uuid4())
    refused = create(api_client, key, {"description": "", "date": "2025-04-29T16:30:00+02:00"})
    assert refused.status_code == 400
    assert not IdempotencyKey.objects.exists()
    fixed = create(api_client, key)
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed
    assert Signalement.objects.count() == 1


def test_a_key_belongs_to_its_caller():
    """The same key from another user, or another anonymous client, is another request:
    nobody gets someone else's response (a reporter's token, their contact)."""
    anonymous, elsewhere = APIClient(), APIClient(REMOTE_ADDR="192.0.2.7")
    first_user, second_user = APIClient(), APIClient()
    first_user.force_authenticate(UserFactory())
    second_user.force_authenticate(UserFactory())
    key = "shared-key"
    responses = [create(client, key) for client in (anonymous, elsewhere, first_user, second_user)]
    assert [response.status_code for response in responses] == [201] * 4
    assert all("Idempotent-Replayed" not in response for response in responses)
    assert Signalement.objects.count() == 4
    assert create(first_user, key)["Idempotent-Replayed"] == "true"
    assert Signalement.objects.count() == 4


def test_an_expired_key_is_a_new_request_and_expired_keys_are_pruned(api_client, settings):
    key = str(uuid.uuid4())
    assert create(api_client, key).status_code == 201
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    again = create(api_client, key)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert Signalement.objects.count() == 2
    assert IdempotencyKey.objects.count() == 1
    # Pruned on write: a few expired keys at each keyed write…
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert create(api_client, "another").status_code == 201
    assert list(IdempotencyKey.objects.values_list("expires_at", flat=True)) != []
    assert all(
        row > timezone.now() for row in IdempotencyKey.objects.values_list("expires_at", flat=True)
    )
    # …and all of them by the command.
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    out = io.StringIO()
    call_command("prune_idempotency_keys", stdout=out)
    assert not IdempotencyKey.objects.exists()
    assert "1" in out.getvalue()


def test_keys_live_as_long_as_configured(api_client, settings):
    settings.IDEMPOTENCY_KEY_TTL = timedelta(hours=2)
    before = timezone.now()
    create(api_client, "ttl")
    expires = IdempotencyKey.objects.get().expires_at
    assert before + timedelta(hours=2) <= expires <= timezone.now() + timedelta(hours=2)


def test_a_retried_comment_is_written_once(agent_client):
    report = SignalementFactory()
    url = f"/api/signalements/{report.pk}/comments/"
    body = {"body": "Équipe prévenue.", "is_internal": True}
    first = agent_client.post(url, body, format="json", headers={"Idempotency-Key": "c1"})
    again = agent_client.post(url, body, format="json", headers={"Idempotency-Key": "c1"})
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert Comment.objects.count() == 1
    # The same body on another report's comments is another request.
    other_report = SignalementFactory()
    other = agent_client.post(
        f"/api/signalements/{other_report.pk}/comments/",
        body,
        format="json",
        headers={"Idempotency-Key": "c1"},
    )
    assert other.status_code == 422
    assert Comment.objects.count() == 1
    # Reading the comments is not a write: the key does not apply.
    assert agent_client.get(url, headers={"Idempotency-Key": "c1"}).status_code == 200


def test_a_retried_transition_is_made_once(agent_client):
    report = SignalementFactory()
    url = f"/api/signalements/{report.pk}/transition/"
    body = {"status": "acknowledged", "note": "Pris en compte."}
    first = agent_client.post(url, body, format="json", headers={"Idempotency-Key": "t1"})
    again = agent_client.post(url, body, format="json", headers={"Idempotency-Key": "t1"})
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    report.refresh_from_db()
    assert report.status == Status.ACKNOWLEDGED
    # One status change in the history, not two (a second would be refused anyway).
    assert report.history.filter(status=Status.ACKNOWLEDGED).count() == 1


def multipart(boundary: str, photo: bytes) -> bytes:
    return (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="photos"; filename="lampadaire.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )


def test_a_retried_photo_upload_adds_the_photo_once(agent_client):
    """Sent again by a client that draws another multipart boundary: the same request."""
    report = SignalementFactory()
    url = f"/api/signalements/{report.pk}/attachments/"
    photo = images.encode(images.picture(), "PNG")
    responses = [
        agent_client.post(
            url,
            multipart(boundary, photo),
            content_type=f"multipart/form-data; boundary={boundary}",
            headers={"Idempotency-Key": "p1"},
        )
        for boundary in ("first-boundary", "another-boundary")
    ]
    assert [response.status_code for response in responses] == [201, 201]
    assert responses[1].content == responses[0].content
    assert responses[1]["Idempotent-Replayed"] == "true"
    assert Attachment.objects.count() == 1
    # Another photo under the same key is another request.
    other = agent_client.post(
        url,
        multipart("b", images.encode(images.picture(size=(32, 32)), "PNG")),
        content_type="multipart/form-data; boundary=b",
        headers={"Idempotency-Key": "p1"},
    )
    assert other.status_code == 422
    assert Attachment.objects.count() == 1


def test_a_retried_open311_create_is_written_once(client):
    _, raw_key = ApiKey.issue(name="Ville de Rennes", user=UserFactory())
    CategoryFactory(code="voirie", name="Voirie")
    form = {
        "api_key": raw_key,
        "service_code": "voirie",
        "lat": "48.1147",
        "long": "-1.6801",
        "description": "Lampadaire éteint depuis trois soirs.",
    }
    url = reverse("open311:requests", kwargs={"format": "json"})
    responses = [
        client.post(
            url,
            urlencode(form),
            content_type="application/x-www-form-urlencoded",
            headers={"Idempotency-Key": "o1"},
        )
        for _ in range(2)
    ]
    assert [response.status_code for response in responses] == [200, 200]
    assert responses[1].content == responses[0].content
    assert responses[1]["Idempotent-Replayed"] == "true"
    assert Signalement.objects.count() == 1
    other = client.post(
        url,
        urlencode({**form, "description": "Un autre lampadaire éteint."}),
        content_type="application/x-www-form-urlencoded",
        headers={"Idempotency-Key": "o1"},
    )
    assert other.status_code == 422
    assert other.json()[0]["code"] == 422
    assert other.json()[0]["description"].startswith("Idempotency-Key: ")


def test_the_schema_documents_the_header_and_its_errors():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    keyed = {
        (path, method)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }
    assert keyed == {
        ("/api/signalements/", "post"),
        ("/api/signalements/{id}/comments/", "post"),
        ("/api/signalements/{id}/transition/", "post"),
        ("/api/signalements/{id}/attachments/", "post"),
        ("/api/signalements/{id}/feedback/", "post"),
        ("/api/feedback/{token}/", "post"),
        ("/api/feedback/{id}/accept/", "post"),
        ("/api/feedback/{id}/refuse/", "post"),
    }
    for path, method in keyed:
        responses = schema["paths"][path][method]["responses"]
        assert {"409", "422"} <= set(responses)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL: SQLite writes one at a time"
)
@pytest.mark.django_db(transaction=True)
def test_a_retry_while_the_first_request_runs_waits_then_gets_a_409(settings):
    """The first request holds its key's row (uncommitted) longer than a retry waits."""
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.5
    user = UserFactory()
    client = APIClient()
    client.force_authenticate(user)
    key = "slow-key"
    holding, release = threading.Event(), threading.Event()

    def first_request_still_running():
        with transaction.atomic():
            IdempotencyKey.objects.create(
                digest=hashlib.sha256(f"user:{user.pk}\n{key}".encode()).hexdigest(),
                fingerprint="0" * 64,
                salt="0" * 32,
                status_code=0,
                body=b"",
                expires_at=timezone.now() + timedelta(hours=1),
            )
            holding.set()
            release.wait(10)
            transaction.set_rollback(True)  # the first request failed after all
        connection.close()

    thread = threading.Thread(target=first_request_still_running)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        retry = create(client, key)
        waited = time.monotonic() - started
        assert retry.status_code == 409, retry.content
        assert retry.json()["errors"][0]["code"] == "idempotency_key_in_use"
        assert 0.4 < waited < 5
    finally:
        release.set()
        thread.join()
    # The first request rolled back: the key is free, the next retry writes.
    assert create(client, key).status_code == 201
    assert Signalement.objects.count() == 1


CONCURRENT = 50


@pytest.mark.parametrize("kind", DATABASES)
@pytest.mark.django_db(transaction=False)
def test_concurrent_retries_against_the_server_write_one_report(kind, tmp_path):
    """50 identical keyed creates at once, on the production server: one report, 50
    identical answers (one written, 49 replayed)."""
    with live_database(kind, tmp_path) as database_url:
        server = LiveServer(database_url, workers=2)
        try:
            results = server.at_once(
                CONCURRENT,
                "POST",
                "/api/signalements/",
                NEW_REPORT,
                headers={"Idempotency-Key": "one-report-please"},
            )
            listed = server.request("GET", "/api/signalements/")
        finally:
            server.stop()
    statuses = [status for status, _, _ in results]
    assert statuses == [201] * CONCURRENT, statuses
    bodies = [body for _, _, body in results]
    assert all(body == bodies[0] for body in bodies)
    replayed = [headers.get("idempotent-replayed") for _, headers, _ in results]
    assert replayed.count("true") == CONCURRENT - 1
    assert listed[2]["count"] == 1
