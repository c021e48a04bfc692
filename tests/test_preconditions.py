"""No lost updates (signalements/api/preconditions.py): the detail's strong ETag, built
from the report's version and the representation's variant; `If-Match` on PUT, PATCH and
transitions (412 when stale, 428 when required and missing), checked atomically."""

import pytest
from rest_framework.test import APIClient

from signalements.models import Signalement, Status

from .factories import AttachmentFactory, CategoryFactory, SignalementFactory, UserFactory
from .live import DATABASES, LiveServer, api_token, live_database

pytestmark = pytest.mark.django_db


def detail(client, report, **headers):
    return client.get(f"/api/signalements/{report.pk}/", headers=headers)


def patch(client, report, body, **headers):
    return client.patch(f"/api/signalements/{report.pk}/", body, format="json", headers=headers)


def test_the_detail_has_a_strong_etag_from_the_reports_version(api_client):
    report = SignalementFactory()
    tag = detail(api_client, report)["ETag"]
    assert tag.startswith(f'"{report.pk}.1.') and tag.endswith('"')
    assert detail(api_client, report)["ETag"] == tag  # stable
    Signalement.objects.filter(pk=report.pk).update(title="Changé")
    assert detail(api_client, report)["ETag"].startswith(f'"{report.pk}.2.')


def test_a_write_to_another_report_leaves_the_etag_alone(api_client):
    report, other = SignalementFactory(), SignalementFactory()
    tag = detail(api_client, report)["ETag"]
    other.title = "Une autre"
    other.save()
    AttachmentFactory(signalement=other)
    assert detail(api_client, report)["ETag"] == tag


def test_a_photo_changes_the_etag(api_client):
    report = SignalementFactory()
    tag = detail(api_client, report)["ETag"]
    AttachmentFactory(signalement=report)
    assert detail(api_client, report)["ETag"] != tag


def test_the_etag_differs_by_audience_and_language(api_client, agent_client):
    report = SignalementFactory()
    public = detail(api_client, report)["ETag"]
    assert detail(agent_client, report)["ETag"] != public
    assert detail(api_client, report, **{"Accept-Language": "en"})["ETag"] != public
    other_host = api_client.get(f"/api/signalements/{report.pk}/", HTTP_HOST="localhost")
    assert other_host["ETag"] != public


def test_the_etag_follows_the_category_code_lent_by_another_table(api_client):
    category = CategoryFactory(code="voirie")
    report = SignalementFactory(category=category)
    tag = detail(api_client, report)["ETag"]
    category.code = "voirie-2"
    category.save()
    assert detail(api_client, report)["ETag"] != tag


def test_if_none_match_gets_a_304(api_client):
    report = SignalementFactory()
    tag = detail(api_client, report)["ETag"]
    assert detail(api_client, report, **{"If-None-Match": tag}).status_code == 304


def test_the_browsable_and_lean_paths_give_the_same_etag(api_client, settings):
    report = SignalementFactory()
    lean = detail(api_client, report)["ETag"]
    from signalements.api.views.reports import SignalementViewSet

    SignalementViewSet.lean_path = False
    try:
        assert detail(api_client, report)["ETag"] == lean
    finally:
        SignalementViewSet.lean_path = True


def test_a_patch_with_the_current_etag_is_made_and_answers_the_new_one(agent_client):
    report = SignalementFactory()
    tag = detail(agent_client, report)["ETag"]
    response = patch(agent_client, report, {"priority": "high"}, **{"If-Match": tag})
    assert response.status_code == 200, response.content
    assert response["ETag"] == detail(agent_client, report)["ETag"] != tag
    assert response["ETag"].startswith(f'"{report.pk}.2.')


def test_a_patch_with_a_stale_etag_is_a_412_and_writes_nothing(agent_client):
    report = SignalementFactory()
    tag = detail(agent_client, report)["ETag"]
    assert patch(agent_client, report, {"priority": "high"}, **{"If-Match": tag}).status_code == 200
    stale = patch(agent_client, report, {"priority": "low"}, **{"If-Match": tag})
    assert stale.status_code == 412
    error = stale.json()["errors"][0]
    assert (error["code"], error["attr"]) == ("precondition_failed", "If-Match")
    report.refresh_from_db()
    assert report.priority == "high"


