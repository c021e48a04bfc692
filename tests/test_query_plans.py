"""The report list's queries use indexes at scale: each request below is made through the
API on 100,000 reports in PostgreSQL, every SQL statement it runs on the reports' table is
captured, and PostgreSQL's plan for it (`EXPLAIN`, after `ANALYZE`) must not read the
table sequentially. A missing or unusable index shows here as a `Seq Scan` long before a
city's list slows down."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from signalements.api.pagination import cursor_after
from signalements.models import Signalement

from .factories import AreaFactory, CategoryFactory, DepartmentFactory, square

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans"),
]

LIST_URL = reverse("signalement-list")
REPORTS = 100_000
TABLE = Signalement._meta.db_table


@pytest.fixture
def many_reports(db):
    """100,000 reports over ten years: 8 categories, 4 departments, every status (the
    old ones mostly closed), 2 % hidden, located around Rennes; written by one INSERT …
    SELECT, then analysed."""
    categories = [CategoryFactory(code=f"cat-{n}") for n in range(8)]
    departments = [DepartmentFactory(code=f"dep-{n}") for n in range(4)]
    area = AreaFactory(code="centre", geometry=square(-1.70, 48.10, -1.66, 48.12))
    category_ids = "ARRAY[" + ",".join(str(c.pk) for c in categories) + "]"
    department_ids = "ARRAY[" + ",".join(str(d.pk) for d in departments) + "]"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {TABLE} (
                uuid, title, description, date, category_id, status, priority, latitude,
                longitude, address, media_url, extra, contact_name, contact_email,
                contact_phone, keep_routing, is_public, created_at, updated_at,
                resolved_at, due_at, version, language, department_id
            )
            SELECT
                gen_random_uuid(), 'Report ' || n, 'Panne électrique n° ' || n,
                at - interval '1 hour',
                ({category_ids})[1 + n %% 8],
                CASE WHEN n > %(recent)s THEN (ARRAY['new', 'acknowledged', 'in_progress',
                    'resolved'])[1 + n %% 4]
                     WHEN n %% 10 = 0 THEN 'rejected' ELSE 'resolved' END,
                (ARRAY['low', 'normal', 'high', 'urgent'])[1 + n %% 4],
                48.08 + (n %% 997) * 0.00007, -1.73 + (n %% 991) * 0.00012,
                '', '', '{{}}', '', '', '', false, n %% 50 <> 0, at, at,
                CASE WHEN n <= %(recent)s THEN at + interval '3 days' END,
                at + interval '5 days', 1, 'fr',
                ({department_ids})[1 + n %% 4]
            FROM (
                SELECT n, %(start)s::timestamptz + n * interval '53 minutes' AS at
                FROM generate_series(1, %(count)s) AS n
            ) AS series
            """,
            {
                "count": REPORTS,
                "recent": REPORTS - 3_000,
                "start": timezone.now() - timedelta(minutes=53 * REPORTS),
            },
        )
        through = Signalement.areas.through._meta.db_table
        cursor.execute(
            f"INSERT INTO {through} (signalement_id, area_id) SELECT id, %s FROM {TABLE} "
            "WHERE longitude BETWEEN -1.70 AND -1.66 AND latitude BETWEEN 48.10 AND 48.12",
            [area.pk],
        )
        cursor.execute("ANALYZE")
    return {"category": categories[3], "department": departments[1], "area": area}


def statements_of(client, url, params) -> list[tuple[str, tuple]]:
    """The SQL statements on the reports' table a GET runs, with their parameters."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200, response.content
    found = [
        query["sql"]
        for query in captured.captured_queries
        if TABLE in query["sql"] and query["sql"].lstrip().upper().startswith("SELECT")
    ]
    assert found, "no query on the reports' table"
    return found


def plan_of(sql: str) -> dict:
    """PostgreSQL's plan of a statement as it was run (its parameters already inlined by
    psycopg's client-side binding in `captured_queries`)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        explained = cursor.fetchone()[0]
    return (explained if isinstance(explained, list) else json.loads(explained))[0]["Plan"]


def sequential_scans(plan: dict) -> list[str]:
    """The tables a plan reads whole."""
    found = []
    if plan["Node Type"] == "Seq Scan" and plan.get("Relation Name") == TABLE:
        found.append(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found += sequential_scans(child)
    return found


def requests(data) -> dict[str, tuple[str, dict]]:
    newest = Signalement.objects.order_by("-created_at", "-id")
    deep = newest.values_list("created_at", "pk")[20 * 2_000]
    one = newest.filter(is_public=True).values_list("pk", flat=True)[50_000]
    return {
        "first page": (LIST_URL, {}),
        "page 40": (LIST_URL, {"page": 40}),
        "cursor page 2,000 pages deep": (LIST_URL, {"cursor": cursor_after(*deep)}),
        "status": (LIST_URL, {"status": "new"}),
        "status + category + bbox": (
            LIST_URL,
            {
                "status": "in_progress",
                "category": data["category"].code,
                "in_bbox": "-1.70,48.09,-1.66,48.11",
            },
        ),
        "category": (LIST_URL, {"category": data["category"].code}),
        "department": (LIST_URL, {"department": data["department"].code}),
        "area": (LIST_URL, {"area": data["area"].code, "cursor": ""}),
        "created this month": (
            LIST_URL,
            {"created_after": (timezone.now() - timedelta(days=30)).isoformat()},
        ),
        "near": (LIST_URL, {"near": "48.11,-1.68", "radius": 300}),
        "ordering=created_at, cursor": (LIST_URL, {"ordering": "created_at", "cursor": ""}),
        "detail": (reverse("signalement-detail", args=[one]), {}),
    }


@pytest.mark.parametrize("role", ["anonymous", "agent"])
def test_no_list_query_reads_the_whole_table(many_reports, role, api_client, agent_client):
    client = api_client if role == "anonymous" else agent_client
    problems = {}
    for name, (url, params) in requests(many_reports).items():
        for sql in statements_of(client, url, params):
            if sequential_scans(plan_of(sql)):
                problems[name] = sql
    assert not problems, json.dumps(problems, indent=1)
