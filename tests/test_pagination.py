"""The report list's pagination at scale: cursor (keyset) pages, the count policy and the
page numbers' depth limit (`signalements/api/pagination.py`)."""

import base64
import datetime as dt
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from signalements.api.pagination import Position, cursor_after
from signalements.api.views.reports import SignalementViewSet
from signalements.models import Signalement

from .factories import CategoryFactory, SignalementFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("signalement-list")
POSTGRESQL = connection.vendor == "postgresql"


def reports(count: int, *, start=None, step=dt.timedelta(minutes=1), **fields):
    """`count` reports created a step apart, oldest first."""
    start = start or timezone.now() - dt.timedelta(days=30)
    return [SignalementFactory(created_at=start + index * step, **fields) for index in range(count)]


def get(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    return response.json()


def walk(client, url, link="next", **params) -> list[list[int]]:
    """Every page from `url` on, following `link`: the ids of each page."""
    pages = []
    body = get(client, url, **params)
    while True:
        pages.append([item["id"] for item in body["results"]])
        if not body[link]:
            return pages
        body = get(client, body[link])


def cursor_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["cursor"][0]


def error_attrs(response) -> set[str]:
    assert response.status_code == 400, response.content
    return {error["attr"] for error in response.json()["errors"]}


# --- cursor pages -------------------------------------------------------------------------


def test_a_count_lower_than_the_rows_does_not_cut_the_page(api_client, monkeypatch):
    # The count is read apart from the page (another statement, the counters, or an
    # estimate): a report committed between the two must not push another off the page.
    SignalementFactory.create_batch(3, is_public=True)
    monkeypatch.setattr("signalements.api.pagination.Rows.count", lambda rows: 1)

    page = api_client.get(reverse("signalement-list")).json()

    assert page["count"] == 1
    assert len(page["results"]) == 3


def test_an_empty_cursor_gives_the_first_page_without_a_count(api_client):
    reports(5)
    body = get(api_client, LIST_URL, cursor="", page_size=2)
    assert set(body) == {"next", "previous", "results"}
    assert body["previous"] is None
    newest = list(Signalement.objects.values_list("pk", flat=True)[:2])
    assert [item["id"] for item in body["results"]] == newest


def test_next_links_walk_every_report_once_in_the_lists_order(api_client):
    reports(11)
    pages = walk(api_client, LIST_URL, cursor="", page_size=3)
    assert [len(page) for page in pages] == [3, 3, 3, 2]
    walked = [pk for page in pages for pk in page]
    assert walked == list(Signalement.objects.values_list("pk", flat=True))
    numbered = [item["id"] for item in get(api_client, LIST_URL, page_size=100)["results"]]
    assert walked == numbered


def test_previous_links_walk_back_through_the_same_pages(api_client):
    reports(10)
    forward = walk(api_client, LIST_URL, cursor="", page_size=3)
    last = get(api_client, LIST_URL, cursor="", page_size=3)
    while last["next"]:
        last = get(api_client, last["next"])
    backward = [[item["id"] for item in last["results"]]]
    body = last
    while body["previous"]:
        body = get(api_client, body["previous"])
        backward.append([item["id"] for item in body["results"]])
    assert backward == list(reversed(forward))
    assert body["previous"] is None  # back at the first page


def test_reports_sharing_a_creation_time_are_all_walked_once(api_client):
    same = timezone.now() - dt.timedelta(days=1)
    tied = [SignalementFactory(created_at=same) for _ in range(7)]
    reports(3)
    walked = [pk for page in walk(api_client, LIST_URL, cursor="", page_size=2) for pk in page]
    assert sorted(walked) == sorted(Signalement.objects.values_list("pk", flat=True))
    assert len(walked) == len(set(walked)) == 10
    assert [pk for pk in walked if pk in {r.pk for r in tied}] == sorted(
        (r.pk for r in tied), reverse=True
    )


def test_pages_hold_still_while_reports_are_created(api_client):
    """New reports (newest first: they come before the cursor) neither shift the next
    pages nor appear in them; with page numbers, each would push a report onto the next
    page a second time."""
    reports(9)
    before = list(Signalement.objects.values_list("pk", flat=True))
    first = get(api_client, LIST_URL, cursor="", page_size=3)
    seen = [item["id"] for item in first["results"]]
    body = first
    created = []
    while body["next"]:
        created += reports(2, start=timezone.now())  # meanwhile, two newer reports
        body = get(api_client, body["next"])
        seen += [item["id"] for item in body["results"]]
    assert seen == before
    assert not set(seen) & {report.pk for report in created}


@pytest.mark.skipif(not POSTGRESQL, reason="concurrent writers: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_pages_hold_still_under_concurrent_inserts(api_client):
    """Writers in other connections, committing while the client pages: every report
    that existed when the walk started is walked exactly once."""
    reports(30)
    before = list(Signalement.objects.values_list("pk", flat=True))
    stop = threading.Event()

    def write():
        try:
            while not stop.is_set():
                SignalementFactory()
        finally:
            connection.close()

    writers = [threading.Thread(target=write) for _ in range(2)]
    for writer in writers:
        writer.start()
    try:
        walked = [pk for page in walk(api_client, LIST_URL, cursor="", page_size=4) for pk in page]
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert Signalement.objects.count() > len(before)  # the writers did write
    assert len(walked) == len(set(walked))
    assert [pk for pk in walked if pk in set(before)] == before


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("created_at", ("created_at", "id")),
        ("-id", ("-id",)),
        ("id", ("id",)),
        ("-created_at", ("-created_at", "-id")),
    ],
)
def test_a_cursor_follows_the_orderings_on_a_unique_key(api_client, ordering, expected):
    same = timezone.now() - dt.timedelta(hours=5)
    [SignalementFactory(created_at=same) for _ in range(3)]
    reports(5, start=timezone.now() - dt.timedelta(days=2), step=dt.timedelta(hours=7))
    walked = walk(api_client, LIST_URL, cursor="", page_size=2, ordering=ordering)
    walked = [pk for page in walked for pk in page]
    assert walked == list(Signalement.objects.order_by(*expected).values_list("pk", flat=True))