@pytest.mark.parametrize(
    "value,made",
    [("*", True), ('"nope", {current}', True), ("W/{current}", False), ('"nope"', False)],
    ids=["any", "one-of-a-list", "weak-never-matches", "other"],
)
def test_if_match_forms(agent_client, value, made):
    report = SignalementFactory()
    current = detail(agent_client, report)["ETag"]
    response = patch(
        agent_client, report, {"title": "x"}, **{"If-Match": value.format(current=current)}
    )
    assert response.status_code == (200 if made else 412)


def test_without_if_match_a_write_is_made_as_before(agent_client):
    report = SignalementFactory()
    assert patch(agent_client, report, {"priority": "high"}).status_code == 200


def test_if_match_can_be_required(agent_client, settings):
    settings.REQUIRE_IF_MATCH = True
    report = SignalementFactory()
    missing = patch(agent_client, report, {"priority": "high"})
    assert missing.status_code == 428
    assert missing.json()["errors"][0]["attr"] == "If-Match"
    moved = agent_client.post(
        f"/api/signalements/{report.pk}/transition/", {"status": "acknowledged"}, format="json"
    )
    assert moved.status_code == 428
    report.refresh_from_db()
    assert (report.priority, report.status) == ("normal", Status.NEW)
    tag = detail(agent_client, report)["ETag"]
    assert patch(agent_client, report, {"priority": "high"}, **{"If-Match": tag}).status_code == 200


def test_a_transition_checks_if_match(agent_client):
    report = SignalementFactory()
    tag = detail(agent_client, report)["ETag"]
    url = f"/api/signalements/{report.pk}/transition/"
    moved = agent_client.post(
        url, {"status": "acknowledged"}, format="json", headers={"If-Match": tag}
    )
    assert moved.status_code == 200
    assert moved["ETag"] == detail(agent_client, report)["ETag"]
    again = agent_client.post(
        url, {"status": "in_progress"}, format="json", headers={"If-Match": tag}
    )
    assert again.status_code == 412
    report.refresh_from_db()
    assert report.status == Status.ACKNOWLEDGED


def test_a_reporter_edits_with_their_own_etag():
    reporter = UserFactory()
    client = APIClient()
    client.force_authenticate(reporter)
    report = SignalementFactory(reporter=reporter)
    tag = detail(client, report)["ETag"]
    assert patch(client, report, {"title": "Précisé"}, **{"If-Match": tag}).status_code == 200
    # The public's ETag of the same report is another representation's: not a match.
    public = detail(APIClient(), report)["ETag"]
    assert patch(client, report, {"title": "Encore"}, **{"If-Match": public}).status_code == 412


@pytest.mark.parametrize("kind", DATABASES)
@pytest.mark.django_db(transaction=False)
def test_two_concurrent_patches_from_one_read_make_one_change(kind, tmp_path):
    """Against the production server: many agents PATCH the same report at once, all
    with the ETag they read; exactly one is made, the others get a 412."""
    with live_database(kind, tmp_path) as database_url:
        server = LiveServer(database_url, workers=2)
        try:
            token = api_token(database_url, "agent")
            auth = {"Authorization": f"Token {token}"}
            status, _, created = server.request(
                "POST",
                "/api/signalements/",
                {"description": "Lampadaire éteint", "date": "2025-04-29T16:30:00+02:00"},
            )
            assert status == 201
            path = f"/api/signalements/{created['id']}/"
            _, headers, _ = server.request("GET", path, headers=auth)
            tag = headers["etag"]
            writers = 8
            results = server.at_once(
                writers,
                "PATCH",
                path,
                lambda index: {"title": f"Écrit par l'agent {index}"},
                headers={**auth, "If-Match": tag},
            )
            _, _, final = server.request("GET", path, headers=auth)
        finally:
            server.stop()
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [412] * (writers - 1), statuses
    winner = next(body for status, _, body in results if status == 200)
    assert final["title"] == winner["title"]
