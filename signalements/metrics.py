"""What the server counts, for Prometheus (`GET /metrics`, served by
`signalements_project/observability.py` to whoever holds METRICS_TOKEN).

- `signalements_http_request_duration_seconds{method, route, status}`: every request and
  how long it took, by its URL pattern (`api/signalements/<pk>/`, never the raw path),
  counted by `signalements_project/observability.py` around the whole application, the
  response cache's answers included; `_count` is the number of requests. The probes
  (`/healthz`, `/readyz`) and the scrapes of `/metrics` are left out.
- `signalements_db_queries_total{alias}` and `signalements_db_query_seconds_total{alias}`:
  SQL statements executed and the time they took, by database alias (an execute wrapper
  on every connection, whatever its engine).
- `signalements_response_cache_requests_total{result}`: the response cache's lookups,
  `hit` (answered from memory) or `miss` (answered by Django).
- `signalements_reports_created_total` and `signalements_status_transitions_total{to_status}`:
  from the domain's events, once their transaction committed.
- `signalements_webhook_attempts_total{outcome}`: webhook delivery attempts, `delivered`,
  `failed` (tried again later) or `given_up` (the last try failed).
- `signalements_tasks_finished_total{task, status}`: background tasks finished, by task
  (`signalements.notifications.send_status_email`…: the emails) and status
  (`SUCCESSFUL`, or `FAILED`, a failure that is tried again included).
- `signalements_task_queue_ready{queue, due}`: tasks waiting in the database queue, due
  now (`due="yes"`) or later (`due="no"`: a retry's delay), read from the database at
  scrape time (one query).
- With a read replica (DATABASE_REPLICA_URL, `signalements/replicas.py`):
  `signalements_read_requests_total{database}`, safe requests by the database their reads
  went to (`primary` or `replica`); `signalements_replica_up` (1 when the replica answers
  and is in recovery, else 0) and `signalements_replica_lag_seconds` (absent when it does
  not answer), measured on the replica at scrape time.

Several processes (the server's workers, the task workers): with the environment variable
PROMETHEUS_MULTIPROC_DIR set (`scripts/serve.sh` sets it), each process writes its counts
into its own files there (prometheus-client's multiprocess mode) and a scrape adds them
up. Without it (tests, runserver), the counts are the process's own.
"""

import os
import time

from django.db import DatabaseError, transaction
from django.db.backends.signals import connection_created
from django.db.models import Count, Q
from django.dispatch import receiver
from django.utils import timezone
from django_tasks.signals import task_finished
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE
from prometheus_client.multiprocess import MultiProcessCollector

from . import events

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROCESS_DIR:
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)

REQUEST_DURATION = Histogram(
    "signalements_http_request_duration_seconds",
    "Requests answered and their duration, by method, route (URL pattern) and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DB_QUERIES = Counter(
    "signalements_db_queries", "SQL statements executed, by database alias.", ["alias"]
)
DB_QUERY_SECONDS = Counter(
    "signalements_db_query_seconds",
    "Time spent executing SQL statements, by database alias.",
    ["alias"],
)
RESPONSE_CACHE = Counter(
    "signalements_response_cache_requests",
    "Lookups in the response cache of anonymous report reads: hit or miss.",
    ["result"],
)
REPORTS_CREATED = Counter("signalements_reports_created", "Reports created.")
TRANSITIONS = Counter(
    "signalements_status_transitions", "Status changes of reports, by new status.", ["to_status"]
)
WEBHOOK_ATTEMPTS = Counter(
    "signalements_webhook_attempts",
    "Webhook delivery attempts, by outcome: delivered, failed (tried again), given_up.",
    ["outcome"],
)
TASKS_FINISHED = Counter(
    "signalements_tasks_finished",
    "Background tasks finished, by task and status (SUCCESSFUL or FAILED).",
    ["task", "status"],
)

READ_REQUESTS = Counter(
    "signalements_read_requests",
    "Safe requests (GET, HEAD, OPTIONS) by the database their reads went to, with a "
    "replica: primary or replica.",
    ["database"],
)

CACHE_HIT = RESPONSE_CACHE.labels(result="hit")
CACHE_MISS = RESPONSE_CACHE.labels(result="miss")


