"""Categories: read by everyone, managed by staff, referred to by code."""

import pytest
from django.urls import reverse

from signalements.models import Category

from .factories import CategoryFactory, SignalementFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("category-list")


def test_anyone_lists_the_active_categories(api_client):
    CategoryFactory(code="voirie", name="Voirie")
    CategoryFactory(code="ancienne", is_active=False)

    body = api_client.get(LIST_URL).json()

    assert [item["code"] for item in body["results"]] == ["voirie"]
    assert body["results"][0] == {
        "code": "voirie",
        "name": "Voirie",
        "description": "",
        "group": "Voirie et espace public",
        "is_active": True,
        "extra_fields": [],
    }


def test_staff_also_see_inactive_categories_and_can_filter(agent_client):
    CategoryFactory(code="voirie")
    CategoryFactory(code="ancienne", is_active=False)

    all_codes = [c["code"] for c in agent_client.get(LIST_URL).json()["results"]]
    inactive = [
        c["code"] for c in agent_client.get(LIST_URL, {"is_active": "false"}).json()["results"]
    ]

    assert sorted(all_codes) == ["ancienne", "voirie"]
    assert inactive == ["ancienne"]


def test_a_category_is_read_by_its_code(api_client):
    CategoryFactory(code="eclairage-public", name="Éclairage public")

    response = api_client.get(reverse("category-detail", args=["eclairage-public"]))

    assert response.status_code == 200
    assert response.json()["name"] == "Éclairage public"


def test_an_inactive_category_is_a_404_for_the_public(api_client):
    CategoryFactory(code="ancienne", is_active=False)

    assert api_client.get(reverse("category-detail", args=["ancienne"])).status_code == 404


def test_an_admin_creates_updates_and_deletes_a_category(superuser_client):
    created = superuser_client.post(
        LIST_URL, {"code": "graffitis", "name": "Graffitis", "group": "Propreté"}, format="json"
    )
    assert created.status_code == 201, created.json()

    url = reverse("category-detail", args=["graffitis"])
    updated = superuser_client.patch(url, {"is_active": False}, format="json")
    assert updated.status_code == 200
    assert Category.objects.get(code="graffitis").is_active is False

    assert superuser_client.delete(url).status_code == 204
    assert not Category.objects.filter(code="graffitis").exists()


@pytest.mark.parametrize(
    "payload, attr",
    [
        ({"name": "Sans code"}, "code"),
        ({"code": "pas un slug", "name": "X"}, "code"),
        ({"code": "a\x00b", "name": "X"}, "code"),
        ({"code": 12, "name": "X"}, "code"),
        ({"code": "voirie", "name": "Doublon"}, "code"),
        ({"code": "nouvelle"}, "name"),
    ],
)
def test_an_invalid_category_is_a_400_naming_the_field(superuser_client, payload, attr):
    CategoryFactory(code="voirie")

    response = superuser_client.post(LIST_URL, payload, format="json")

    assert response.status_code == 400
    assert attr in {error["attr"] for error in response.json()["errors"]}
    assert Category.objects.count() == 1


def test_a_category_in_use_cannot_be_deleted(superuser_client):
    report = SignalementFactory(category=CategoryFactory(code="voirie"))

    response = superuser_client.delete(reverse("category-detail", args=["voirie"]))

    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "category_in_use"
    report.refresh_from_db()
    assert report.category.code == "voirie"


def test_only_admins_manage_categories(api_client, user_client, agent_client):
    CategoryFactory(code="voirie")
    url = reverse("category-detail", args=["voirie"])

    assert api_client.post(LIST_URL, {"code": "x", "name": "X"}, format="json").status_code == 401
    assert user_client.post(LIST_URL, {"code": "x", "name": "X"}, format="json").status_code == 403
    assert user_client.patch(url, {"name": "Renommée"}, format="json").status_code == 403
    assert user_client.delete(url).status_code == 403
    assert agent_client.post(LIST_URL, {"code": "x", "name": "X"}, format="json").status_code == 403
    assert agent_client.delete(url).status_code == 403
    assert Category.objects.get(code="voirie").name != "Renommée"
