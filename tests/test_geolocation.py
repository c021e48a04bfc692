"""Radius search and duplicate detection, the same on SQLite and PostgreSQL."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from signalements.geo import METRES_PER_DEGREE, haversine_m

from .factories import CategoryFactory, SignalementFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("signalement-list")
# Place Sainte-Anne, Rennes.
LAT, LON = Decimal("48.114700"), Decimal("-1.680100")


def north_of(metres: float) -> Decimal:
    """The latitude `metres` north of LAT (same longitude)."""
    return (LAT + Decimal(metres / METRES_PER_DEGREE)).quantize(Decimal("0.000001"))


def ids(client, **params):
    response = client.get(LIST_URL, params)
    assert response.status_code == 200, response.json()
    return {item["id"] for item in response.json()["results"]}


def test_haversine_matches_a_known_distance():
    # Paris (Notre-Dame) to Rennes (Place Sainte-Anne): about 308 km.
    assert haversine_m(48.853, 2.3499, 48.1147, -1.6801) == pytest.approx(308_300, rel=0.01)


def test_near_finds_the_reports_within_the_radius(api_client):
    here = SignalementFactory(latitude=LAT, longitude=LON)
    at_90 = SignalementFactory(latitude=north_of(90), longitude=LON)
    at_110 = SignalementFactory(latitude=north_of(110), longitude=LON)
    SignalementFactory(latitude=None, longitude=None)

    assert ids(api_client, near=f"{LAT},{LON}", radius=100) == {here.id, at_90.id}
    assert ids(api_client, near=f"{LAT},{LON}", radius=120) == {here.id, at_90.id, at_110.id}


def test_east_west_distances_account_for_latitude(api_client):
    # At 48°N a degree of longitude is ~2/3 of a degree of latitude.
    east = SignalementFactory(
        latitude=LAT,
        longitude=(LON + Decimal(80 / (METRES_PER_DEGREE * 0.6672))).quantize(Decimal("0.000001")),
    )

    assert ids(api_client, near=f"{LAT},{LON}", radius=85) == {east.id}
    assert ids(api_client, near=f"{LAT},{LON}", radius=75) == set()


def test_radius_zero_finds_only_the_exact_point(api_client):
    here = SignalementFactory(latitude=LAT, longitude=LON)
    SignalementFactory(latitude=north_of(1), longitude=LON)

    assert ids(api_client, near=f"{LAT},{LON}", radius=0) == {here.id}


def test_near_without_radius_uses_the_default(api_client, settings):
    close = SignalementFactory(latitude=north_of(900), longitude=LON)
    SignalementFactory(latitude=north_of(1200), longitude=LON)

    assert ids(api_client, near=f"{LAT},{LON}") == {close.id}


def test_near_combines_with_other_filters(api_client):
    new = SignalementFactory(latitude=LAT, longitude=LON, status="new")
    SignalementFactory(latitude=LAT, longitude=LON, status="resolved")

    assert ids(api_client, near=f"{LAT},{LON}", radius=10, status="new") == {new.id}


@pytest.mark.parametrize(
    "params, attr",
    [
        ({"near": "48.1"}, "near"),
        ({"near": "a,b"}, "near"),
        ({"near": "91,0"}, "near"),
        ({"near": "0,181"}, "near"),
        ({"near": "NaN,0"}, "near"),
        ({"near": "1,2,3"}, "near"),
        ({"near": "48.1,-1.6", "radius": "-1"}, "radius"),
        ({"near": "48.1,-1.6", "radius": "50001"}, "radius"),
        ({"near": "48.1,-1.6", "radius": "loin"}, "radius"),
        ({"radius": "100"}, "radius"),
    ],
)
def test_invalid_near_or_radius_is_a_400(api_client, params, attr):
    response = api_client.get(LIST_URL, params)

    assert response.status_code == 400
    assert attr in {error["attr"] for error in response.json()["errors"]}


def test_near_the_poles_and_the_antimeridian_edges_does_not_fail(api_client):
    north_pole = SignalementFactory(latitude=Decimal("90"), longitude=Decimal("0"))
    edge = SignalementFactory(latitude=Decimal("0"), longitude=Decimal("180"))

    assert ids(api_client, near="89.9999,45", radius=50) == {north_pole.id}
    assert ids(api_client, near="0,179.9999", radius=50) == {edge.id}


# --- duplicate detection -----------------------------------------------------------


@pytest.fixture
def voirie():
    return CategoryFactory(code="voirie")


def create(client, category="voirie", latitude=LAT, longitude=LON):
    return client.post(
        LIST_URL,
        {
            "description": "Nid-de-poule",
            "date": "2025-04-29T16:30:00",
            "category": category,
            "latitude": float(latitude),
            "longitude": float(longitude),
        },
        format="json",
    )


def test_possible_duplicates_are_ranked_nearest_first(api_client, voirie):
    at_40 = SignalementFactory(category=voirie, latitude=north_of(40), longitude=LON)
    at_10 = SignalementFactory(category=voirie, latitude=north_of(10), longitude=LON)
    at_25 = SignalementFactory(category=voirie, latitude=north_of(25), longitude=LON)

    body = create(api_client).json()

    assert [d["id"] for d in body["possible_duplicates"]] == [at_10.id, at_25.id, at_40.id]
    assert body["possible_duplicates"][0]["distance_m"] == pytest.approx(10, abs=0.5)
    assert body["possible_duplicates"][0]["reference"] == at_10.reference


def test_possible_duplicates_leave_out_what_does_not_match(api_client, voirie):
    SignalementFactory(category=voirie, latitude=north_of(60), longitude=LON)  # too far
    SignalementFactory(category=CategoryFactory(), latitude=LAT, longitude=LON)  # other category
    SignalementFactory(category=voirie, latitude=LAT, longitude=LON, status="resolved")  # closed
    SignalementFactory(category=voirie, latitude=LAT, longitude=LON, status="rejected")  # closed
    SignalementFactory(  # too old
        category=voirie,
        latitude=LAT,
        longitude=LON,
        created_at=timezone.now() - dt.timedelta(days=31),
    )
    SignalementFactory(category=voirie, latitude=LAT, longitude=LON, is_public=False)  # not visible
    kept = SignalementFactory(category=voirie, latitude=LAT, longitude=LON, status="in_progress")

    assert [d["id"] for d in create(api_client).json()["possible_duplicates"]] == [kept.id]


def test_at_most_five_possible_duplicates(api_client, voirie):
    SignalementFactory.create_batch(7, category=voirie, latitude=LAT, longitude=LON)

    assert len(create(api_client).json()["possible_duplicates"]) == 5


def test_no_duplicates_without_category_or_location(api_client, voirie):
    SignalementFactory(category=voirie, latitude=LAT, longitude=LON)

    without_category = api_client.post(
        LIST_URL,
        {
            "description": "x",
            "date": "2025-04-29T16:30:00",
            "latitude": 48.1147,
            "longitude": -1.6801,
        },
        format="json",
    )

    assert without_category.json()["possible_duplicates"] == []


def test_similar_lists_the_possible_duplicates_of_a_report(api_client, voirie, settings):
    settings.SIGNALEMENT_DUPLICATE_RADIUS_M = 100
    report = SignalementFactory(category=voirie, latitude=LAT, longitude=LON)
    near = SignalementFactory(category=voirie, latitude=north_of(80), longitude=LON)

    response = api_client.get(reverse("signalement-similar", args=[report.pk]))

    assert response.status_code == 200
    assert [d["id"] for d in response.json()] == [near.id]


def test_similar_of_a_hidden_report_is_a_404(api_client, voirie):
    report = SignalementFactory(category=voirie, is_public=False)

    assert api_client.get(reverse("signalement-similar", args=[report.pk])).status_code == 404


def test_agents_link_a_duplicate_and_the_admin_shows_both_sides(agent_client, admin_client, voirie):
    original = SignalementFactory(category=voirie)
    copy = SignalementFactory(category=voirie)

    response = agent_client.patch(
        reverse("signalement-detail", args=[copy.pk]), {"duplicate_of": original.pk}, format="json"
    )

    assert response.status_code == 200
    copy.refresh_from_db()
    assert copy.duplicate_of == original
    page = admin_client.get(reverse("admin:signalements_signalement_change", args=[original.pk]))
    assert copy.reference in page.content.decode()