# --- Database queries -------------------------------------------------------------------


class QueryCounter:
    """An execute wrapper (Django's `connection.execute_wrappers`) that counts a
    connection's statements and their time."""

    def __init__(self, alias: str):
        self.queries = DB_QUERIES.labels(alias=alias)
        self.seconds = DB_QUERY_SECONDS.labels(alias=alias)

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.inc()
            self.seconds.inc(time.perf_counter() - started)


@receiver(connection_created)
def count_queries(sender, connection, **kwargs) -> None:
    """Every new connection counts its statements. A connection object connects again
    after CONN_MAX_AGE: its counter is installed once. First in the list, so that
    `with connection.execute_wrapper(...)` blocks, which take off the last one when they
    end, take off their own."""
    if not any(isinstance(wrapper, QueryCounter) for wrapper in connection.execute_wrappers):
        connection.execute_wrappers.insert(0, QueryCounter(connection.alias))


# --- Domain events, webhooks and tasks -------------------------------------------------


@events.listen
def count_event(event: events.Event) -> None:
    """Reports created and status changes, counted once their transaction commits (a
    change rolled back is not counted)."""
    if event.kind == events.CREATED:
        transaction.on_commit(REPORTS_CREATED.inc)
    elif event.kind == events.STATUS_CHANGED:
        transaction.on_commit(TRANSITIONS.labels(to_status=event.data["to"]).inc)


def webhook_attempt(*, succeeded: bool, given_up: bool) -> None:
    """Count a finished webhook delivery attempt (`webhooks.finish`)."""
    outcome = "delivered" if succeeded else "given_up" if given_up else "failed"
    WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()


@receiver(task_finished)
def count_task(sender, task_result, **kwargs) -> None:
    TASKS_FINISHED.labels(task=task_result.task.module_path, status=str(task_result.status)).inc()


# --- The task queue, read at scrape time -----------------------------------------------


class TaskQueueCollector:
    """The tasks waiting in the database queue (django-tasks-db), by queue, due now or
    later: one query over the queue's index of ready tasks, when scraped. Nothing when
    the database does not answer (the other metrics are still served)."""

    def describe(self):
        return []

    def collect(self):
        from django_tasks.base import TaskResultStatus
        from django_tasks_db.models import DBTaskResult, get_date_max

        due = Q(run_after=get_date_max()) | Q(run_after__lte=timezone.now())
        try:
            rows = list(
                DBTaskResult.objects.filter(status=TaskResultStatus.READY)
                .order_by()
                .values("queue_name")
                .annotate(total=Count("pk"), due=Count("pk", filter=due))
            )
        except DatabaseError:
            return
        gauge = GaugeMetricFamily(
            "signalements_task_queue_ready",
            "Tasks waiting in the database queue, by queue, due now (yes) or later (no).",
            labels=["queue", "due"],
        )
        for row in rows:
            gauge.add_metric([row["queue_name"], "yes"], row["due"])
            gauge.add_metric([row["queue_name"], "no"], row["total"] - row["due"])
        yield gauge


class ReplicaCollector:
    """The replica's state, measured when scraped (one query on the replica, which also
    refreshes this process's view of it); nothing without a replica."""

    def describe(self):
        return []

    def collect(self):
        from . import replicas  # it counts its requests here: imported once both are

        if not replicas.configured():
            return
        try:
            lag = replicas.measure_now()
        except Exception:  # down, or not a replica
            up, lag = 0, None
        else:
            up = 1
        yield GaugeMetricFamily(
            "signalements_replica_up",
            "1 when the read replica answers and is in recovery (a replica), else 0.",
            value=up,
        )
        if lag is not None:
            yield GaugeMetricFamily(
                "signalements_replica_lag_seconds",
                "How far the read replica is behind the primary, in seconds.",
                value=lag,
            )


QUEUE_REGISTRY = CollectorRegistry(auto_describe=False)
QUEUE_REGISTRY.register(TaskQueueCollector())
QUEUE_REGISTRY.register(ReplicaCollector())


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type: every process's
    counts in multiprocess mode, else this process's; then the task queue."""
    if MULTIPROCESS_DIR:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(QUEUE_REGISTRY), CONTENT_TYPE
