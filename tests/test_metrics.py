"""`GET /metrics` (signalements/metrics.py, signalements_project/observability.py): not
public (a 404 without METRICS_TOKEN, a 401 without the right bearer token), Prometheus'
text format, and the series that move when the server works: requests by route and
status (the response cache's answers included, under the same route), the cache's hits
and misses, database queries, reports created, transitions, webhook attempts, tasks, and
the task queue read at scrape time. Last, through the production server with two worker
processes and a task worker: a scrape adds up the counts of every process
(prometheus-client's multiprocess mode, PROMETHEUS_MULTIPROC_DIR set by serve.sh)."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from signalements.models import Category, WebhookEndpoint

from . import worker_tasks
from .factories import SignalementFactory
from .live import DATABASES, LiveServer, live_database, wait_for
from .test_response_cache import call
from .test_webhooks import settle
from .webhook_receiver import Receiver

TOKEN = "metrics-test-token-5f1d2c"
BEARER = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
REPORT = {"description": "Panne électrique", "date": "2025-04-29T16:30:00+02:00"}


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def parse(text: str) -> dict[tuple, float]:
    """Every sample of a scrape: {(name, ((label, value), …)): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics", **BEARER)
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- Who may read them ----------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_metrics_token_configured_there_is_no_metrics_page(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "not_authenticated"),
        ("Bearer", "not_authenticated"),
        (f"Token {TOKEN}", "not_authenticated"),
        ("Bearer wrong-token", "authentication_failed"),
        (f"Bearer {TOKEN}x", "authentication_failed"),
        (f"Bearer {TOKEN[:-1]}", "authentication_failed"),
    ],
)
def test_a_missing_or_wrong_token_is_refused(client, authorization, code):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    body = response.json()
    assert body["type"] == "client_error"
    assert [error["code"] for error in body["errors"]] == [code]
    assert b"signalements_" not in response.content


@pytest.mark.django_db
def test_the_token_gets_every_series_in_prometheus_text_format(client):
    response = client.get("/metrics", **BEARER)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "no-store" in response["Cache-Control"]
    families = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "signalements_http_request_duration_seconds",
        "signalements_db_queries",
        "signalements_db_query_seconds",
        "signalements_response_cache_requests",
        "signalements_reports_created",
        "signalements_status_transitions",
        "signalements_webhook_attempts",
        "signalements_tasks_finished",
        "signalements_task_queue_ready",
    } <= families
    assert client.post("/metrics", **BEARER).status_code == 405


# --- What they count --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_created_report_and_its_transitions_are_counted(
    client, api_client, agent_user, django_capture_on_commit_callbacks
):
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        created = api_client.post(reverse("signalement-list"), REPORT, format="json")
    assert created.status_code == 201
    rejected = api_client.post(reverse("signalement-list"), {"description": ""}, format="json")
    assert rejected.status_code == 400
    api_client.force_authenticate(agent_user)
    for to_status in ("acknowledged", "in_progress"):
        with django_capture_on_commit_callbacks(execute=True):
            moved = api_client.post(
                reverse("signalement-transition", args=[created.json()["id"]]),
                {"status": to_status},
                format="json",
            )
        assert moved.status_code == 200
    after = scrape(client)

    name = "signalements_reports_created_total"
    assert value(after, name) - value(before, name) == 1
    name = "signalements_status_transitions_total"
    for to_status in ("acknowledged", "in_progress"):
        assert (
            value(after, name, to_status=to_status) - value(before, name, to_status=to_status) == 1
        )
    assert value(after, name, to_status="resolved") == value(before, name, to_status="resolved")


@pytest.mark.django_db
def test_a_transition_rolled_back_is_not_counted(agent_user):
    from django.db import transaction

    from signalements import services

    report = SignalementFactory()
    name = "signalements_status_transitions_total"
    before = REGISTRY.get_sample_value(name, {"to_status": "rejected"}) or 0.0
    with pytest.raises(RuntimeError), transaction.atomic():
        services.transition(signalement=report, to_status="rejected", by=agent_user)
        raise RuntimeError("the change fails after its event")
    assert (REGISTRY.get_sample_value(name, {"to_status": "rejected"}) or 0.0) == before


