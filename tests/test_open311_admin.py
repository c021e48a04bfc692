"""Open311 API keys in the admin: created with a raw key shown once, stored hashed,
revoked for good; and what a report submitted with a key shows to staff."""

import hashlib
import re
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from signalements.models import ApiKey, Signalement

from .factories import CategoryFactory, SignalementFactory, UserFactory
from .test_admin import form_date

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:signalements_apikey_changelist")
ADD = reverse("admin:signalements_apikey_add")
KEY_IN_MESSAGE = re.compile(r"<code>([A-Za-z0-9_-]{43})</code>")


def change_url(api_key):
    return reverse("admin:signalements_apikey_change", args=[api_key.pk])


def post_request(client, raw_key):
    return client.post(
        reverse("open311:requests", kwargs={"format": "json"}),
        urlencode(
            {
                "api_key": raw_key,
                "service_code": "voirie",
                "description": "Nid-de-poule",
                "address_string": "Rue de Nantes, Rennes",
            }
        ),
        content_type="application/x-www-form-urlencoded",
    )


def create_key(admin_client, user, name="Ville de Rennes"):
    response = admin_client.post(ADD, {"name": name, "user": user.pk}, follow=True)
    assert response.status_code == 200
    messages = " ".join(str(message) for message in response.context["messages"])
    match = KEY_IN_MESSAGE.search(messages)
    assert match, messages
    return ApiKey.objects.get(name=name), match.group(1), response


def test_creating_a_key_shows_the_raw_key_once_and_stores_its_hash(admin_client):
    CategoryFactory(code="voirie")
    user = UserFactory(username="ville")

    api_key, raw_key, response = create_key(admin_client, user)

    assert raw_key in response.content.decode()
    assert api_key.key_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    assert api_key.prefix == raw_key[:8]
    assert (api_key.user, api_key.is_active, api_key.revoked_at) == (user, True, None)
    # Never again: not in the list, not on the key's page.
    for page in [CHANGELIST, change_url(api_key), CHANGELIST + "?q=" + api_key.prefix]:
        content = admin_client.get(page).content.decode()
        assert raw_key not in content
        assert api_key.key_hash not in content
        assert api_key.prefix in content
    # And it works.
    assert post_request(admin_client, raw_key).status_code == 200


def test_the_list_shows_prefix_name_user_and_last_use(admin_client):
    api_key, raw_key = ApiKey.issue(name="Appli citoyenne", user=UserFactory(username="appli"))
    CategoryFactory(code="voirie")
    post_request(admin_client, raw_key)

    response = admin_client.get(CHANGELIST)

    row = response.context["cl"].result_list.get()
    assert row == api_key
    assert row.last_used_at is not None
    content = response.content.decode()
    for text in [api_key.prefix, "Appli citoyenne", "appli"]:
        assert text in content


def test_the_revoke_action_revokes_for_good(admin_client):
    CategoryFactory(code="voirie")
    api_key, raw_key = ApiKey.issue(name="Ancien prestataire", user=UserFactory())
    other, other_raw = ApiKey.issue(name="Ville", user=UserFactory())

    admin_client.post(CHANGELIST, {"action": "revoke_api_keys", "_selected_action": [api_key.pk]})

    api_key.refresh_from_db()
    assert (api_key.is_active, api_key.revoked_at is not None) == (False, True)
    assert post_request(admin_client, raw_key).status_code == 403
    assert post_request(admin_client, other_raw).status_code == 200
    # The revoked key's "active" box can no longer be ticked again.
    response = admin_client.post(
        change_url(api_key), {"name": api_key.name, "user": api_key.user_id, "is_active": "on"}
    )
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.is_active is False
    assert post_request(admin_client, raw_key).status_code == 403


def test_unticking_active_revokes(admin_client):
    api_key, raw_key = ApiKey.issue(name="Ville", user=UserFactory())

    response = admin_client.post(change_url(api_key), {"name": "Ville", "user": api_key.user_id})

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.is_active is False and api_key.revoked_at is not None


def test_agents_cannot_manage_keys(client, agent_user):
    client.force_login(agent_user)

    assert client.get(CHANGELIST).status_code == 403
    assert client.get(ADD).status_code == 403


def test_a_report_shows_the_key_it_came_with_and_its_media_url(admin_client):
    CategoryFactory(code="voirie")
    api_key, raw_key = ApiKey.issue(name="Ville de Rennes", user=UserFactory())
    post_request(admin_client, raw_key)
    report = Signalement.objects.get()
    Signalement.objects.filter(pk=report.pk).update(media_url="https://photos.example.org/1.jpg")

    response = admin_client.get(reverse("admin:signalements_signalement_change", args=[report.pk]))

    content = response.content.decode()
    assert "Ville de Rennes" in content
    assert "https://photos.example.org/1.jpg" in content


def test_the_admin_refuses_a_media_url_that_is_not_a_web_link(admin_client):
    report = SignalementFactory()
    url = reverse("admin:signalements_signalement_change", args=[report.pk])

    response = admin_client.post(
        url,
        {
            "description": report.description,
            **form_date(report),
            "priority": "normal",
            "media_url": "ftp://example.org/photo.jpg",
            **{
                f"{prefix}-{name}": value
                for prefix in ("comments", "duplicates")
                for name, value in [("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0")]
            },
        },
    )

    assert response.status_code == 200
    assert "media_url" in response.context["adminform"].form.errors
