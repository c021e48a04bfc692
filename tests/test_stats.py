"""Statistics of reports (`GET /api/signalements/stats/`): hand-computed figures, the
list's filters and visibility, and a number of queries that does not grow with the
number of reports."""

import datetime as dt
import statistics
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from signalements import stats
from signalements.models import Signalement, Status

from .factories import CategoryFactory, SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db

try:
    STATS_URL = reverse("signalement-stats")
except NoReverseMatch:  # until SignalementViewSet has its `stats` action
    pytest.skip("GET /api/signalements/stats/ is not routed yet", allow_module_level=True)
PARIS = ZoneInfo("Europe/Paris")
# The statuses' labels, in French: the default language.
STATUS_LABELS = {
    "new": "Nouveau",
    "acknowledged": "Pris en compte",
    "in_progress": "En cours",
    "resolved": "Résolu",
    "rejected": "Rejeté",
}


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


def get_stats(client, **params) -> dict:
    response = client.get(STATS_URL, params)
    assert response.status_code == 200, response.content
    return response.json()


def statuses(new=0, acknowledged=0, in_progress=0, resolved=0, rejected=0) -> list[dict]:
    counts = {
        "new": new,
        "acknowledged": acknowledged,
        "in_progress": in_progress,
        "resolved": resolved,
        "rejected": rejected,
    }
    return [
        {"status": status, "label": STATUS_LABELS[status], "count": count}
        for status, count in counts.items()
    ]


def month(name: str, created: int, resolved: int) -> dict:
    return {"month": name, "created": created, "resolved": resolved}


def unrouted(count: int, open: int = 0, overdue: int = 0) -> list[dict]:
    """`by_department` when no report has a department."""
    return [{"department": None, "name": None, "count": count, "open": open, "overdue": overdue}]


def on_time(key: str, code, name, resolved: int, in_time: int) -> dict:
    return {
        key: code,
        "name": name,
        "resolved_with_due_date": resolved,
        "on_time": in_time,
        "on_time_rate": round(in_time / resolved, 4),
    }


# The agents' figures of reports nobody gave a verdict on.
NO_VERDICTS = {"answers": 0, "fixed": 0, "rate": None, "by_category": []}


@pytest.fixture(autouse=True)
def _paris_time(settings):
    """Months are those of the server's time zone: the figures below are for Paris."""
    settings.TIME_ZONE = "Europe/Paris"


@pytest.fixture
def owner(db):
    return UserFactory(username="owner")


@pytest.fixture
def owner_client(owner):
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def reports(owner):
    """Seven reports; times are Paris time. Resolution times: C 2 h, D 24 h, and E 743 h
    (31 days across the switch to summer time on 30 March, one hour short). No category
    has a service level: each report is due OVERDUE_DAYS (7) days after its creation, so
    that C and D were resolved on time, E 575 h late (743 - 168), and the open A, B and G
    are overdue."""
    voirie = CategoryFactory(code="voirie", name="Voirie")
    eclairage = CategoryFactory(code="eclairage-public", name="Éclairage public")
    CategoryFactory(code="proprete", name="Propreté")  # no report: not listed

    def report(name, category, status, created_at, resolved_at=None, **kwargs):
        return name, SignalementFactory(
            title=name,
            category=category,
            status=status,
            created_at=created_at,
            resolved_at=resolved_at,
            **kwargs,
        )

    return dict(
        [
            report("A", voirie, "new", paris(2025, 1, 10, 10)),
            report("B", voirie, "acknowledged", paris(2025, 1, 20, 10)),
            report(
                "C",
                eclairage,
                "resolved",
                paris(2025, 1, 15, 8),
                resolved_at=paris(2025, 1, 15, 10),
            ),
            report(
                "D", eclairage, "resolved", paris(2025, 3, 1, 12), resolved_at=paris(2025, 3, 2, 12)
            ),
            report("E", voirie, "resolved", paris(2025, 3, 5, 9), resolved_at=paris(2025, 4, 5, 9)),
            report("F", None, "rejected", paris(2025, 3, 20, 12), latitude=None, longitude=None),
            # Hidden from everyone but agents and its reporter.
            report(
                "G",
                voirie,
                "in_progress",
                paris(2025, 1, 25, 18),
                is_public=False,
                reporter=owner,
            ),
        ]
    )


# --- Figures ---------------------------------------------------------------------------


