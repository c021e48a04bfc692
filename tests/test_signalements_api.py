"""Create, read, update and delete reports; who may do what; what each one sees."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from signalements.models import Signalement

from .factories import CategoryFactory, SignalementFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("signalement-list")
PRIVATE_FIELDS = {"contact_name", "contact_email", "contact_phone"}


def detail_url(signalement):
    return reverse("signalement-detail", args=[signalement.pk])


def valid_payload(**overrides):
    payload = {
        "description": "Un nid-de-poule profond sur la voie de droite.",
        "date": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
    }
    payload.update(overrides)
    return payload


def test_a_report_with_every_optional_field_is_created(api_client):
    CategoryFactory(code="voirie")
    payload = valid_payload(
        title="Nid-de-poule",
        category="voirie",
        latitude=48.1147,
        longitude=-1.6801,
        address="Place Sainte-Anne, Rennes",
        contact_name="Léa Robert",
        contact_email="lea@example.org",
        contact_phone="06 00 00 00 00",
    )

    response = api_client.post(LIST_URL, payload, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["category"] == "voirie"
    assert body["latitude"] == 48.1147
    assert body["longitude"] == -1.6801
    assert body["reference"] == f"SIG-{timezone.localtime().year}-{body['id']:06d}"
    assert body["status"] == "new"
    assert body["priority"] == "normal"
    assert body["is_public"] is True
    stored = Signalement.objects.get(pk=body["id"])
    assert stored.contact_email == "lea@example.org"
    assert stored.latitude == Decimal("48.114700")


def test_contact_fields_given_on_create_are_not_echoed_to_an_anonymous_client(api_client):
    payload = valid_payload(contact_email="lea@example.org", contact_phone="0600000000")

    body = api_client.post(LIST_URL, payload, format="json").json()

    assert PRIVATE_FIELDS.isdisjoint(body)
    assert Signalement.objects.get(pk=body["id"]).contact_email == "lea@example.org"


def test_contact_fields_are_hidden_from_anonymous_clients_in_list_and_detail(api_client):
    signalement = SignalementFactory()

    listed = api_client.get(LIST_URL).json()["results"][0]
    detail = api_client.get(detail_url(signalement)).json()

    assert PRIVATE_FIELDS.isdisjoint(listed)
    assert PRIVATE_FIELDS.isdisjoint(detail)
    assert "camille@example.org" not in api_client.get(LIST_URL).content.decode()


def test_contact_fields_are_hidden_from_a_logged_in_non_staff_user(user_client):
    signalement = SignalementFactory()

    detail = user_client.get(detail_url(signalement)).json()

    assert PRIVATE_FIELDS.isdisjoint(detail)


def test_staff_see_contact_fields(agent_client):
    signalement = SignalementFactory()

    detail = agent_client.get(detail_url(signalement)).json()

    assert detail["contact_email"] == "camille@example.org"
    assert detail["contact_phone"] == "06 12 34 56 78"


def test_a_hidden_report_is_a_404_for_the_public_and_visible_to_staff(api_client, agent_client):
    hidden = SignalementFactory(is_public=False)
    SignalementFactory()

    assert api_client.get(detail_url(hidden)).status_code == 404
    assert api_client.get(LIST_URL).json()["count"] == 1
    assert agent_client.get(detail_url(hidden)).status_code == 200
    assert agent_client.get(LIST_URL).json()["count"] == 2


@pytest.mark.parametrize(
    "field, value",
    [
        ("id", 999),
        ("uuid", "00000000-0000-0000-0000-000000000000"),
        ("reference", "SIG-1999-000001"),
        ("status", "resolved"),
        ("priority", "urgent"),
        ("is_public", False),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("updated_at", "2020-01-01T00:00:00Z"),
        ("resolved_at", "2020-01-01T00:00:00Z"),
    ],
)
def test_server_fields_sent_by_an_anonymous_client_are_ignored(api_client, field, value):
    response = api_client.post(LIST_URL, valid_payload(**{field: value}), format="json")

    assert response.status_code == 201
    body = response.json()
    stored = Signalement.objects.get(pk=body["id"])
    assert body["id"] != 999
    assert str(stored.uuid) != "00000000-0000-0000-0000-000000000000"
    assert stored.status == "new"
    assert stored.priority == "normal"
    assert stored.is_public is True
    assert stored.resolved_at is None
    assert stored.created_at > timezone.now() - dt.timedelta(minutes=1)


def test_staff_cannot_set_the_status_by_a_plain_write(agent_client):
    signalement = SignalementFactory()

    response = agent_client.patch(detail_url(signalement), {"status": "resolved"}, format="json")

    assert response.status_code == 200
    signalement.refresh_from_db()
    assert signalement.status == "new"


def test_staff_update_a_report(agent_client):
    signalement = SignalementFactory(priority="normal")

    response = agent_client.patch(
        detail_url(signalement),
        {"priority": "urgent", "is_public": False, "title": "Lampadaire cassé"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    signalement.refresh_from_db()
    assert (signalement.priority, signalement.is_public, signalement.title) == (
        "urgent",
        False,
        "Lampadaire cassé",
    )


def test_staff_replace_a_report_with_put(agent_client):
    signalement = SignalementFactory()

    response = agent_client.put(
        detail_url(signalement), valid_payload(description="Remplacée"), format="json"
    )

    assert response.status_code == 200, response.json()
    signalement.refresh_from_db()
    assert signalement.description == "Remplacée"


def test_an_admin_deletes_a_report(superuser_client):
    signalement = SignalementFactory()

    response = superuser_client.delete(detail_url(signalement))

    assert response.status_code == 204
    assert not Signalement.objects.filter(pk=signalement.pk).exists()


def test_an_anonymous_client_cannot_change_or_delete_a_report(api_client):
    signalement = SignalementFactory(description="Avant")

    patch = api_client.patch(detail_url(signalement), {"description": "Après"}, format="json")
    delete = api_client.delete(detail_url(signalement))

    assert patch.status_code == 401
    assert patch["WWW-Authenticate"] == "Token"
    assert patch.json()["errors"][0]["code"] == "not_authenticated"
    assert delete.status_code == 401
    signalement.refresh_from_db()
    assert signalement.description == "Avant"


def test_a_logged_in_non_staff_user_cannot_change_or_delete_a_report(user_client):
    signalement = SignalementFactory(description="Avant")

    assert user_client.patch(detail_url(signalement), {"description": "x"}).status_code == 403
    assert user_client.delete(detail_url(signalement)).status_code == 403
    signalement.refresh_from_db()
    assert signalement.description == "Avant"


def test_an_unknown_report_is_a_json_404(api_client):
    response = api_client.get(reverse("signalement-detail", args=[987654]))

    assert response.status_code == 404
    assert response.json() == {
        "type": "client_error",
        "errors": [{"code": "not_found", "detail": "Introuvable.", "attr": None}],
    }


def test_a_non_numeric_id_is_a_404_not_a_500(api_client):
    assert api_client.get("/api/signalements/abc/").status_code == 404


def test_an_unknown_api_url_is_a_json_404_when_debug_is_off(client):
    response = client.get("/api/does-not-exist/")

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_a_wrong_method_is_a_json_405(agent_client):
    response = agent_client.put(LIST_URL, valid_payload(), format="json")

    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == "method_not_allowed"


def test_a_form_encoded_body_is_a_json_415(api_client):
    response = api_client.post(LIST_URL, valid_payload(), format="multipart")

    assert response.status_code == 415
    assert response.json()["errors"][0]["code"] == "unsupported_media_type"
    assert not Signalement.objects.exists()


def test_malformed_json_is_a_400(client):
    response = client.post(LIST_URL, data='{"description": ', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parse_error"


def test_nan_as_a_json_literal_is_refused(client):
    response = client.post(
        LIST_URL,
        data='{"description": "x", "date": "2025-01-01T00:00:00", "latitude": NaN, "longitude": 1}',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert not Signalement.objects.exists()


def test_anonymous_creation_is_rate_limited(api_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon_create": "2/minute"},
    }
    statuses = [
        api_client.post(LIST_URL, valid_payload(), format="json").status_code for _ in range(3)
    ]

    assert statuses == [201, 201, 429]
    assert Signalement.objects.count() == 2
    limited = api_client.post(LIST_URL, valid_payload(), format="json")
    assert int(limited["Retry-After"]) > 0
    assert limited.json()["errors"][0]["code"] == "throttled"
    # Reading is not throttled.
    assert api_client.get(LIST_URL).status_code == 200


def test_an_empty_rate_disables_the_anonymous_create_limit(api_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon_create": None},
    }
    statuses = {
        api_client.post(LIST_URL, valid_payload(), format="json").status_code for _ in range(5)
    }

    assert statuses == {201}


def test_a_link_to_a_hidden_report_is_not_shown_to_the_public(api_client, agent_client):
    hidden = SignalementFactory(is_public=False)
    visible_original = SignalementFactory()
    linked_to_hidden = SignalementFactory(duplicate_of=hidden)
    linked_to_visible = SignalementFactory(duplicate_of=visible_original)

    assert api_client.get(detail_url(linked_to_hidden)).json()["duplicate_of"] is None
    assert (
        api_client.get(detail_url(linked_to_visible)).json()["duplicate_of"] == visible_original.pk
    )
    assert agent_client.get(detail_url(linked_to_hidden)).json()["duplicate_of"] == hidden.pk
