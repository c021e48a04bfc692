"""Filtering, searching, ordering and pagination of the report list."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from signalements.models import Signalement

from .factories import CategoryFactory, SignalementFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("signalement-list")


def listed_ids(client, **params):
    response = client.get(LIST_URL, params)
    assert response.status_code == 200, response.json()
    return [item["id"] for item in response.json()["results"]]


def error_attrs(response):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error"
    return {error["attr"] for error in body["errors"]}


@pytest.fixture
def three_reports():
    voirie, eclairage = CategoryFactory(code="voirie"), CategoryFactory(code="eclairage-public")
    now = timezone.now()
    return [
        SignalementFactory(
            category=voirie,
            status="new",
            priority="low",
            date=now - dt.timedelta(days=10),
            created_at=now - dt.timedelta(days=9),
            title="Nid-de-poule",
            description="Trou dans la chaussée",
            address="Rue de Brest",
            latitude=Decimal("48.11"),
            longitude=Decimal("-1.69"),
        ),
        SignalementFactory(
            category=eclairage,
            status="acknowledged",
            priority="urgent",
            date=now - dt.timedelta(days=5),
            created_at=now - dt.timedelta(days=4),
            title="Lampadaire",
            description="Éteint depuis hier",
            address="Place Sainte-Anne",
            latitude=Decimal("48.12"),
            longitude=Decimal("-1.68"),
        ),
        SignalementFactory(
            category=None,
            status="resolved",
            priority="high",
            date=now - dt.timedelta(days=1),
            created_at=now - dt.timedelta(hours=20),
            title="",
            description="Panne électrique",
            address="Lyon",
            latitude=Decimal("45.76"),
            longitude=Decimal("4.83"),
        ),
    ]


def test_the_default_order_is_newest_first(api_client, three_reports):
    old, middle, new = three_reports

    assert listed_ids(api_client) == [new.id, middle.id, old.id]


def test_filter_by_one_status(api_client, three_reports):
    assert listed_ids(api_client, status="acknowledged") == [three_reports[1].id]


@pytest.mark.parametrize("query", ["status=new&status=resolved", "status=new,resolved"])
def test_filter_by_several_statuses(api_client, three_reports, query):
    response = api_client.get(f"{LIST_URL}?{query}")

    assert [item["id"] for item in response.json()["results"]] == [
        three_reports[2].id,
        three_reports[0].id,
    ]


def test_filter_by_priority(api_client, three_reports):
    assert listed_ids(api_client, priority=["urgent", "low"]) == [
        three_reports[1].id,
        three_reports[0].id,
    ]


def test_filter_by_category_code(api_client, three_reports):
    assert listed_ids(api_client, category="voirie") == [three_reports[0].id]
    assert listed_ids(api_client, category="voirie,eclairage-public") == [
        three_reports[1].id,
        three_reports[0].id,
    ]
    assert listed_ids(api_client, category="inconnue") == []


def test_filter_by_incident_date_range(api_client, three_reports):
    now = timezone.now()
    ids = listed_ids(
        api_client,
        date_after=(now - dt.timedelta(days=6)).isoformat(),
        date_before=(now - dt.timedelta(days=2)).isoformat(),
    )

    assert ids == [three_reports[1].id]


def test_filter_by_creation_date_range(api_client, three_reports):
    now = timezone.now()

    assert listed_ids(api_client, created_after=(now - dt.timedelta(days=1)).isoformat()) == [
        three_reports[2].id
    ]
    assert listed_ids(api_client, created_before=(now - dt.timedelta(days=5)).isoformat()) == [
        three_reports[0].id
    ]


def test_filter_by_bounding_box(api_client, three_reports):
    rennes = "-1.75,48.05,-1.60,48.15"

    assert listed_ids(api_client, in_bbox=rennes) == [three_reports[1].id, three_reports[0].id]
    assert listed_ids(api_client, in_bbox="4.8,45.7,4.9,45.8") == [three_reports[2].id]


def test_a_bounding_box_includes_its_edges(api_client, three_reports):
    assert listed_ids(api_client, in_bbox="-1.69,48.11,-1.69,48.11") == [three_reports[0].id]


def test_search_in_title_description_and_address(api_client, three_reports):
    assert listed_ids(api_client, search="lampadaire") == [three_reports[1].id]
    assert listed_ids(api_client, search="chaussée") == [three_reports[0].id]
    assert listed_ids(api_client, search="sainte-anne") == [three_reports[1].id]
    assert listed_ids(api_client, search="panne lyon") == [three_reports[2].id]
    assert listed_ids(api_client, search="100%_") == []


@pytest.mark.parametrize(
    "ordering, expected",
    [
        ("date", [0, 1, 2]),
        ("-date", [2, 1, 0]),
        ("created_at", [0, 1, 2]),
        ("priority", [0, 2, 1]),
        ("-priority", [1, 2, 0]),
        ("status", [1, 0, 2]),
        ("id", [0, 1, 2]),
    ],
)
def test_ordering_by_a_whitelisted_field(api_client, three_reports, ordering, expected):
    assert listed_ids(api_client, ordering=ordering) == [three_reports[i].id for i in expected]


def test_ordering_ties_are_broken_by_id(api_client):
    same_day = timezone.now() - dt.timedelta(days=1)
    reports = [SignalementFactory(date=same_day) for _ in range(3)]

    assert listed_ids(api_client, ordering="date") == [r.id for r in reports]
    assert listed_ids(api_client, ordering="-date") == [r.id for r in reversed(reports)]


@pytest.mark.parametrize(
    "params, attr",
    [
        ({"status": "open"}, "status"),
        ({"status": "new,bogus"}, "status"),
        ({"priority": "critical"}, "priority"),
        ({"category": "pas un code"}, "category"),
        ({"category": "a\x00b"}, "category"),
        ({"date_after": "hier"}, "date_after"),
        ({"date_before": "2025-13-01T00:00:00"}, "date_before"),
        ({"created_after": "0001-01-01T00:00:00+05:00"}, "created_after"),
        ({"created_before": "\x00"}, "created_before"),
        ({"in_bbox": "1,2,3"}, "in_bbox"),
        ({"in_bbox": "a,b,c,d"}, "in_bbox"),
        ({"in_bbox": "1,2,3,4,5"}, "in_bbox"),
        ({"in_bbox": "-200,0,0,10"}, "in_bbox"),
        ({"in_bbox": "0,-91,10,10"}, "in_bbox"),
        ({"in_bbox": "10,0,0,10"}, "in_bbox"),
        ({"in_bbox": "0,10,10,0"}, "in_bbox"),
        ({"in_bbox": "NaN,0,1,1"}, "in_bbox"),
        ({"in_bbox": "0,0,Infinity,1"}, "in_bbox"),
        ({"search": "pan\x00ne"}, "search"),
        ({"search": "x" * 201}, "search"),
        ({"ordering": "contact_email"}, "ordering"),
        ({"ordering": "nonsense"}, "ordering"),
        ({"page": "abc"}, "page"),
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
    ],
)
def test_an_invalid_query_parameter_is_a_400_naming_it(api_client, three_reports, params, attr):
    assert attr in error_attrs(api_client.get(LIST_URL, params))


def test_page_size_is_capped_at_100(api_client):
    SignalementFactory.create_batch(105)

    body = api_client.get(LIST_URL, {"page_size": 1000}).json()

    assert len(body["results"]) == 100
    assert body["count"] == 105


def test_pages_follow_each_other_without_gaps_or_repeats(api_client):
    same_time = timezone.now() - dt.timedelta(hours=1)
    SignalementFactory.create_batch(7, created_at=same_time)

    seen = []
    url = f"{LIST_URL}?page_size=3"
    while url:
        body = api_client.get(url).json()
        seen += [item["id"] for item in body["results"]]
        url = body["next"]

    assert sorted(seen) == sorted(Signalement.objects.values_list("id", flat=True))
    assert len(seen) == len(set(seen)) == 7


def test_a_page_past_the_end_is_a_json_404(api_client, three_reports):
    response = api_client.get(LIST_URL, {"page": 99})

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_filters_combine(api_client, three_reports):
    ids = listed_ids(
        api_client,
        status="new,acknowledged",
        in_bbox="-1.75,48.05,-1.60,48.15",
        search="lampadaire",
    )

    assert ids == [three_reports[1].id]


def test_the_list_does_not_query_per_report(
    api_client, agent_client, django_assert_max_num_queries
):
    SignalementFactory.create_batch(30)

    with django_assert_max_num_queries(4):  # count + page (category joined) + photos + areas
        assert len(api_client.get(LIST_URL, {"page_size": 30}).json()["results"]) == 30
    with django_assert_max_num_queries(5):  # + the caller's role (group membership)
        assert len(agent_client.get(LIST_URL, {"page_size": 30}).json()["results"]) == 30


def test_the_lists_filters_do_not_apply_to_one_report(api_client):
    """A report named by its id is read whatever the list's parameters say (and
    without building the filter form): `?status=` chooses among reports, it does not
    hide the one asked for."""
    report = SignalementFactory(status="new")

    response = api_client.get(f"{LIST_URL}{report.pk}/", {"status": "resolved", "page": "x"})

    assert response.status_code == 200
    assert response.json()["id"] == report.pk


def test_duplicates_do_not_query_per_report(api_client, django_assert_max_num_queries):
    original = SignalementFactory()
    SignalementFactory.create_batch(20, duplicate_of=original)

    with django_assert_max_num_queries(4):  # count, page, photos, the originals
        results = api_client.get(LIST_URL, {"page_size": 30}).json()["results"]

    assert [report["duplicate_of"] for report in results].count(original.pk) == 20
