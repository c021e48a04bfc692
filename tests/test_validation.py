"""Bad input is a 400 naming the field, and nothing is written."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from signalements.models import Signalement

from .factories import CategoryFactory, SignalementFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("signalement-list")


def valid_payload(**overrides):
    payload = {"description": "Panne électrique", "date": "2025-04-29T16:30:00"}
    payload.update(overrides)
    return {key: value for key, value in payload.items() if value is not ...}


def errors_by_field(response) -> dict[str, list[str]]:
    body = response.json()
    assert body["type"] == "validation_error"
    fields: dict[str, list[str]] = {}
    for error in body["errors"]:
        assert set(error) == {"code", "detail", "attr"}
        fields.setdefault(error["attr"], []).append(error["code"])
    return fields


def in_one_hour():
    return (timezone.now() + dt.timedelta(hours=1)).isoformat()


@pytest.mark.parametrize(
    "overrides, field, code",
    [
        ({"description": ...}, "description", "required"),
        ({"description": ""}, "description", "blank"),
        ({"description": "   "}, "description", "blank"),
        ({"description": "x" * 4001}, "description", "max_length"),
        ({"description": "Panne\x00électrique"}, "description", "null_characters_not_allowed"),
        ({"description": 42}, "description", "invalid"),
        ({"description": ["a"]}, "description", "invalid"),
        ({"description": None}, "description", "null"),
        ({"date": ...}, "date", "required"),
        ({"date": "hier"}, "date", "invalid"),
        ({"date": "2025-02-30T10:00:00"}, "date", "invalid"),
        ({"date": 1714400000}, "date", "invalid"),
        ({"date": None}, "date", "null"),
        ({"date": in_one_hour}, "date", "future_date"),
        ({"date": "0001-01-01T00:00:00+05:00"}, "date", "overflow"),
        ({"date": "9999-12-31T23:59:59-05:00"}, "date", "overflow"),
        ({"date": "0001-01-01T00:00:00"}, "date", "overflow"),
        ({"latitude": 91, "longitude": 2}, "latitude", "max_value"),
        ({"latitude": 90.00000000000001, "longitude": 2}, "latitude", "max_value"),
        ({"latitude": 45, "longitude": -180.0000000000001}, "longitude", "min_value"),
        ({"latitude": -90.5, "longitude": 2}, "latitude", "min_value"),
        ({"latitude": 45, "longitude": 180.1}, "longitude", "max_value"),
        ({"latitude": "NaN", "longitude": 2}, "latitude", "invalid"),
        ({"latitude": "Infinity", "longitude": 2}, "latitude", "invalid"),
        ({"latitude": "quarante", "longitude": 2}, "latitude", "invalid"),
        ({"latitude": True, "longitude": 2}, "latitude", "invalid"),
        ({"latitude": 45}, "longitude", "incomplete_location"),
        ({"longitude": 2}, "latitude", "incomplete_location"),
        ({"category": "inconnue"}, "category", "does_not_exist"),
        ({"category": "pas un code!"}, "category", "does_not_exist"),
        ({"category": "a\x00b"}, "category", "does_not_exist"),
        ({"category": ["voirie"]}, "category", "invalid"),
        ({"title": "t" * 201}, "title", "max_length"),
        ({"title": False}, "title", "invalid"),
        ({"latitude": 1e30, "longitude": 2}, "latitude", "max_digits"),
        ({"address": "\x00"}, "address", "null_characters_not_allowed"),
        ({"contact_email": "pas-un-email"}, "contact_email", "invalid"),
        ({"contact_phone": "0" * 41}, "contact_phone", "max_length"),
    ],
)
def test_an_invalid_field_is_a_400_naming_it_and_nothing_is_stored(
    api_client, overrides, field, code
):
    overrides = {key: value() if callable(value) else value for key, value in overrides.items()}

    response = api_client.post(LIST_URL, valid_payload(**overrides), format="json")

    assert response.status_code == 400, response.json()
    fields = errors_by_field(response)
    assert field in fields, fields
    if code is not None:
        assert code in fields[field]
    assert not Signalement.objects.exists()


def test_a_description_of_exactly_4000_characters_is_accepted(api_client):
    response = api_client.post(LIST_URL, valid_payload(description="é" * 4000), format="json")

    assert response.status_code == 201


def test_a_date_a_little_ahead_is_tolerated_as_clock_skew(api_client):
    soon = (timezone.now() + dt.timedelta(seconds=30)).isoformat()

    response = api_client.post(LIST_URL, valid_payload(date=soon), format="json")

    assert response.status_code == 201


def test_coordinates_with_more_than_six_decimals_are_rounded(api_client):
    response = api_client.post(
        LIST_URL, valid_payload(latitude=48.11470049999, longitude=-1.68011111111), format="json"
    )

    assert response.status_code == 201
    assert response.json()["latitude"] == 48.1147
    assert response.json()["longitude"] == -1.680111


def test_an_inactive_category_cannot_receive_a_new_report(api_client):
    CategoryFactory(code="ancienne", is_active=False)

    response = api_client.post(LIST_URL, valid_payload(category="ancienne"), format="json")

    assert response.status_code == 400
    assert "category" in errors_by_field(response)


def test_a_body_that_is_not_an_object_is_a_400(api_client):
    response = api_client.post(LIST_URL, ["description"], format="json")

    assert response.status_code == 400
    assert not Signalement.objects.exists()


def test_a_lone_surrogate_in_json_is_a_400(client):
    response = client.post(
        LIST_URL,
        data='{"description": "\\ud800", "date": "2025-04-29T16:30:00"}',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert not Signalement.objects.exists()


def test_a_partial_update_removing_one_coordinate_is_refused(agent_client):
    signalement = SignalementFactory()

    response = agent_client.patch(
        reverse("signalement-detail", args=[signalement.pk]), {"latitude": None}, format="json"
    )

    assert response.status_code == 400
    assert "latitude" in errors_by_field(response)
    signalement.refresh_from_db()
    assert signalement.latitude is not None


def test_several_errors_are_reported_together(api_client):
    response = api_client.post(
        LIST_URL,
        {"description": "", "date": "demain", "latitude": 100, "longitude": 0},
        format="json",
    )

    assert response.status_code == 400
    assert {"description", "date", "latitude"} <= set(errors_by_field(response))


def test_an_invalid_choice_lists_the_valid_ones(agent_client):
    from .factories import SignalementFactory

    report = SignalementFactory()
    response = agent_client.patch(
        f"/api/signalements/{report.pk}/", {"priority": "urgente"}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["code"], error["attr"]) == ("invalid_choice", "priority")
    assert error["detail"] == (
        "«\u00a0urgente\u00a0» n’est pas un choix valide. "
        "Valeurs possibles\u00a0: low, normal, high, urgent."
    )
    moved = agent_client.post(
        f"/api/signalements/{report.pk}/transition/",
        {"status": "fini"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert moved.json()["errors"][0]["detail"].startswith(
        '"fini" is not a valid choice. Expected one of: new, acknowledged,'
    )
