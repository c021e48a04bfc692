"""The domain announces every change of a report, inside the change's transaction, from
every door: the REST API, Open311, the admin, the services."""

import pytest
from django.urls import reverse

from signalements import events

from . import images
from .factories import CategoryFactory, SignalementFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    """The events emitted during the test."""
    found = []

    def record(event):
        found.append(event)

    events.LISTENERS.append(record)
    yield found
    events.LISTENERS.remove(record)


def kinds(found):
    return [event.kind for event in found]


def test_the_rest_api_announces_creates_updates_transitions_comments_photos(
    api_client, agent_client, agent_user, heard
):
    CategoryFactory(code="voirie")
    created = api_client.post(
        reverse("signalement-list"),
        {"description": "Nid-de-poule", "date": "2025-04-29T16:30:00+02:00", "category": "voirie"},
        format="json",
    ).json()
    report_url = reverse("signalement-detail", args=[created["id"]])
    agent_client.patch(report_url, {"priority": "high"}, format="json")
    agent_client.post(
        reverse("signalement-transition", args=[created["id"]]),
        {"status": "acknowledged", "note": "Vu"},
        format="json",
    )
    agent_client.post(
        reverse("signalement-comments", args=[created["id"]]),
        {"body": "Note interne", "is_internal": True},
        format="json",
    )
    from .test_attachments import upload

    assert upload(agent_client, created["id"], ("a.jpg", images.jpeg_with_gps())).status_code == 201

    assert kinds(heard) == [
        events.CREATED,
        events.UPDATED,
        events.STATUS_CHANGED,
        events.COMMENTED,
        events.ATTACHMENT_ADDED,
    ]
    assert heard[0].actor is None
    assert heard[1].data == {"fields": ["priority"]} and heard[1].actor == agent_user
    assert heard[2].data == {"from": "new", "to": "acknowledged", "note": "Vu", "notify": True}
    assert heard[3].data["is_internal"] is True
    assert len(heard[4].data["attachment_ids"]) == 1
    assert {event.report.pk for event in heard} == {created["id"]}


def test_open311_announces_its_creates(client, heard):
    from signalements.models import ApiKey

    from .factories import UserFactory

    CategoryFactory(code="voirie")
    _, raw_key = ApiKey.issue(name="Ville", user=UserFactory(username="ville"))
    response = client.post(
        "/open311/v2/requests.json",
        {
            "api_key": raw_key,
            "service_code": "voirie",
            "lat": "48.11",
            "long": "-1.68",
            "description": "Nid-de-poule",
        },
    )

    assert response.status_code == 200, response.content
    assert kinds(heard) == [events.CREATED]
    assert heard[0].report.reference == response.json()[0]["service_request_id"]
    assert heard[0].actor is None


def test_a_change_that_rolls_back_announces_nothing_that_lasts(agent_client, heard):
    """The listeners run inside the transaction: what they write goes with it."""
    report = SignalementFactory(status="new")

    response = agent_client.post(
        reverse("signalement-transition", args=[report.pk]), {"status": "resolved"}, format="json"
    )

    assert response.status_code == 409
    assert heard == []


def test_the_admin_announces_its_changes(client, agent_user, heard):
    from .test_admin import change_form

    report = SignalementFactory(status="new", priority="normal")
    client.force_login(agent_user)
    page = reverse("admin:signalements_signalement_change", args=[report.pk])
    client.post(page, change_form(report, category=report.category_id, priority="high"))
    client.post(
        reverse("admin:signalements_signalement_transition", args=[report.pk]),
        {"to_status": "acknowledged"},
    )
    client.post(
        reverse("admin:signalements_signalement_comment", args=[report.pk]),
        {"body": "Vu", "visibility": "public"},
    )
    client.post(reverse("admin:signalements_signalement_assign_to_me", args=[report.pk]))

    assert kinds(heard) == [
        events.UPDATED,
        events.STATUS_CHANGED,
        events.COMMENTED,
        events.UPDATED,
    ]
    # What the form changed (this form also clears the contact fields, moves the date…).
    assert "priority" in heard[0].data["fields"]
    assert "loaded_version" not in heard[0].data["fields"]
    assert heard[3].data == {"fields": ["assigned_to"]}
    assert all(event.actor == agent_user for event in heard)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        events.emit("signalement.exploded", None)
