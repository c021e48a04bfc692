"""The seed contract: it must hold forever, for anonymous clients with default settings."""

import pytest
from django.urls import reverse

from signalements.models import Signalement

pytestmark = pytest.mark.django_db

SEED_PAYLOAD = {"description": "Panne électrique", "date": "2025-04-29T16:30:00"}


def test_an_anonymous_client_creates_a_report_with_description_and_date(api_client):
    response = api_client.post("/api/signalements/", SEED_PAYLOAD, format="json")

    assert response.status_code == 201
    body = response.json()
    assert isinstance(body["id"], int)
    assert body["description"] == "Panne électrique"
    assert body["date"].startswith("2025-04-29T16:30:00")
    stored = Signalement.objects.get(pk=body["id"])
    assert stored.description == "Panne électrique"
    assert stored.status == "new"


def test_the_created_report_is_listed(api_client):
    created = api_client.post("/api/signalements/", SEED_PAYLOAD, format="json").json()

    response = api_client.get("/api/signalements/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 1
    listed = body["results"][0]
    assert listed["id"] == created["id"]
    assert listed["description"] == "Panne électrique"
    assert listed["date"] == created["date"]


def test_the_created_report_can_be_read_back(api_client):
    created = api_client.post("/api/signalements/", SEED_PAYLOAD, format="json").json()

    response = api_client.get(reverse("signalement-detail", args=[created["id"]]))

    assert response.status_code == 200
    assert response.json()["description"] == "Panne électrique"


def test_a_naive_date_is_read_in_the_server_time_zone_and_returned_with_its_offset(api_client):
    body = api_client.post("/api/signalements/", SEED_PAYLOAD, format="json").json()

    # Europe/Paris is UTC+2 in April.
    assert body["date"] == "2025-04-29T16:30:00+02:00"


def test_the_seed_payload_as_raw_json_bytes_is_accepted(client):
    """A plain HTTP client (not DRF's test client) posting raw JSON."""
    response = client.post(
        "/api/signalements/",
        data='{"description": "Panne électrique", "date": "2025-04-29T16:30:00"}',
        content_type="application/json",
    )

    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
