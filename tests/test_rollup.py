"""The rollup of reports (`signalements/rollup.py`): kept exact by the database whoever
writes, read by the statistics with the same figures as the reports give, and safe
under concurrent writers on PostgreSQL."""

import datetime as dt
import random
import re
import threading
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from signalements import rollup, services, stats, triggers
from signalements.api.serializers import SignalementStatsSerializer
from signalements.models import Department, Signalement, Status

from .factories import CategoryFactory, SignalementFactory

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
STATS_URL = reverse("signalement-stats")
NOW = dt.datetime(2025, 6, 1, 12, tzinfo=PARIS)


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


def microseconds(delta: dt.timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def expected_rollup() -> dict[tuple, tuple[int, int, int]]:
    """The rollup as it should be, computed here in Python from the reports."""
    tz = ZoneInfo(django_settings.TIME_ZONE)

    def month(value):
        if value is None:
            return 0
        local = value.astimezone(tz)
        return local.year * 100 + local.month

    rows = defaultdict(lambda: [0, 0, 0])
    for report in Signalement.objects.values(*rollup.REPORT_COLUMNS):
        created, resolved, due = report["created_at"], report["resolved_at"], report["due_at"]
        common = (
            bool(report["is_public"]),
            report["status"],
            report["category_id"] or 0,
            report["department_id"] or 0,
        )
        counts = rows[("c", month(created), *common, month(resolved), 0)]
        counts[0] += 1
        counts[1] += due is not None
        counts[2] += resolved is not None and due is not None and resolved <= due
        if resolved is not None:
            bucket = rollup.bucket_of(microseconds(resolved - created))
            rows[("r", 0, *common, 0, bucket)][0] += 1
            if due is not None and resolved > due:
                bucket = rollup.bucket_of(microseconds(resolved - due))
                rows[("l", 0, *common, 0, bucket)][0] += 1
    return {key: tuple(value) for key, value in rows.items()}


def actual_rollup(using: str = "default") -> dict[tuple, tuple[int, int, int]]:
    """The rollup and its pending changes, summed by key (keys at zero left out)."""
    key = ", ".join(rollup.ROLLUP_KEY)
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT {key}, SUM(n), SUM(due), SUM(on_time) FROM (SELECT * FROM {rollup.ROLLUP} "
            f"UNION ALL SELECT * FROM {rollup.DELTA}) t GROUP BY {key}"
        )
        rows = cursor.fetchall()
    found = {}
    for row in rows:
        kind, created, public, status, category, department, resolved, bucket = row[:8]
        measures = tuple(int(value) for value in row[8:])
        if any(measures):
            found[(kind, created, bool(public), status, category, department, resolved, bucket)] = (
                measures
            )
    return found


def stored(value: dt.datetime):
    """A datetime as the database stores it (SQLite: UTC text), for raw SQL."""
    return connection.ops.adapt_datetimefield_value(value)


def assert_rollup_exact():
    assert actual_rollup() == expected_rollup()


@pytest.fixture
def categories(db):
    return [
        CategoryFactory(code="voirie", name="Voirie"),
        CategoryFactory(code="eclairage", name="Éclairage public"),
        CategoryFactory(code="proprete", name="Propreté"),
    ]


@pytest.fixture
def departments(db):
    return [
        Department.objects.create(code="roads", name="Roads"),
        Department.objects.create(code="lights", name="Lights"),
    ]


# --- Kept exact by every kind of write --------------------------------------------------


def test_the_rollup_is_built_for_the_server_time_zone():
    assert rollup.state() == django_settings.TIME_ZONE
    assert triggers.rollup_names(connection.vendor) <= triggers.existing(connection)


def test_every_kind_of_write_keeps_the_rollup_exact(
    api_client, agent_client, categories, departments
):
    # Created through the API (routing sets its due date).
    created = api_client.post(
        "/api/signalements/",
        {
            "description": "Nid-de-poule",
            "date": "2025-04-29T16:30:00+02:00",
            "category": "voirie",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    report = Signalement.objects.get()
    assert_rollup_exact()

    # Moved through the workflow (through the API, then by the service).
    url = reverse("signalement-transition", args=[report.pk])
    assert agent_client.post(url, {"status": "acknowledged"}, format="json").status_code == 200
    assert_rollup_exact()
    services.transition(signalement=Signalement.objects.get(pk=report.pk), to_status="resolved")
    assert_rollup_exact()

    # Another category, hidden then shown (agents' PATCH).
    detail = reverse("signalement-detail", args=[report.pk])
    for change in [{"category": "eclairage"}, {"is_public": False}, {"is_public": True}]:
        tag = agent_client.get(detail)["ETag"]
        response = agent_client.patch(detail, change, format="json", headers={"If-Match": tag})
        assert response.status_code == 200, response.content
        assert_rollup_exact()

    # In bulk, by hand, in raw SQL.
    SignalementFactory.create_batch(3, category=categories[2])
    Signalement.objects.bulk_create(
        Signalement(
            description=f"Import {n}",
            date=paris(2024, 12, 31, 23, 59),
            created_at=paris(2024, 12, 31, 23, 59, 59, 999999) + dt.timedelta(microseconds=n),
            status="resolved",
            resolved_at=paris(2025, 1, 2, 8) + dt.timedelta(minutes=n),
            due_at=paris(2025, 1, 1, 8),
            department=departments[n % 2],
            is_public=bool(n % 3),
        )
        for n in range(6)
    )
    assert_rollup_exact()
    Signalement.objects.filter(status="new").update(department=departments[0], due_at=NOW)
    assert_rollup_exact()
    Signalement.objects.filter(department=departments[1]).update(status="in_progress")
    assert_rollup_exact()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {rollup.REPORT} (uuid, title, description, date, status, priority, "
            "address, media_url, extra, contact_name, contact_email, contact_phone, "
            "keep_routing, is_public, created_at, updated_at, resolved_at, version, language) "
            "VALUES (%s, '', 'Brut', %s, 'resolved', 'normal', '', '', '{}', '', '', '', "
            "%s, %s, %s, %s, %s, 1, 'fr')",
            [
                "0b5e6c1e-8a1f-4c9e-9a57-3c1d2f0e4a11",
                stored(paris(2025, 3, 30, 1, 30)),
                False,
                True,
                stored(paris(2025, 3, 31, 23, 30)),
                stored(paris(2025, 3, 31, 23, 30)),
                stored(paris(2025, 3, 30, 1, 30)),  # resolved before it was created
            ],
        )
    assert_rollup_exact()

    # Deleted, one and many.
    Signalement.objects.get(pk=report.pk).delete()
    assert_rollup_exact()
    Signalement.objects.filter(category=categories[2]).delete()
    assert_rollup_exact()
    # A department deleted: its reports are no one's (SET_NULL, an update).
    departments[0].delete()
    assert_rollup_exact()


def test_a_rolled_back_write_leaves_no_trace(categories):
    SignalementFactory(category=categories[0])
    before = actual_rollup()
    with pytest.raises(RuntimeError), transaction.atomic():
        SignalementFactory.create_batch(2, category=categories[1])
        Signalement.objects.update(status="rejected")
        raise RuntimeError
    assert actual_rollup() == before == expected_rollup()


def test_compaction_keeps_the_figures_and_empties_the_changes(categories):
    reports = SignalementFactory.create_batch(5, category=categories[0])
    Signalement.objects.filter(pk=reports[0].pk).update(status="rejected")
    reports[1].delete()
    before = actual_rollup()

    rollup.compact()

    assert actual_rollup() == before == expected_rollup()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {rollup.DELTA}")
        assert cursor.fetchone()[0] == 0
        cursor.execute(f"SELECT COUNT(*) FROM {rollup.ROLLUP} WHERE n = 0 AND due = 0")
        assert cursor.fetchone()[0] == 0


def test_a_changed_time_zone_is_not_read_until_migrate_rebuilds_it(settings, agent_client):
    # 23:30 UTC on 31 January: February in Paris, January in New York.
    SignalementFactory(created_at=dt.datetime(2025, 1, 31, 23, 30, tzinfo=dt.UTC))
    settings.TIME_ZONE = "America/New_York"
    assert rollup.figures("default", rollup.Filters(public_only=False), NOW) is None
    assert agent_client.get(STATS_URL).json()["by_month"][0]["month"] == "2025-01"

    triggers.install(connection)  # what migrate does

    assert rollup.state() == "America/New_York"
    counted = rollup.figures("default", rollup.Filters(public_only=False), NOW)
    assert list(counted.created) == [dt.date(2025, 1, 1)]
    SignalementFactory(created_at=dt.datetime(2025, 2, 28, 23, 30, tzinfo=dt.UTC))
    assert_rollup_exact()


# --- Read: the same figures as the reports give -------------------------------------


def varied_reports(categories, departments, count=400, seed=7):
    """Reports around the ends of months (Paris and UTC), of every status, some hidden,
    some without category or department, resolved after equal or varied times (some
    before they were created), with and without due dates."""
    generator = random.Random(seed)
    rows = []
    for n in range(count):
        month = generator.choice([1, 2, 3, 10, 12])
        created_at = dt.datetime(2024, month, 1, tzinfo=dt.UTC) + dt.timedelta(
            minutes=generator.randint(-3000, 3000), microseconds=generator.randint(0, 999_999)
        )
        status = generator.choice(Status.values)
        resolved_at = None
        if status == "resolved" or generator.random() < 0.05:
            hours = generator.choice([1, 1, 2, 5, 24, 100, -2]) * (1 + generator.random() / 10)
            resolved_at = created_at + dt.timedelta(hours=hours)
        due_at = None
        if generator.random() < 0.8:
            due_at = created_at + dt.timedelta(hours=generator.choice([4, 48]))
        if generator.random() < 0.05:
            due_at = NOW + dt.timedelta(days=generator.randint(-2, 2))  # due around now
        rows.append(
            Signalement(
                description=f"Signalement {n}",
                date=created_at,
                created_at=created_at,
                status=status,
                resolved_at=resolved_at,
                due_at=due_at,
                category=generator.choice([*categories, None]),
                department=generator.choice([*departments, None]),
                is_public=generator.random() < 0.85,
            )
        )
    return Signalement.objects.bulk_create(rows)


FILTERS = [
    {},
    {"statuses": ("resolved",)},
    {"statuses": ("new", "acknowledged", "in_progress")},
    {"statuses": ()},
    {"category_ids": "first"},
    {"category_ids": "first two"},
    {"department_ids": "first"},
    {"category_ids": "first", "statuses": ("resolved", "rejected")},
    # Whole months of Paris, as `created_after=2024-03-01T00:00:00+01:00` gives them.
    {"created_after": paris(2024, 3, 1), "created_before": paris(2024, 3, 31, 23, 59, 59, 999999)},
    {"created_after": paris(2024, 2, 1), "created_before": paris(2024, 3, 1)},
    {"created_after": paris(2024, 10, 1)},
    {"created_before": paris(2024, 10, 31, 12)},
    # Dates that cut months.
    {"created_after": paris(2024, 1, 1, 13, 7), "created_before": paris(2024, 3, 2, 1)},
    {"created_after": dt.datetime(2024, 2, 29, 23, 30, tzinfo=dt.UTC), "category_ids": "first"},
    {"created_after": paris(2024, 3, 5), "created_before": paris(2024, 3, 1)},
]


def as_filters(spec: dict, public_only: bool, categories, departments) -> rollup.Filters:
    chosen = {"first": 1, "first two": 2}
    spec = dict(spec)
    for name, objects in (("category_ids", categories), ("department_ids", departments)):
        if name in spec:
            spec[name] = tuple(item.pk for item in objects[: chosen[spec[name]]])
    return rollup.Filters(public_only=public_only, **spec)


@pytest.mark.parametrize("public_only", [False, True])
def test_the_rollup_gives_the_figures_the_reports_give(categories, departments, public_only):
    varied_reports(categories, departments)
    Signalement.objects.filter(pk__in=Signalement.objects.order_by("?")[:40]).delete()
    for spec in FILTERS:
        filters = as_filters(spec, public_only, categories, departments)
        queryset = Signalement.objects.filter(filters.q())
        counted = rollup.figures("default", filters, NOW)
        # An empty range of dates (after > before) is left to the reports' index.
        after, before = spec.get("created_after"), spec.get("created_before")
        empty = after is not None and before is not None and after > before
        assert (counted is None) == empty, spec
        expected = stats.compute(queryset, now=NOW, with_satisfaction=True)
        computed = stats.compute(queryset, now=NOW, with_satisfaction=True, rollup_filters=filters)
        assert computed == expected, spec
        assert expected["total"] == queryset.count()


def test_the_medians_are_exact_among_many_equal_and_close_durations(categories):
    """Durations a microsecond apart, equal ones, and thousands in a few buckets: the
    middle one is found by its bucket and its rank in it."""
    start = dt.datetime(2024, 5, 2, 8, tzinfo=dt.UTC)
    rows = []
    for n in range(3001):
        created_at = start + dt.timedelta(minutes=n)
        resolved_at = created_at + dt.timedelta(hours=3, microseconds=n % 7)
        rows.append(
            Signalement(
                description="x",
                date=created_at,
                created_at=created_at,
                status="resolved",
                resolved_at=resolved_at,
                due_at=created_at + dt.timedelta(hours=2, seconds=n % 300),
                category=categories[n % 2],
            )
        )
    Signalement.objects.bulk_create(rows)
    for count in (3001, 3000):  # odd, then even
        if count == 3000:
            Signalement.objects.filter(pk=Signalement.objects.order_by("pk")[0].pk).delete()
        for spec in [{}, {"category_ids": "first"}]:
            filters = as_filters(spec, False, categories, [])
            queryset = Signalement.objects.filter(filters.q())
            computed = stats.compute(queryset, rollup_filters=filters)
            expected = stats.compute(queryset)
            assert computed["median_resolution_hours"] == expected["median_resolution_hours"]
            levels = computed["service_levels"]
            assert (
                levels["median_lateness_hours"]
                == expected["service_levels"]["median_lateness_hours"]
            )
            assert levels["late"] > 0


def test_the_api_reads_the_rollup_for_agents_and_anonymous_callers(
    api_client, agent_client, categories, departments, django_assert_max_num_queries
):
    varied_reports(categories, departments, count=150)
    cases = [
        (agent_client, {}, False),
        (agent_client, {"status": "resolved,new", "category": "voirie,eclairage"}, False),
        (agent_client, {"department": "roads"}, False),
        (agent_client, {"category": "inconnue"}, False),
        (
            agent_client,
            {
                "category": "voirie",
                "created_after": "2024-03-01T00:00:00+01:00",
                "created_before": "2024-03-31T23:59:59.999999+02:00",
            },
            False,
        ),
        (api_client, {}, True),
        (api_client, {"status": "resolved", "created_after": "2024-02-15T10:00:00Z"}, True),
    ]
    for client, params, public_only in cases:
        with CaptureQueriesContext(connection) as queries:
            body = client.get(STATS_URL, params).json()
        assert any(rollup.ROLLUP in query["sql"] for query in queries), params
        assert len(queries) <= 8, params
        # The same request's figures, from the reports.
        filters = Signalement.objects.all()
        if public_only:
            filters = filters.filter(is_public=True)
        if "status" in params:
            filters = filters.filter(status__in=params["status"].split(","))
        if "category" in params:
            filters = filters.filter(category__code__in=params["category"].split(","))
        if "department" in params:
            filters = filters.filter(department__code__in=params["department"].split(","))
        if "created_after" in params:
            filters = filters.filter(created_at__gte=params["created_after"])
        if "created_before" in params:
            filters = filters.filter(created_at__lte=params["created_before"])
        expected = stats.compute(filters, with_satisfaction=not public_only)
        assert body == SignalementStatsSerializer(expected).data, params


def test_other_filters_and_scopes_compute_from_the_reports(
    api_client, agent_client, user_client, agent_user, settings, categories, departments
):
    varied_reports(categories, departments, count=50)
    for client, params in [
        (agent_client, {"search": "Signalement"}),
        (agent_client, {"priority": "normal"}),
        (agent_client, {"overdue": "false"}),
        (api_client, {"near": "48.11,-1.68"}),
        (user_client, {}),
    ]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(STATS_URL, params).status_code == 200
        assert not any(rollup.ROLLUP in query["sql"] for query in queries), params
    settings.SIGNALEMENT_AGENT_SCOPE = "department"
    with CaptureQueriesContext(connection) as queries:
        agent_client.get(STATS_URL)
    assert not any(rollup.ROLLUP in query["sql"] for query in queries)


def test_the_count_is_that_of_the_reports(categories, departments):
    varied_reports(categories, departments, count=120)
    for public_only in (False, True):
        for statuses, category_ids, department_ids in [
            (None, None, None),
            (("new",), None, None),
            (None, (categories[0].pk, categories[1].pk), None),
            (("resolved", "rejected"), (categories[2].pk,), (departments[1].pk,)),
            ((), None, None),
        ]:
            counted = rollup.count(
                public_only=public_only,
                statuses=statuses,
                category_ids=category_ids,
                department_ids=department_ids,
            )
            filters = rollup.Filters(
                public_only=public_only,
                statuses=statuses,
                category_ids=category_ids,
                department_ids=department_ids,
            )
            assert counted == Signalement.objects.filter(filters.q()).count()


def test_dates_on_the_bounds_of_months_read_no_report(categories, departments):
    """A month's filter (its first and last instants) is whole months of the rollup: no
    report to subtract; a date inside a month reads that month's reports on the other
    side of it, and the figures stay those of the reports."""
    varied_reports(categories, departments, count=150)
    zone = django_settings.TIME_ZONE
    whole = rollup.Filters(
        public_only=False,
        created_after=paris(2024, 2, 1),
        created_before=paris(2024, 3, 31, 23, 59, 59, 999999),
    )
    reports = f"FROM {connection.ops.quote_name(Signalement._meta.db_table)}"
    source, _ = rollup._source(connection, zone, whole)
    assert reports not in source
    for after, before in [
        (paris(2024, 2, 1, 0, 0, 0, 1), paris(2024, 3, 31, 23, 59, 59, 999999)),
        (paris(2024, 2, 1), paris(2024, 3, 31, 23, 59, 59, 999998)),
    ]:
        cut = rollup.Filters(public_only=False, created_after=after, created_before=before)
        source, _ = rollup._source(connection, zone, cut)
        assert source.count(reports) == 1
    for filters in (whole, cut):
        queryset = Signalement.objects.filter(filters.q())
        assert stats.compute(queryset, now=NOW, rollup_filters=filters) == stats.compute(
            queryset, now=NOW
        )


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's plans")
def test_the_reads_scan_the_rollups_covering_indexes(categories, departments):
    """The counts, the statistics' counts and their histograms read the rollup through
    its covering indexes alone (no table, no sort of its rows)."""
    varied_reports(categories, departments, count=200)
    with CaptureQueriesContext(connection) as queries:
        rollup.count(public_only=True, statuses=("new",))
        rollup.figures("default", rollup.Filters(public_only=False), NOW)
    rollup_table = rollup.ROLLUP
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + rollup_table)
        plans = []
        for query in queries.captured_queries:
            if rollup_table not in query["sql"]:
                continue
            with transaction.atomic():
                # A few rows: the planner would rather read the table; show what it
                # can do with the indexes, as it does with tens of thousands of rows.
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("SET LOCAL enable_bitmapscan = off")
                cursor.execute("EXPLAIN " + query["sql"])
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
    count_plan, figures_plan = plans
    assert f"Index Only Scan using rollup_counts_idx on {rollup_table}" in count_plan
    assert f"Index Only Scan using rollup_counts_idx on {rollup_table}" in figures_plan
    assert figures_plan.count(f"Index Only Scan using rollup_buckets_idx on {rollup_table}") == 2
    for plan in plans:  # nothing reads the table itself
        assert not re.search(rf"(Seq|Heap|Index) Scan (using \S+ )?on {rollup_table} ", plan)


# --- The buckets of durations ---------------------------------------------------------


def test_the_buckets_are_the_same_in_python_and_in_sql_and_in_order():
    values = [-5, -1, 0, 1, 127, 128, 129, 255, 256, 10**6, 3_600_000_000, 2**40 + 3, 2**61]
    values += [random.Random(n).randint(0, 2**50) for n in range(200)]
    with connection.cursor() as cursor:
        for value in values:
            cursor.execute(f"SELECT {rollup.bucket_sql('v')} FROM (SELECT %s AS v) t", [value])
            bucket = cursor.fetchone()[0]
            assert bucket == rollup.bucket_of(value), value
            low, high = rollup.bucket_bounds(bucket)
            assert (low is None or low <= value) and value < high
    ordered = sorted(values)
    assert [rollup.bucket_of(value) for value in ordered] == sorted(
        rollup.bucket_of(value) for value in values
    )


def test_the_calendar_knows_when_each_month_starts():
    """SQLite's calendar: a month starts at its local midnight, or when a change of
    clock makes it start (Paris's LMT, before 1911: +00:09:21)."""
    rows = dict((month, start) for start, month in rollup.calendar("Europe/Paris"))
    assert rows[202504] == "2025-03-31 22:00:00"
    assert rows[202501] == "2024-12-31 23:00:00"
    assert rows[190001] == "1899-12-31 23:50:39"


# --- Concurrent writers (PostgreSQL) ----------------------------------------------------


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="one writer at a time on SQLite")
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_it_exact_and_never_deadlock():
    category = CategoryFactory(code="voirie", name="Voirie")
    seed = SignalementFactory.create_batch(20, category=category)
    errors = []

    def writer(number):
        generator = random.Random(number)
        try:
            for round_ in range(15):
                try:
                    with transaction.atomic():
                        SignalementFactory(category=category if round_ % 2 else None)
                        target = generator.choice(seed)
                        Signalement.objects.filter(pk=target.pk).update(
                            status=generator.choice(Status.values),
                            resolved_at=timezone.now() if round_ % 3 == 0 else None,
                        )
                        if round_ % 4 == 0:
                            raise RuntimeError("rolled back")
                except RuntimeError:
                    pass
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)
        finally:
            connections.close_all()

    def compactor():
        try:
            for _ in range(10):
                rollup.compact()
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    threads.append(threading.Thread(target=compactor))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert_rollup_exact()
    rollup.compact()
    assert_rollup_exact()