def test_an_ordering_without_an_index_to_walk_is_refused_with_cursors(api_client):
    response = api_client.get(LIST_URL, {"cursor": "", "ordering": "priority"})
    assert error_attrs(response) == {"cursor"}
    assert response.json()["errors"][0]["code"] == "unsupported_ordering"


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        base64.urlsafe_b64encode(b"x|2026-01-01T00:00:00+00:00|1").decode(),
        base64.urlsafe_b64encode(b"a|2026-01-01T00:00:00|1").decode(),  # naive
        base64.urlsafe_b64encode(b"a|0001-01-01T00:00:00+05:00|1").decode(),
        base64.urlsafe_b64encode(b"a|2026-01-01T00:00:00+00:00|-1").decode(),
        base64.urlsafe_b64encode(b"a|2026-01-01T00:00:00+00:00").decode(),
        base64.urlsafe_b64encode("a|\u00e9|1".encode()).decode(),
        "\x00",
    ],
)
def test_a_forged_cursor_is_a_400_naming_it(api_client, cursor):
    reports(2)
    assert error_attrs(api_client.get(LIST_URL, {"cursor": cursor})) == {"cursor"}


def test_a_date_cursor_does_not_walk_an_id_ordering(api_client):
    reports(2)
    date_cursor = cursor_after(timezone.now(), 5)
    response = api_client.get(LIST_URL, {"cursor": date_cursor, "ordering": "id"})
    assert error_attrs(response) == {"cursor"}


def test_cursor_after_starts_a_page_anywhere(api_client):
    made = reports(8)
    sixth_newest = made[-6]
    body = get(api_client, LIST_URL, cursor=cursor_after(sixth_newest.created_at, sixth_newest.pk))
    assert [item["id"] for item in body["results"]] == [report.pk for report in made[-7::-1]]
    assert body["previous"]
    assert Position.decode(cursor_of(body["previous"]), by_date=True).before


def test_links_keep_the_filters_and_drop_the_page_number(api_client):
    voirie = CategoryFactory(code="voirie")
    reports(5, category=voirie)
    reports(5)
    body = get(api_client, LIST_URL, cursor="", page_size=2, category="voirie", page=3)
    query = parse_qs(urlsplit(body["next"]).query)
    assert query["category"] == ["voirie"] and "page" not in query
    walked = [
        pk
        for page in walk(api_client, LIST_URL, cursor="", page_size=2, category="voirie")
        for pk in page
    ]
    assert sorted(walked) == sorted(
        Signalement.objects.filter(category=voirie).values_list("pk", flat=True)
    )


def test_past_the_end_a_cursor_page_is_empty_and_leads_back(api_client):
    made = reports(3)
    oldest = made[0]
    body = get(api_client, LIST_URL, cursor=cursor_after(oldest.created_at, oldest.pk))
    assert body["results"] == [] and body["next"] is None
    back = get(api_client, body["previous"])  # the reports ahead of the cursor's
    assert [item["id"] for item in back["results"]] == [report.pk for report in made[:0:-1]]


def test_the_hidden_reports_stay_hidden_in_cursor_pages(api_client, agent_client):
    reports(3)
    hidden = reports(2, is_public=False)
    public = [pk for page in walk(api_client, LIST_URL, cursor="") for pk in page]
    assert not set(public) & {report.pk for report in hidden}
    everything = [pk for page in walk(agent_client, LIST_URL, cursor="") for pk in page]
    assert len(everything) == 5


def test_cursor_pages_are_the_same_on_the_lean_and_drf_paths(agent_client, monkeypatch):
    reports(6)
    voirie = CategoryFactory(code="voirie")
    reports(3, category=voirie, start=timezone.now() - dt.timedelta(days=3))
    for params in ({"cursor": "", "page_size": 4}, {"cursor": "", "category": "voirie"}):
        lean = agent_client.get(LIST_URL, params)
        monkeypatch.setattr(SignalementViewSet, "lean_path", False)
        drf = agent_client.get(LIST_URL, params)
        monkeypatch.setattr(SignalementViewSet, "lean_path", True)
        assert lean.status_code == drf.status_code == 200
        assert lean.json() == drf.json()
        next_lean = agent_client.get(lean.json()["next"]) if lean.json()["next"] else None
        if next_lean is not None:
            assert next_lean.status_code == 200