def test_agents_get_every_figure_of_every_report(agent_client, reports):
    assert get_stats(agent_client) == {
        "total": 7,
        "by_status": statuses(new=1, acknowledged=1, in_progress=1, resolved=3, rejected=1),
        "by_category": [
            {"category": "voirie", "name": "Voirie", "count": 4},
            {"category": "eclairage-public", "name": "Éclairage public", "count": 2},
            {"category": None, "name": None, "count": 1},
        ],
        "by_month": [
            month("2025-01", created=4, resolved=1),
            month("2025-02", created=0, resolved=0),
            month("2025-03", created=3, resolved=1),
            month("2025-04", created=0, resolved=1),
        ],
        "median_resolution_hours": 24.0,  # of 2, 24 and 743
        "resolved_count": 3,
        "by_department": unrouted(7, open=3, overdue=3),
        "service_levels": {
            "overdue": 3,
            "resolved_with_due_date": 3,
            "on_time": 2,
            "on_time_rate": 0.6667,
            "late": 1,
            "median_lateness_hours": 575.0,
            "by_category": [
                on_time("category", "eclairage-public", "Éclairage public", 2, 2),
                on_time("category", "voirie", "Voirie", 1, 0),
            ],
            "by_department": [on_time("department", None, None, 3, 2)],
        },
        "satisfaction": NO_VERDICTS,
    }


def test_the_median_of_an_even_number_of_resolution_times_is_the_mean_of_the_middle_two(
    agent_client, reports
):
    SignalementFactory(
        status="resolved", created_at=paris(2025, 2, 3, 9), resolved_at=paris(2025, 2, 3, 19)
    )

    body = get_stats(agent_client)

    assert body["median_resolution_hours"] == 17.0  # of 2, 10, 24 and 743
    assert body["resolved_count"] == 4
    assert body["by_month"][1] == month("2025-02", created=1, resolved=1)


def test_equal_resolution_times_all_count_towards_the_median(agent_client):
    # Filters on statuses or priorities ask for DISTINCT (django-filter's default), which
    # must not merge equal durations: three reports, three durations.
    for hours in [1, 1, 5]:
        SignalementFactory(
            status="resolved",
            created_at=paris(2025, 6, 2, 8),
            resolved_at=paris(2025, 6, 2, 8 + hours),
        )

    for params in [{}, {"status": "resolved"}, {"status": "resolved", "priority": "normal"}]:
        body = get_stats(agent_client, **params)
        assert body["median_resolution_hours"] == 1.0, params
        assert body["resolved_count"] == 3


def test_one_resolved_report_is_its_own_median(agent_client):
    SignalementFactory(
        status="resolved",
        created_at=paris(2025, 5, 1, 10),
        resolved_at=paris(2025, 5, 1, 10, 45),
    )

    body = get_stats(agent_client)

    assert body["median_resolution_hours"] == 0.75
    assert body["by_month"] == [month("2025-05", created=1, resolved=1)]


def test_without_reports_every_count_is_zero(agent_client, reports):
    assert get_stats(agent_client, search="introuvable") == {
        "total": 0,
        "by_status": statuses(),
        "by_category": [],
        "by_month": [],
        "median_resolution_hours": None,
        "resolved_count": 0,
        "by_department": [],
        "service_levels": {
            "overdue": 0,
            "resolved_with_due_date": 0,
            "on_time": 0,
            "on_time_rate": None,
            "late": 0,
            "median_lateness_hours": None,
            "by_category": [],
            "by_department": [],
        },
        "satisfaction": NO_VERDICTS,
    }


def test_without_resolved_reports_there_is_no_median(agent_client, reports):
    body = get_stats(agent_client, status="new,acknowledged")

    assert body["total"] == 2
    assert body["median_resolution_hours"] is None
    assert body["resolved_count"] == 0
    assert body["by_month"] == [month("2025-01", created=2, resolved=0)]


def test_months_are_those_of_the_server_time_zone(agent_client, settings):
    # 23:30 UTC on the last day of a month is already the next month in Paris.
    SignalementFactory(
        status="resolved",
        created_at=dt.datetime(2025, 1, 31, 23, 30, tzinfo=dt.UTC),
        resolved_at=dt.datetime(2025, 2, 28, 23, 30, tzinfo=dt.UTC),
    )

    assert get_stats(agent_client)["by_month"] == [
        month("2025-02", created=1, resolved=0),
        month("2025-03", created=0, resolved=1),
    ]

    settings.TIME_ZONE = "UTC"
    assert get_stats(agent_client)["by_month"] == [
        month("2025-01", created=1, resolved=0),
        month("2025-02", created=0, resolved=1),
    ]