@pytest.fixture
def receiver():
    receiver = Receiver(fail_first=99)
    yield receiver
    receiver.close()


@pytest.mark.django_db
def test_webhook_attempts_failed_and_given_up_and_their_tasks_are_counted(
    client, api_client, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.WEBHOOK_RETRY_DELAYS = (timedelta(0),)  # one retry, then given up
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    WebhookEndpoint.objects.create(url=receiver.url, events=["signalement.created"])

    def on_commit():
        return django_capture_on_commit_callbacks(execute=True)

    before = scrape(client)
    with on_commit():
        assert (
            api_client.post(reverse("signalement-list"), REPORT, format="json").status_code == 201
        )
    settle(on_commit)
    after = scrape(client)

    name = "signalements_webhook_attempts_total"
    assert len(receiver.received) == 2
    assert value(after, name, outcome="failed") - value(before, name, outcome="failed") == 1
    assert value(after, name, outcome="given_up") - value(before, name, outcome="given_up") == 1
    assert value(after, name, outcome="delivered") == value(before, name, outcome="delivered")
    name = "signalements_tasks_finished_total"
    labels = {"task": "signalements.webhooks.deliver", "status": "SUCCESSFUL"}
    assert value(after, name, **labels) - value(before, name, **labels) == 2


def scrape_through(stack) -> dict[tuple, float]:
    status, headers, body = call(stack, "/metrics", authorization=f"Bearer {TOKEN}")
    assert status == 200
    return parse(body.decode())


def test_requests_cache_hits_and_misses_are_counted_under_the_views_route(stack):
    report = SignalementFactory()
    before = scrape_through(stack)
    for path in ("/api/signalements/", f"/api/signalements/{report.pk}/"):
        answers = [call(stack, path) for _ in range(3)]  # seen, then kept, then a hit
        assert [status for status, _, _ in answers] == [200, 200, 200]
        assert [headers.get("X-Cache") for _, headers, _ in answers] == [None, None, "hit"]
        assert all(len(headers["X-Request-ID"]) == 32 for _, headers, _ in answers)
    assert call(stack, "/api/signalements/999999999/")[0] == 404
    assert call(stack, "/nowhere/at/all")[0] == 404
    assert call(stack, "/healthz")[0] == 200
    after = scrape_through(stack)

    name = "signalements_response_cache_requests_total"
    assert value(after, name, result="hit") - value(before, name, result="hit") == 2
    assert value(after, name, result="miss") - value(before, name, result="miss") == 5

    def requests(route, status):
        name = "signalements_http_request_duration_seconds_count"
        labels = {"method": "GET", "route": route, "status": status}
        return value(after, name, **labels) - value(before, name, **labels)

    # One series for each view, whether Django or the cache answered.
    assert requests("api/signalements/", "200") == 3
    assert requests("api/signalements/<pk>/", "200") == 3
    assert requests("api/signalements/<pk>/", "404") == 1
    assert requests("unmatched", "404") == 1
    # The probes and the scrapes are not counted.
    assert requests("healthz", "200") == 0
    assert not any(("route", "metrics") in labels for _, labels in after)


def test_database_queries_are_counted_by_alias(db):
    name = "signalements_db_queries_total"
    before = REGISTRY.get_sample_value(name, {"alias": "default"}) or 0.0
    seconds = REGISTRY.get_sample_value("signalements_db_query_seconds_total", {"alias": "default"})
    with CaptureQueriesContext(connection) as queries:
        Category.objects.create(code="voirie", name="Voirie")
        list(Category.objects.all())
        Category.objects.filter(code="voirie").update(name="Voirie et trottoirs")
    after = REGISTRY.get_sample_value(name, {"alias": "default"})
    assert after - before == len(queries) >= 3
    assert REGISTRY.get_sample_value(
        "signalements_db_query_seconds_total", {"alias": "default"}
    ) > (seconds or 0.0)


def test_the_query_counter_is_installed_once_per_connection(db):
    from django.db.backends.signals import connection_created

    from signalements.metrics import QueryCounter

    connection.ensure_connection()
    # What a connection object says each time it connects again (after CONN_MAX_AGE).
    connection_created.send(sender=type(connection), connection=connection)
    counters = [w for w in connection.execute_wrappers if isinstance(w, QueryCounter)]
    assert len(counters) == 1 and connection.execute_wrappers[0] is counters[0]


@pytest.mark.django_db
def test_the_task_queue_is_read_at_scrape_time(client, settings, tmp_path):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.TASKS_BACKEND = "database"
    name = "signalements_task_queue_ready"
    assert value(scrape(client), name, queue="default", due="yes") == 0
    for number in range(3):
        worker_tasks.flaky.enqueue(str(tmp_path / f"due{number}"), 0)
    later = timezone.now() + timedelta(hours=1)
    worker_tasks.flaky.using(run_after=later).enqueue(str(tmp_path / "later"), 0)
    samples = scrape(client)
    assert value(samples, name, queue="default", due="yes") == 3
    assert value(samples, name, queue="default", due="no") == 1


# --- Several processes -------------------------------------------------------------------


def write_stale_counts(directory: Path) -> None:
    """What a process of an earlier run left: 1,000 reports created."""
    directory.mkdir()
    stale = MmapedDict(str(directory / "counter_999999.db"))
    key = mmap_key(
        "signalements_reports_created",
        "signalements_reports_created_total",
        [],
        [],
        "Reports created.",
    )
    stale.write_value(key, 1000.0, 0.0)
    stale.close()


def tasks_finished(samples: dict) -> float:
    return sum(v for (name, _), v in samples.items() if name == "signalements_tasks_finished_total")


def pids_counting(directory: Path, name: str) -> set[str]:
    """The processes whose files in `directory` hold a non-zero sample of `name`."""
    pids = set()
    for path in directory.glob("*.db"):
        for key, sample_value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if f'"{name}"' in key and sample_value:
                pids.add(path.stem.rsplit("_", 1)[-1])
    return pids


@pytest.mark.parametrize("kind", DATABASES)
def test_a_scrape_adds_up_every_process_of_the_server(kind, tmp_path):
    directory = tmp_path / "metrics"
    write_stale_counts(directory)
    with live_database(kind, tmp_path) as url:
        server = LiveServer(
            url,
            workers=2,
            METRICS_TOKEN=TOKEN,
            PROMETHEUS_MULTIPROC_DIR=str(directory),
            TASK_WORKERS="1",
            TASKS_BACKEND="database",
        )
        try:
            assert not (directory / "counter_999999.db").exists()  # emptied at start
            bearer = {"Authorization": f"Bearer {TOKEN}"}

            # Requests on connections of their own, until both workers answered some.
            sent = 0
            for _ in range(20):
                answers = server.at_once(12, "GET", "/api/categories/")
                assert all(status == 200 for status, _, _ in answers)
                sent += len(answers)
                name = "signalements_http_request_duration_seconds_sum"
                if len(pids_counting(directory, name)) >= 2:
                    break
            assert len(pids_counting(directory, name)) == 2

            # A report: created by a server worker, its email task run by the task worker.
            status, _, _ = server.request("POST", "/api/signalements/", REPORT)
            assert status == 201

            def tasks_done():
                """The scrape, once it counts a finished task."""
                status, headers, body = server.request("GET", "/metrics", headers=bearer)
                assert status == 200 and headers["content-type"].startswith("text/plain")
                samples = parse(body.decode())
                return samples if tasks_finished(samples) else None

            samples = wait_for(tasks_done)
        finally:
            server.stop()

    labels = {"method": "GET", "route": "api/categories/", "status": "200"}
    assert value(samples, "signalements_http_request_duration_seconds_count", **labels) == sent
    assert value(samples, "signalements_reports_created_total") == 1  # not the stale 1,000
    # The task ran in the task worker, a process apart from the server's two.
    assert pids_counting(directory, "signalements_tasks_finished_total").isdisjoint(
        pids_counting(directory, "signalements_http_request_duration_seconds_sum")
    )
    assert value(samples, "signalements_db_queries_total", alias="default") > sent