def test_a_cursor_page_in_geojson(api_client):
    reports(3, latitude="48.11", longitude="-1.68")
    response = api_client.get(LIST_URL, {"cursor": "", "page_size": 2, "format": "geojson"})
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 2
    assert body["next"] and "count" not in body


# --- the count policy ---------------------------------------------------------------------


def test_a_small_list_is_counted_exactly(api_client):
    reports(4)
    response = api_client.get(LIST_URL)
    assert response.json()["count"] == 4
    assert response["X-Count"] == "exact"


def test_beyond_the_exact_bound_the_count_is_an_estimate_on_postgresql(api_client, settings):
    """A filter the maintained counters do not keep (a place): counted up to the bound,
    then estimated."""
    settings.LIST_COUNT_EXACT_MAX = 3
    reports(6, latitude="48.11", longitude="-1.68")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if POSTGRESQL else "ANALYZE signalements_signalement")
    box = {"in_bbox": "-1.7,48.1,-1.6,48.2", "page_size": 2}
    response = api_client.get(LIST_URL, box)
    assert response.status_code == 200
    if POSTGRESQL:
        assert response["X-Count"] == "estimate"
        assert response.json()["count"] >= 4  # past the bound: never below it
    else:  # SQLite keeps no estimate: it counts
        assert response["X-Count"] == "exact"
        assert response.json()["count"] == 6
    exact = api_client.get(LIST_URL, {**box, "count": "exact"})
    assert exact["X-Count"] == "exact" and exact.json()["count"] == 6


@pytest.mark.parametrize("role", ["anonymous", "agent"])
def test_the_maintained_counters_count_the_common_filters_exactly(
    api_client, agent_client, settings, role
):
    """Beyond the bound, the rollup's counters (by visibility, status, category,
    department) give the exact count in one small query, whatever the table's size."""
    settings.LIST_COUNT_EXACT_MAX = 2
    voirie = CategoryFactory(code="voirie")
    reports(4, category=voirie, status="new")
    reports(3, category=voirie, status="resolved", is_public=False)
    reports(5)
    client = api_client if role == "anonymous" else agent_client
    visible = (
        Signalement.objects.all() if role == "agent" else Signalement.objects.filter(is_public=True)
    )
    for params, expected in (
        ({}, visible),
        ({"category": "voirie"}, visible.filter(category=voirie)),
        ({"status": "new,resolved"}, visible.filter(status__in=["new", "resolved"])),
        ({"category": "voirie", "ordering": "-id"}, visible.filter(category=voirie)),
        ({"category": "nothing-here"}, visible.none()),
    ):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(LIST_URL, params)
        assert response.status_code == 200, response.content
        assert response["X-Count"] == "exact", params
        assert response.json()["count"] == expected.count(), params
        counted = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
        assert not any("signalements_signalement" in sql for sql in counted), counted


def test_filtered_lists_follow_the_same_policy(api_client, settings):
    settings.LIST_COUNT_EXACT_MAX = 3
    voirie = CategoryFactory(code="voirie")
    reports(2, category=voirie)
    reports(5)
    small = api_client.get(LIST_URL, {"category": "voirie"})
    assert small.json()["count"] == 2 and small["X-Count"] == "exact"
    exact = api_client.get(LIST_URL, {"search": "a", "count": "exact"})
    assert exact["X-Count"] == "exact"
    assert exact.json()["count"] == Signalement.objects.filter(description__icontains="a").count()


def test_an_unknown_count_mode_is_a_400(api_client):
    assert error_attrs(api_client.get(LIST_URL, {"count": "fast"})) == {"count"}


def test_the_drf_path_counts_under_the_same_policy(agent_client, settings, monkeypatch):
    settings.LIST_COUNT_EXACT_MAX = 2
    reports(5, latitude="48.11", longitude="-1.68")
    monkeypatch.setattr(SignalementViewSet, "lean_path", False)
    box = {"in_bbox": "-1.7,48.1,-1.6,48.2"}
    response = agent_client.get(LIST_URL, {**box, "count": "exact"})
    assert response.json()["count"] == 5 and response["X-Count"] == "exact"
    assert agent_client.get(LIST_URL, box)["X-Count"] == ("estimate" if POSTGRESQL else "exact")
    counted = agent_client.get(LIST_URL)  # the maintained counters: exact
    assert counted.json()["count"] == 5 and counted["X-Count"] == "exact"


def test_page_numbers_stop_at_the_offset_limit(api_client, settings):
    settings.LIST_MAX_OFFSET = 10
    reports(3)
    assert api_client.get(LIST_URL, {"page": 2, "page_size": 5}).status_code == 404
    response = api_client.get(LIST_URL, {"page": 3, "page_size": 5})
    assert error_attrs(response) == {"page"}
    assert "cursor" in response.json()["errors"][0]["detail"]
    assert response.json()["errors"][0]["code"] == "max_value"