def reports_around_month_ends() -> list[Signalement]:
    """Reports every 20 minutes from two days before to two days after some month ends
    (UTC), resolved 5 hours after creation: they fall on both sides of every time zone's
    midnight."""
    rows = []
    for year, month_number in [(2024, 2), (2024, 12), (2025, 2), (2025, 3), (2025, 10)]:
        first = dt.datetime(year + month_number // 12, month_number % 12 + 1, 1, tzinfo=dt.UTC)
        for step in range(4 * 72):
            created_at = first + dt.timedelta(days=-2, minutes=20 * step)
            rows.append(
                Signalement(
                    description="x",
                    date=created_at,
                    created_at=created_at,
                    status="resolved",
                    resolved_at=created_at + dt.timedelta(hours=5),
                )
            )
    return Signalement.objects.bulk_create(rows)


@pytest.mark.parametrize(
    "zone",
    [
        "Europe/Paris",
        "UTC",
        "America/New_York",
        "Pacific/Kiritimati",  # UTC+14
        "Asia/Kolkata",  # UTC+5:30: months start in the middle of a UTC hour
        "Pacific/Chatham",  # UTC+12:45 / +13:45
    ],
)
def test_months_are_exact_in_every_time_zone(agent_client, settings, zone):
    settings.TIME_ZONE = zone
    rows = reports_around_month_ends()

    def month_of(value):
        return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m")

    created = Counter(month_of(row.created_at) for row in rows)
    resolved = Counter(month_of(row.resolved_at) for row in rows)
    expected = [month(name, created[name], resolved[name]) for name in created | resolved]
    assert [
        item for item in get_stats(agent_client)["by_month"] if item["created"] or item["resolved"]
    ] == sorted(expected, key=lambda item: item["month"])


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite's own month grouping")
@pytest.mark.parametrize("zone, fast", [("Europe/Paris", True), ("Asia/Kolkata", False)])
def test_sqlite_groups_months_itself_when_it_can_be_exact(settings, zone, fast):
    settings.TIME_ZONE = zone
    reports_around_month_ends()
    queryset = Signalement.objects.all()

    counts = stats._per_month_sqlite(queryset, "created_at", ZoneInfo(zone))

    assert (counts is not None) == fast
    if fast:
        assert counts == stats._per_month(Signalement.objects.all(), "created_at")


def test_months_run_across_years(agent_client):
    SignalementFactory(created_at=paris(2024, 11, 5, 12))
    SignalementFactory(created_at=paris(2025, 2, 5, 12))

    assert [item["month"] for item in get_stats(agent_client)["by_month"]] == [
        "2024-11",
        "2024-12",
        "2025-01",
        "2025-02",
    ]


def test_categories_with_as_many_reports_are_in_name_order(agent_client):
    for code, name in [("b", "Bancs"), ("a", "Arbres"), ("c", "Chaussée")]:
        SignalementFactory(category=CategoryFactory(code=code, name=name))
    SignalementFactory(category=None)
    SignalementFactory.create_batch(2, category=CategoryFactory(code="z", name="Zones"))

    assert [item["category"] for item in get_stats(agent_client)["by_category"]] == [
        "z",
        "a",
        "b",
        "c",
        None,
    ]


# --- The list's filters ----------------------------------------------------------------


def test_a_status_filter_applies_to_every_figure(agent_client, reports):
    assert get_stats(agent_client, status="resolved") == {
        "total": 3,
        "by_status": statuses(resolved=3),
        "by_category": [
            {"category": "eclairage-public", "name": "Éclairage public", "count": 2},
            {"category": "voirie", "name": "Voirie", "count": 1},
        ],
        "by_month": [
            month("2025-01", created=1, resolved=1),
            month("2025-02", created=0, resolved=0),
            month("2025-03", created=2, resolved=1),
            month("2025-04", created=0, resolved=1),
        ],
        "median_resolution_hours": 24.0,
        "resolved_count": 3,
        "by_department": unrouted(3),
        "service_levels": {
            "overdue": 0,
            "resolved_with_due_date": 3,
            "on_time": 2,
            "on_time_rate": 0.6667,
            "late": 1,
            "median_lateness_hours": 575.0,
            "by_category": [
                on_time("category", "eclairage-public", "Éclairage public", 2, 2),
                on_time("category", "voirie", "Voirie", 1, 0),
            ],
            "by_department": [on_time("department", None, None, 3, 2)],
        },
        "satisfaction": NO_VERDICTS,
    }


def test_a_category_filter_applies_to_every_figure(agent_client, reports):
    assert get_stats(agent_client, category="eclairage-public") == {
        "total": 2,
        "by_status": statuses(resolved=2),
        "by_category": [{"category": "eclairage-public", "name": "Éclairage public", "count": 2}],
        "by_month": [
            month("2025-01", created=1, resolved=1),
            month("2025-02", created=0, resolved=0),
            month("2025-03", created=1, resolved=1),
        ],
        "median_resolution_hours": 13.0,  # of 2 and 24
        "resolved_count": 2,
        "by_department": unrouted(2),
        "service_levels": {
            "overdue": 0,
            "resolved_with_due_date": 2,
            "on_time": 2,
            "on_time_rate": 1.0,
            "late": 0,
            "median_lateness_hours": None,
            "by_category": [on_time("category", "eclairage-public", "Éclairage public", 2, 2)],
            "by_department": [on_time("department", None, None, 2, 2)],
        },
        "satisfaction": NO_VERDICTS,
    }


def test_a_creation_date_filter_applies_to_every_figure(agent_client, reports):
    assert get_stats(agent_client, created_after="2025-03-01T00:00:00+01:00") == {
        "total": 3,
        "by_status": statuses(resolved=2, rejected=1),
        "by_category": [
            {"category": "eclairage-public", "name": "Éclairage public", "count": 1},
            {"category": "voirie", "name": "Voirie", "count": 1},
            {"category": None, "name": None, "count": 1},
        ],
        "by_month": [
            month("2025-03", created=3, resolved=1),
            month("2025-04", created=0, resolved=1),
        ],
        "median_resolution_hours": 383.5,  # of 24 and 743
        "resolved_count": 2,
        "by_department": unrouted(3),
        "service_levels": {
            "overdue": 0,
            "resolved_with_due_date": 2,
            "on_time": 1,
            "on_time_rate": 0.5,
            "late": 1,
            "median_lateness_hours": 575.0,
            "by_category": [
                on_time("category", "eclairage-public", "Éclairage public", 1, 1),
                on_time("category", "voirie", "Voirie", 1, 0),
            ],
            "by_department": [on_time("department", None, None, 2, 1)],
        },
        "satisfaction": NO_VERDICTS,
    }


def test_filters_combine(agent_client, reports):
    body = get_stats(
        agent_client,
        category=["voirie", "eclairage-public"],
        status="resolved,in_progress",
        created_before="2025-02-01T00:00:00+01:00",
    )

    assert body["total"] == 2  # C and G
    assert body["by_status"] == statuses(in_progress=1, resolved=1)
    assert body["median_resolution_hours"] == 2.0


def test_a_radius_search_applies(agent_client, reports):
    body = get_stats(agent_client, near="48.111,-1.68", radius=100)

    assert body["total"] == 6  # F has no location
    assert body["by_category"][-1]["category"] == "eclairage-public"


def test_the_lists_ordering_and_paging_parameters_change_nothing(agent_client, reports):
    expected = get_stats(agent_client)

    for params in [
        {"ordering": "priority"},
        {"ordering": "-status,created_at"},
        {"ordering": "not-a-field"},
        {"page": 3, "page_size": 1},
        {"page": "abc", "page_size": 0},
    ]:
        assert get_stats(agent_client, **params) == expected, params


def test_an_ordered_or_annotated_queryset_gives_the_same_figures(reports):
    """Groups must not be split by an ordering or an annotation the queryset carries."""
    expected = stats.compute(Signalement.objects.all())

    assert stats.compute(Signalement.objects.order_by("title", "-priority")) == expected
    assert stats.compute(Signalement.objects.order_by("?")) == expected
    assert stats.compute(Signalement.objects.annotate(twice=F("id") * 2).order_by("twice")) == (
        expected
    )


def test_the_queries_are_not_distinct(agent_client, reports):
    """django-filter makes a multiple-choice filter DISTINCT; the statistics do without
    it, which would make Django aggregate over a subquery of whole rows."""
    with CaptureQueriesContext(connection) as queries:
        get_stats(agent_client, status="resolved,new", priority="normal")

    assert not [query for query in queries if "DISTINCT" in query["sql"].upper()]


def test_a_distinct_queryset_counts_each_report_once(reports, agent_user):
    for report in reports.values():
        for body in ["Vu", "Revu"]:
            report.comments.create(body=body, author=agent_user, author_role="agent")

    commented = Signalement.objects.filter(comments__body__in=["Vu", "Revu"]).distinct()

    assert stats.compute(commented) == stats.compute(Signalement.objects.all())


@pytest.mark.parametrize(
    "params, attr",
    [
        ({"status": "archived"}, "status"),
        ({"category": "not a code"}, "category"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"radius": "10"}, "radius"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(agent_client, params, attr):
    response = agent_client.get(STATS_URL, params)

    assert response.status_code == 400, response.content
    assert response.json()["type"] == "validation_error"
    assert {error["attr"] for error in response.json()["errors"]} == {attr}


# --- Who sees what ---------------------------------------------------------------------


@pytest.mark.parametrize("client_name", ["api_client", "user_client"])
def test_others_get_the_figures_of_the_reports_they_can_list(request, client_name, reports):
    client = request.getfixturevalue(client_name)

    body = get_stats(client)

    assert body["total"] == 6  # not G, hidden
    assert body["by_status"] == statuses(new=1, acknowledged=1, resolved=3, rejected=1)
    assert body["by_category"][0] == {"category": "voirie", "name": "Voirie", "count": 3}
    assert body["by_month"][0] == month("2025-01", created=3, resolved=1)
    assert body["median_resolution_hours"] == 24.0
    listed = client.get(reverse("signalement-list"), {"page_size": 100}).json()["count"]
    assert body["total"] == listed


def test_reporters_figures_include_their_own_hidden_reports(owner_client, reports):
    body = get_stats(owner_client)

    assert body["total"] == 7
    assert body["by_status"][2] == {"status": "in_progress", "label": "En cours", "count": 1}


def test_stats_are_read_only(agent_client):
    assert agent_client.post(STATS_URL, {}, format="json").status_code == 405


def test_stats_is_not_a_report_id(agent_client, reports):
    """The route comes before the detail route (`/api/signalements/{id}/`)."""
    assert "total" in get_stats(agent_client)


# --- Cost ------------------------------------------------------------------------------


def test_the_number_of_queries_is_fixed(
    api_client, agent_client, reports, django_assert_max_num_queries
):
    # by status (and the service levels' totals), by category, by department, by month
    # created, by month resolved, median time to resolution, median lateness.
    with django_assert_max_num_queries(7):
        get_stats(api_client)
    # + the caller's role (group membership), the verdicts (agents only).
    with django_assert_max_num_queries(9):
        get_stats(agent_client, status="resolved,new", category="voirie")
    with django_assert_max_num_queries(5):  # nothing resolved: no median query
        get_stats(api_client, status="new")


def test_twenty_thousand_reports_take_as_many_queries_and_add_up(
    agent_client, django_assert_max_num_queries
):
    """Every 30 minutes from 1 January 2024 (UTC); one in four resolved after 1 to 7
    hours, due after 4 (but one in ten, without a due date); three categories and none.
    The expected figures are computed here, in Python, from the same rules."""
    count = 20_000
    categories = [CategoryFactory(code=f"cat-{n}", name=f"Catégorie {n}") for n in range(3)]
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    rows = []
    for n in range(count):
        created_at = start + dt.timedelta(minutes=30 * n)
        resolved = n % 4 == 0
        rows.append(
            Signalement(
                description=f"Signalement {n}",
                date=created_at,
                created_at=created_at,
                category=categories[n % 3] if n % 5 else None,
                status="resolved" if resolved else ("new", "acknowledged", "rejected")[n % 3],
                resolved_at=created_at + dt.timedelta(hours=n % 7 + 1) if resolved else None,
                due_at=created_at + dt.timedelta(hours=4) if n % 10 else None,
            )
        )
    Signalement.objects.bulk_create(rows, batch_size=2000)

    with django_assert_max_num_queries(9):
        body = get_stats(agent_client)

    def month_of(value):
        return timezone.localtime(value, PARIS).strftime("%Y-%m")

    created = Counter(month_of(row.created_at) for row in rows)
    resolved = Counter(month_of(row.resolved_at) for row in rows if row.resolved_at)
    durations = [
        (row.resolved_at - row.created_at).total_seconds() / 3600 for row in rows if row.resolved_at
    ]
    assert body["total"] == count
    assert {item["status"]: item["count"] for item in body["by_status"]} == {
        **{status: 0 for status in Status.values},
        **Counter(row.status for row in rows),
    }
    assert sum(item["count"] for item in body["by_category"]) == count
    assert body["by_month"] == [
        month(name, created=created[name], resolved=resolved[name])
        for name in sorted(created.keys() | resolved.keys())
    ]
    assert body["resolved_count"] == len(durations) == 5000
    assert body["median_resolution_hours"] == statistics.median(durations)
    with_due = [row for row in rows if row.resolved_at and row.due_at]
    lateness = [
        (row.resolved_at - row.due_at).total_seconds() / 3600
        for row in with_due
        if row.resolved_at > row.due_at
    ]
    levels = body["service_levels"]
    assert levels["resolved_with_due_date"] == len(with_due)
    assert levels["late"] == len(lateness) > 0
    assert levels["on_time"] == len(with_due) - len(lateness)
    assert levels["median_lateness_hours"] == statistics.median(lateness)
    assert levels["overdue"] == sum(
        1 for row in rows if row.due_at and row.status in ("new", "acknowledged")
    )
    assert sum(item["resolved_with_due_date"] for item in levels["by_category"]) == len(with_due)
    assert body["by_department"] == unrouted(
        count,
        open=sum(1 for row in rows if row.status in ("new", "acknowledged")),
        overdue=levels["overdue"],
    )


# --- Shared figures for anonymous callers ---------------------------------------------


def test_anonymous_callers_share_the_figures_for_a_while(api_client, agent_client, settings):
    settings.SIGNALEMENT_STATS_CACHE_SECONDS = 60
    SignalementFactory()
    assert get_stats(api_client)["total"] == 1

    SignalementFactory()

    assert get_stats(api_client)["total"] == 1  # the shared figures, until they expire
    assert get_stats(api_client, status="new")["total"] == 2  # other parameters, computed
    assert get_stats(agent_client)["total"] == 2  # agents: always fresh
    cache.clear()  # expiry
    assert get_stats(api_client)["total"] == 2


def test_the_shared_figures_are_kept_apart_by_language(api_client, settings):
    """The labels are in the caller's language: French ones are never served to a
    client that asked for English."""
    settings.SIGNALEMENT_STATS_CACHE_SECONDS = 60
    SignalementFactory(status="in_progress")

    french = get_stats(api_client)
    english = api_client.get(STATS_URL, HTTP_ACCEPT_LANGUAGE="en").json()

    assert french["by_status"][2] == {"status": "in_progress", "label": "En cours", "count": 1}
    assert english["by_status"][2] == {"status": "in_progress", "label": "In progress", "count": 1}
    assert [item["label"] for item in english["by_status"]] == [
        "New",
        "Acknowledged",
        "In progress",
        "Resolved",
        "Rejected",
    ]


def test_reporters_get_fresh_figures(user_client, settings):
    settings.SIGNALEMENT_STATS_CACHE_SECONDS = 60
    SignalementFactory()
    assert get_stats(user_client)["total"] == 1
    SignalementFactory()
    assert get_stats(user_client)["total"] == 2


def test_no_sharing_when_the_period_is_zero(api_client, settings):
    settings.SIGNALEMENT_STATS_CACHE_SECONDS = 0
    SignalementFactory()
    assert get_stats(api_client)["total"] == 1
    SignalementFactory()
    assert get_stats(api_client)["total"] == 2


def test_a_bad_filter_is_a_400_even_when_figures_are_shared(api_client, settings):
    settings.SIGNALEMENT_STATS_CACHE_SECONDS = 60
    assert api_client.get(STATS_URL, {"status": "nope"}).status_code == 400
    assert api_client.get(STATS_URL, {"status": "nope"}).status_code == 400


def test_the_shared_figures_are_keyed_by_the_filters_alone(api_client, settings):
    """Found by a security audit: any extra parameter, or any X-Reporter-Token (even an
    invalid one), skipped the shared figures, so that a script could make every call
    compute them. The key is the filters' values, as the filters read them."""
    settings.SIGNALEMENT_STATS_CACHE_SECONDS = 60
    SignalementFactory(status="new")
    assert get_stats(api_client, status="new", search="panne")["total"] == 0
    SignalementFactory(status="new", description="Panne électrique")
    same = [
        {"status": "new", "search": "panne", "nocache": "1"},
        {"status": "new", "search": "PANNE panne", "page": "3"},
        {"search": "panne", "status": "new", "ordering": "-id"},
    ]
    for params in same:
        assert get_stats(api_client, **params)["total"] == 0, params  # shared
    forged = api_client.get(
        STATS_URL, {"status": "new", "search": "panne"}, headers={"X-Reporter-Token": "forged"}
    )
    assert forged.json()["total"] == 0  # an invalid token: the public's figures
    assert get_stats(api_client, status="new", search="électrique")["total"] == 1


def test_a_valid_reporter_token_gets_fresh_figures(api_client, settings):
    settings.SIGNALEMENT_STATS_CACHE_SECONDS = 60
    created = api_client.post(
        "/api/signalements/",
        {"description": "Panne", "date": "2025-04-29T16:30:00+02:00"},
        format="json",
    ).json()
    assert get_stats(api_client)["total"] == 1
    SignalementFactory()
    mine = api_client.get(STATS_URL, headers={"X-Reporter-Token": created["reporter_token"]})
    assert mine.json()["total"] == 2


def test_searches_are_limited_to_a_few_distinct_words(api_client):
    """Found by a security audit: 100 words took 4.9 s over 200,000 reports."""
    words = " ".join(f"mot{number}" for number in range(9))
    for url in (STATS_URL, "/api/signalements/"):
        refused = api_client.get(url, {"search": words})
        assert refused.status_code == 400
        error = refused.json()["errors"][0]
        assert (error["code"], error["attr"]) == ("max_words", "search")
        # The same word a hundred times is one word.
        assert api_client.get(url, {"search": " ".join(["panne"] * 30)}).status_code == 200


def test_anonymous_statistics_and_searches_are_throttled(api_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "anon_expensive_read": "3/minute",
        },
    }
    from rest_framework.settings import api_settings

    api_settings.reload()
    try:
        statuses = [api_client.get(STATS_URL, {"status": "new"}).status_code for _ in range(3)]
        statuses.append(api_client.get("/api/signalements/", {"search": "x"}).status_code)
        assert statuses == [200, 200, 200, 429]
        # Reads that are not costly are not counted.
        assert api_client.get("/api/signalements/").status_code == 200
    finally:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK}
        api_settings.reload()


# --- Departments, service levels and the reporters' verdicts ---------------------------


@pytest.fixture
def routed(db):
    """Reports of two departments (and one of none), with due dates set by hand (times
    in Paris): "now" is 1 June 2025 at noon.

    Lighting: L1 resolved 2 h early, L2 resolved 10 h late, L3 open and overdue by a
    day, L4 open and due tomorrow. Roads: R1 resolved 30 h late, R2 resolved exactly at
    its due time (on time), R3 open without a due date. None: N1 resolved without a due
    date (counts in neither), N2 rejected past its due date (closed: not overdue)."""
    from signalements.models import Department

    lighting = Department.objects.create(code="eclairage", name="Éclairage")
    roads = Department.objects.create(code="voirie", name="Voirie")
    lamps = CategoryFactory(code="lampadaire", name="Lampadaire")
    holes = CategoryFactory(code="nid-de-poule", name="Nid-de-poule")
    made = {}

    def report(name, department, category, status, due, resolved=None):
        report = SignalementFactory(
            title=name, category=category, status=status, created_at=paris(2025, 5, 1, 8)
        )
        Signalement.objects.filter(pk=report.pk).update(
            department=department, due_at=due, resolved_at=resolved
        )
        made[name] = report

    report("L1", lighting, lamps, "resolved", paris(2025, 5, 10, 12), paris(2025, 5, 10, 10))
    report("L2", lighting, lamps, "resolved", paris(2025, 5, 10, 12), paris(2025, 5, 10, 22))
    report("L3", lighting, lamps, "in_progress", paris(2025, 5, 31, 12))
    report("L4", lighting, holes, "new", paris(2025, 6, 2, 12))
    report("R1", roads, holes, "resolved", paris(2025, 5, 20, 8), paris(2025, 5, 21, 14))
    report("R2", roads, holes, "resolved", paris(2025, 5, 20, 8), paris(2025, 5, 20, 8))
    report("R3", roads, holes, "acknowledged", None)
    report("N1", None, None, "resolved", None, paris(2025, 5, 3, 8))
    report("N2", None, None, "rejected", paris(2025, 5, 2, 8))
    return made


NOW = paris(2025, 6, 1, 12)


def test_overdue_means_open_and_past_the_due_date(routed):
    figures = stats.compute(Signalement.objects.all(), now=NOW)

    assert figures["service_levels"]["overdue"] == 1  # L3; not N2 (rejected), not L4
    assert figures["by_department"] == [
        {"department": "eclairage", "name": "Éclairage", "count": 4, "open": 2, "overdue": 1},
        {"department": "voirie", "name": "Voirie", "count": 3, "open": 1, "overdue": 0},
        {"department": None, "name": None, "count": 2, "open": 0, "overdue": 0},
    ]


def test_the_on_time_rate_by_category_and_department_and_the_median_lateness(routed):
    levels = stats.compute(Signalement.objects.all(), now=NOW)["service_levels"]

    assert levels == {
        "overdue": 1,
        "resolved_with_due_date": 4,  # not N1: no due date
        "on_time": 2,  # L1, and R2 resolved at its due time exactly
        "on_time_rate": 0.5,
        "late": 2,
        "median_lateness_hours": 20.0,  # of 10 (L2) and 30 (R1)
        "by_category": [
            on_time("category", "lampadaire", "Lampadaire", 2, 1),
            on_time("category", "nid-de-poule", "Nid-de-poule", 2, 1),
        ],
        "by_department": [
            on_time("department", "eclairage", "Éclairage", 2, 1),
            on_time("department", "voirie", "Voirie", 2, 1),
        ],
    }


def test_a_department_filter_applies_to_the_service_levels(agent_client, routed):
    """Through the API, with the list's filters (`?status=`, here)."""
    body = get_stats(agent_client, status="resolved")

    assert body["service_levels"]["resolved_with_due_date"] == 4
    assert body["service_levels"]["overdue"] == 0
    assert [item["department"] for item in body["by_department"]] == [
        "eclairage",
        "voirie",
        None,
    ]
    assert [item["count"] for item in body["by_department"]] == [2, 2, 1]


def test_the_satisfaction_rate_counts_the_reporters_verdicts_for_agents(
    agent_client, api_client, user_client, routed
):
    from signalements.models import Feedback

    def verdict(name, is_fixed, when=None):
        when = when or paris(2025, 5, 25, 9)
        Feedback.objects.create(signalement=routed[name], resolved_at=when, is_fixed=is_fixed)

    verdict("L1", True)
    verdict("L2", False)
    verdict("L2", True, when=paris(2025, 5, 28, 9))  # resolved again, answered again
    verdict("R1", True)
    verdict("N1", False)

    body = get_stats(agent_client)

    assert body["satisfaction"] == {
        "answers": 5,
        "fixed": 3,
        "rate": 0.6,
        "by_category": [
            {
                "category": "lampadaire",
                "name": "Lampadaire",
                "answers": 3,
                "fixed": 2,
                "rate": 0.6667,
            },
            {
                "category": "nid-de-poule",
                "name": "Nid-de-poule",
                "answers": 1,
                "fixed": 1,
                "rate": 1.0,
            },
            {"category": None, "name": None, "answers": 1, "fixed": 0, "rate": 0.0},
        ],
    }
    # The list's filters apply to the reports whose verdicts count.
    filtered = get_stats(agent_client, category="nid-de-poule")["satisfaction"]
    assert (filtered["answers"], filtered["fixed"]) == (1, 1)
    # The verdicts are not public.
    assert get_stats(api_client)["satisfaction"] is None
    assert get_stats(user_client)["satisfaction"] is None


def test_the_stats_of_an_agent_limited_to_their_departments(
    agent_client, agent_user, settings, routed
):
    """AGENT_SCOPE=department: the figures are those of the reports the agent can list:
    their departments' and the unrouted ones."""
    from signalements.models import Department

    settings.SIGNALEMENT_AGENT_SCOPE = "department"
    Department.objects.get(code="voirie").members.add(agent_user)

    body = get_stats(agent_client)

    assert body["total"] == 5  # R1, R2, R3, N1, N2
    assert [item["department"] for item in body["by_department"]] == ["voirie", None]
