"""Reads on a replica (signalements/replicas.py): where each request's reads go, a
client's own writes read back, the response cache's version read where the data are,
the fallback to the primary when the replica fails, and what /readyz and /metrics say.

The tests' "replica" is a second connection to the test database (as Django's test
MIRROR makes it), or, to prove that nothing is read across the two, a connection where
temporary tables shadow the reports and the data version with other contents (temporary
tables come first in both SQLite's and PostgreSQL's name lookup). A replica that does not
answer is a PostgreSQL address on a closed port. A real streaming replica, stopped and
restarted under load, is the cluster's test (tests/cluster/)."""

import base64
import copy
import json
import os
import socket
import subprocess
import sys
import time
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections, router, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from signalements import data_version, replicas
from signalements.api.response_cache import ResponseCache
from signalements.models import Signalement

from .factories import SignalementFactory, UserFactory
from .test_response_cache import call_environ

LIST = "/api/signalements/"
CREATE = {"description": "Panne électrique", "date": "2025-04-29T16:30:00"}
POSTGRESQL = connection.vendor == "postgresql"
needs_postgresql = pytest.mark.skipif(
    not POSTGRESQL, reason="the replica's own SQL and connections are PostgreSQL's"
)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def set_replica(config: dict | None) -> None:
    """Point the "replica" alias at `config` (None: no replica), as the settings would."""
    if "replica" in connections.settings:
        connections["replica"].close()
        del connections["replica"]
        del connections.settings["replica"]
    if config is not None:
        connections.settings["replica"] = config  # the same dict as settings.DATABASES


def mirror() -> dict:
    """The test database again, through the replica's backend on PostgreSQL."""
    config = copy.deepcopy(connections["default"].settings_dict)
    config["TEST"] = {**config["TEST"], "MIRROR": "default"}
    if POSTGRESQL:
        config["ENGINE"] = "signalements.replica_database"
    return config


def unreachable() -> dict:
    """A PostgreSQL replica on a port where nothing listens (refused at once)."""
    config = copy.deepcopy(connections["default"].settings_dict)
    config.update(
        ENGINE="signalements.replica_database",
        NAME="signalements",
        USER="signalements",
        PASSWORD="",
        HOST="127.0.0.1",
        PORT=str(closed_port()),
        OPTIONS={"connect_timeout": 2},
        TEST={**config["TEST"], "MIRROR": "default"},
    )
    return config


# Every test may use both aliases (Django's tests refuse an alias they did not name), in
# transactions of their own: the replica's connection sees what the primary committed.
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture(scope="module", autouse=True)
def _replica_alias(django_db_setup):
    """The "replica" alias exists while this module's tests run (they name it), and only
    then: the other modules run without a replica."""
    set_replica(mirror())
    yield
    set_replica(None)


@pytest.fixture
def no_replica():
    """No replica, as without DATABASE_REPLICA_URL (its connection object is kept for
    Django's test machinery, which names it)."""
    config = connections.settings.pop("replica")
    yield
    connections.settings["replica"] = config


@pytest.fixture
def replica(settings):
    """A replica alias (the test database again), its router, a process that measured it
    up: the tests change what they need."""
    settings.DATABASE_ROUTERS = ["signalements.replicas.ReplicaRouter"]
    settings.REPLICA_CHECK_SECONDS = 3600  # measured when a test says so
    settings.ALLOWED_HOSTS = ["testserver"]
    replicas.health.reset()
    replicas.health.measured(0.0)
    yield
    replicas.current.set(None)
    replicas.health.reset()
    set_replica(mirror())


def answers(monkeypatch, in_recovery: bool, lag: float) -> None:
    """What the replica's measure finds (the lag of a real streaming replica is the
    cluster's test), measured at the next request."""
    monkeypatch.setattr(replicas, "LAG_QUERY", f"SELECT {int(in_recovery)}, {lag}")
    replicas.health.checked = float("-inf")


def environ(method="GET", path=LIST, **headers) -> dict:
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "HTTP_HOST": "testserver",
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    setup_testing_defaults(env)
    return env


def call(app, path=LIST, **headers):
    """(status, headers, body) of a GET through a WSGI app."""
    return call_environ(app, environ(path=path, **headers))


def reads_count(database: str) -> float:
    return (
        REGISTRY.get_sample_value("signalements_read_requests_total", {"database": database}) or 0
    )


# --- Without a replica ---------------------------------------------------------------------


def test_without_a_replica_nothing_is_decided_routed_or_set(no_replica, settings):
    assert "replica" not in settings.DATABASES
    assert settings.DATABASE_ROUTERS == []
    assert replicas.decide(environ()) is None
    response = Client().post(LIST, CREATE, content_type="application/json")
    assert response.status_code == 201
    assert replicas.STICKY_COOKIE not in response.cookies
    ready = Client().get("/readyz")
    assert "replica" not in ready.json()["checks"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"DATABASE_REPLICA_URL": "sqlite:////tmp/replica.sqlite3"}, "PostgreSQL"),
        (
            {
                "DATABASE_URL": "sqlite:////tmp/primary.sqlite3",
                "DATABASE_REPLICA_URL": "postgres://u@127.0.0.1:5432/db",
            },
            "PostgreSQL",
        ),
        ({"REPLICA_STICKY_SECONDS": "-1"}, "0 or more"),
        # Read-your-writes: a client leaves the primary only once the replica has its write.
        ({"REPLICA_STICKY_SECONDS": "4"}, "at least REPLICA_MAX_LAG_SECONDS"),
        ({"REPLICA_MAX_LAG_SECONDS": "10"}, "at least REPLICA_MAX_LAG_SECONDS"),
        ({"REPLICA_MAX_LAG_SECONDS": "-0.5"}, "0 or more"),
    ],
)
def test_nonsense_is_refused_at_start(variables, message):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "signalements_project.settings", **variables}
    if "DATABASE_URL" not in variables and "DATABASE_REPLICA_URL" in variables:
        env["DATABASE_URL"] = "postgres://u@127.0.0.1:5432/db"
    run = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "ImproperlyConfigured" in run.stderr and message in run.stderr


def test_a_replica_url_makes_the_replica_alias(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "signalements_project.settings",
        "DATABASE_URL": "postgres://u@127.0.0.1:5432/db",
        "DATABASE_REPLICA_URL": "postgres://r@127.0.0.2:5433/db",
        "CONN_MAX_AGE": "30",
    }
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "r = s.DATABASES['replica']; print(json.dumps([r['ENGINE'], r['HOST'], "
        "r['OPTIONS'], r['CONN_MAX_AGE'], r['CONN_HEALTH_CHECKS'], r['TEST']['MIRROR'], "
        "s.DATABASE_ROUTERS, s.REPLICA_STICKY_SECONDS, s.REPLICA_MAX_LAG_SECONDS, "
        "s.REPLICA_CHECK_SECONDS]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [
        "signalements.replica_database",
        "127.0.0.2",
        {"connect_timeout": 5},
        30,
        True,
        "default",
        ["signalements.replicas.ReplicaRouter"],
        5.0,
        3.0,
        2.0,
    ]


# --- The decision and the router ----------------------------------------------------------


def test_safe_requests_read_the_replica_and_unsafe_ones_the_primary(replica):
    for method in ("GET", "HEAD", "OPTIONS"):
        assert replicas.decide(environ(method)).database == "replica"
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert replicas.decide(environ(method)).database == "default"


def test_the_decision_is_made_once_per_request(replica):
    env = environ()
    first = replicas.decide(env)
    replicas.health.measured(60.0)  # lagging now: a new request would read the primary
    assert replicas.decide(env) is first and first.database == "replica"
    assert replicas.decide(environ()).database == "default"


def test_a_lagging_or_failed_replica_is_not_read(replica, settings):
    replicas.health.measured(settings.REPLICA_MAX_LAG_SECONDS)
    assert replicas.decide(environ()).database == "replica"
    replicas.health.measured(settings.REPLICA_MAX_LAG_SECONDS + 0.1)
    assert replicas.decide(environ()).database == "default"
    replicas.health.measured(None)  # nothing replayed, not streaming: unknown
    assert replicas.decide(environ()).database == "default"
    replicas.health.down(ConnectionRefusedError())
    assert replicas.decide(environ()).database == "default"


def test_the_router_follows_the_request_and_keeps_writes_and_transactions_on_the_primary(
    replica,
):
    # No request (a management command, a task worker): the primary.
    replicas.current.set(None)
    assert router.db_for_read(Signalement) == "default"
    reads = replicas.decide(environ())
    assert router.db_for_read(Signalement) == "replica"
    with transaction.atomic():
        assert router.db_for_read(Signalement) == "default"
    # Once the request ran something on the primary, its reads stay there.
    assert reads.database == "default"
    assert router.db_for_read(Signalement) == "default"

    reads = replicas.decide(environ())
    assert router.db_for_write(Signalement) == "default"
    assert reads.database == "default" and router.db_for_read(Signalement) == "default"

    reads = replicas.decide(environ())
    SignalementFactory()  # a write executed
    assert reads.database == "default"

    assert router.allow_migrate("default", "signalements")
    assert not router.allow_migrate("replica", "signalements")
    report = Signalement(pk=1)
    report._state.db = "replica"
    other = Signalement(pk=2)
    other._state.db = "default"
    assert router.allow_relation(report, other)


def test_reads_go_where_the_request_decided_through_django(replica):
    """A real request: the replica's connection runs the list's statements."""
    SignalementFactory()
    with_replica = reads_count("replica")
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        response = Client().get(LIST)
    assert response.status_code == 200 and response.json()["count"] == 1
    assert any("signalements_signalement" in query["sql"] for query in on_replica)
    assert reads_count("replica") == with_replica + 1
    assert replicas.current.get() is None  # forgotten once answered


# --- Read-your-writes ---------------------------------------------------------------------


def test_a_write_sets_a_cookie_that_sends_the_clients_reads_to_the_primary(replica, settings):
    settings.SESSION_COOKIE_SECURE = True
    response = Client().post(LIST, CREATE, content_type="application/json")
    assert response.status_code == 201
    cookie = response.cookies[replicas.STICKY_COOKIE]
    assert cookie["max-age"] == 5 and cookie["httponly"] and cookie["secure"]
    assert cookie["samesite"] == "Lax" and cookie["path"] == "/"
    until = float(cookie.value)
    assert time.time() < until <= time.time() + 6
    sent = f"{replicas.STICKY_COOKIE}={cookie.value}"
    reads = replicas.decide(environ(COOKIE=f"lang=fr; {sent}"))
    assert reads.sticky and reads.database == "default"
    expired = f"{replicas.STICKY_COOKIE}={int(time.time()) - 1}"
    assert replicas.decide(environ(COOKIE=expired)).database == "replica"
    garbage = f"{replicas.STICKY_COOKIE}=soon"
    assert replicas.decide(environ(COOKIE=garbage)).database == "replica"


def test_a_failed_write_makes_its_client_sticky_too(replica):
    response = Client().post(LIST, {"description": ""}, content_type="application/json")
    assert response.status_code == 400
    assert replicas.STICKY_COOKIE in response.cookies


def test_the_credentials_of_a_write_make_its_clients_reads_go_to_the_primary(replica):
    user = UserFactory(password="secret-password-1")
    client = Client()
    login = client.post(
        "/api/auth/token/",
        {"username": user.username, "password": "secret-password-1"},
        content_type="application/json",
    )
    assert login.status_code == 200, login.content
    token = login.json()["token"]
    # The new token was recorded (the login itself sent none).
    assert replicas.decide(environ(AUTHORIZATION=f"Token {token}")).sticky
    assert replicas.decide(environ(AUTHORIZATION=f"token  {token} ")).sticky
    assert not replicas.decide(environ(AUTHORIZATION="Token someone-elses")).sticky

    # A write sent with a credential records it.
    other = UserFactory(password="secret-password-2")
    basic = "Basic " + base64.b64encode(f"{other.username}:secret-password-2".encode()).decode()
    assert not replicas.decide(environ(AUTHORIZATION=basic)).sticky
    created = Client().post(LIST, CREATE, content_type="application/json", HTTP_AUTHORIZATION=basic)
    assert created.status_code == 201
    assert replicas.decide(environ(AUTHORIZATION=basic)).sticky


def test_an_anonymous_creates_reporter_token_is_recorded(replica):
    created = Client().post(LIST, CREATE, content_type="application/json")
    assert created.status_code == 201
    token = created.json()["reporter_token"]
    reads = replicas.decide(environ(X_REPORTER_TOKEN=token))
    assert reads.sticky and reads.database == "default"
    assert not replicas.decide(environ(X_REPORTER_TOKEN="another-token")).sticky


def test_stickiness_is_kept_in_the_shared_cache_for_its_seconds(replica, settings):
    settings.REPLICA_STICKY_SECONDS = 1
    Client().post(LIST, CREATE, content_type="application/json", HTTP_X_REPORTER_TOKEN="t-1")
    assert replicas.decide(environ(X_REPORTER_TOKEN="t-1")).sticky
    time.sleep(1.2)
    assert not replicas.decide(environ(X_REPORTER_TOKEN="t-1")).sticky


def test_a_token_or_session_missing_on_the_replica_is_found_on_the_primary(replica):
    """A replica behind a login (here: the token's table shadowed empty) logs no one
    out: the token is looked up again on the primary."""
    user = UserFactory(password="secret-password-1")
    login = Client().post(
        "/api/auth/token/",
        {"username": user.username, "password": "secret-password-1"},
        content_type="application/json",
    )
    token = login.json()["token"]
    with connections["replica"].cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE knox_authtoken AS SELECT * FROM knox_authtoken")
        cursor.execute("DELETE FROM knox_authtoken")
    try:
        cache.clear()  # no longer sticky: its reads go to the replica
        with CaptureQueriesContext(connections["replica"]) as on_replica:
            me = Client().get("/api/me/", HTTP_AUTHORIZATION=f"Token {token}")
        assert me.status_code == 200, me.content
        assert me.json()["username"] == user.username
        assert any("knox_authtoken" in query["sql"] for query in on_replica)
    finally:
        connections["replica"].close()  # its temporary table with it


# --- The response cache reads the version where the data are -------------------------------


@pytest.fixture
def replica_behind(replica):
    """A replica whose data and version differ from the primary's: temporary tables, on
    the replica's connection only, shadow the reports and the data version."""
    SignalementFactory(description="Panne électrique", is_public=True)
    with connections["replica"].cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE signalements_dataversion AS SELECT 0 AS shard, "
            "1000 + (SELECT COALESCE(SUM(value), 0) FROM signalements_dataversion) AS value"
        )
        cursor.execute(
            "CREATE TEMP TABLE signalements_signalement AS SELECT * FROM signalements_signalement"
        )
        cursor.execute("UPDATE signalements_signalement SET description = 'Copie en retard'")
    yield
    connections["replica"].close()  # its temporary tables with it


def descriptions(body: bytes) -> list[str]:
    return [report["description"] for report in json.loads(body)["results"]]


def test_the_response_cache_reads_the_version_on_the_requests_database(replica_behind):
    front = ResponseCache(WSGIHandler(), max_bytes=1024 * 1024)
    primary_version = data_version.current("default")
    replica_version = data_version.current("replica")
    assert replica_version != primary_version

    for _ in range(3):  # stored from the second time, served from the store the third
        status, headers, body = call(front)
        assert status == 200 and descriptions(body) == ["Copie en retard"]
    assert headers.get("X-Cache") == "hit"
    assert front.store.version == replica_version

    # The replica falls behind: the process reads the primary, and never gets the
    # replica's stored body (it would if the version were read on the primary).
    replicas.health.measured(3600.0)
    for _ in range(3):
        status, headers, body = call(front)
        assert status == 200 and descriptions(body) == ["Panne électrique"]
    assert headers.get("X-Cache") == "hit"
    assert front.store.version == primary_version

    # Caught up again: the replica's data, under its version.
    replicas.health.measured(0.0)
    status, headers, body = call(front)
    assert descriptions(body) == ["Copie en retard"] and "X-Cache" not in headers
    assert front.store.version == replica_version


def test_a_sticky_client_is_answered_by_django_from_the_primary(replica_behind):
    front = ResponseCache(WSGIHandler(), max_bytes=1024 * 1024)
    for _ in range(3):
        call(front)
    sticky = f"{replicas.STICKY_COOKIE}={int(time.time()) + 5}"
    for _ in range(3):
        status, headers, body = call(front, COOKIE=sticky)
        assert descriptions(body) == ["Panne électrique"] and "X-Cache" not in headers
    status, headers, body = call(front)  # the others' store is intact
    assert descriptions(body) == ["Copie en retard"] and headers.get("X-Cache") == "hit"


def test_a_replica_that_cannot_give_the_version_is_marked_down_and_the_primary_answers(
    replica,
):
    SignalementFactory(description="Panne électrique", is_public=True)
    front = ResponseCache(WSGIHandler(), max_bytes=1024 * 1024)
    reads = replicas.decide(env := environ())
    assert reads.database == "replica"
    set_replica(unreachable())  # stopped right after the decision
    status, _, body = call_environ(front, env)
    assert status == 200 and descriptions(body) == ["Panne électrique"]
    assert replicas.health.error == "OperationalError"
    assert reads.database == "default"
    assert front.store.version == data_version.current("default")


# --- Failures and the way back --------------------------------------------------------------


def test_an_unreachable_replica_is_marked_down_the_primary_answers_then_it_comes_back(
    replica, monkeypatch
):
    SignalementFactory(description="Panne électrique", is_public=True)
    set_replica(unreachable())  # the process still believes it up
    primary_reads = reads_count("primary")
    response = Client().get(LIST)
    assert response.status_code == 200
    assert [r["description"] for r in response.json()["results"]] == ["Panne électrique"]
    assert replicas.health.error == "OperationalError"
    assert reads_count("primary") == primary_reads + 1
    # Down: not tried again by requests until the next measure.
    assert replicas.decide(environ()).database == "default"

    set_replica(mirror())  # started again
    answers(monkeypatch, in_recovery=True, lag=0.0)
    replica_reads = reads_count("replica")
    response = Client().get(LIST)
    assert response.status_code == 200 and response.json()["count"] == 1
    assert replicas.health.error is None and replicas.health.lag == 0.0
    assert reads_count("replica") == replica_reads + 1


@needs_postgresql
def test_a_replica_that_dies_under_a_request_is_answered_from_the_primary(replica):
    """The replica's connection ends mid-way (its server gone) and no new one can be
    made: the request, run again on the primary, answers 200; the replica is down."""
    SignalementFactory(description="Panne électrique", is_public=True)
    replica_connection = connections["replica"]
    replica_connection.ensure_connection()
    pid = replica_connection.connection.info.backend_pid
    replica_connection.settings_dict["PORT"] = str(closed_port())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.2)
    reads_before = reads_count("primary")
    # As a server runs it: the first run's error is logged, not raised to the caller.
    response = Client(raise_request_exception=False).get(LIST)
    assert response.status_code == 200, response.content
    assert [r["description"] for r in response.json()["results"]] == ["Panne électrique"]
    assert replicas.health.error in ("OperationalError", "InterfaceError")
    assert reads_count("primary") == reads_before + 1


def test_an_unsafe_request_never_touches_the_replica(replica):
    set_replica(unreachable())
    response = Client().post(LIST, CREATE, content_type="application/json")
    assert response.status_code == 201
    assert replicas.health.error is None  # never tried


# --- What operators see ---------------------------------------------------------------------


def test_readyz_says_how_the_replica_is_and_stays_200(replica, monkeypatch):
    answers(monkeypatch, in_recovery=True, lag=0.0)
    ready = Client().get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["replica"] == "ok"

    answers(monkeypatch, in_recovery=True, lag=42.0)
    ready = Client().get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["replica"] == "lagging: 42.0 s, reads on the primary"
    assert replicas.decide(environ()).database == "default"

    answers(monkeypatch, in_recovery=False, lag=0.0)
    ready = Client().get("/readyz")
    assert ready.json()["checks"]["replica"] == "error: NotAReplica, reads on the primary"

    set_replica(unreachable())
    replicas.health.checked = float("-inf")
    ready = Client().get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "cache": "ok",
            "replica": "error: OperationalError, reads on the primary",
        },
    }


@needs_postgresql
def test_the_lag_query_runs_on_postgresql_and_a_primary_is_no_replica(replica):
    """The real query, on the test database (a primary: not in recovery)."""
    replicas.health.checked = float("-inf")
    ready = Client().get("/readyz")
    assert ready.json()["checks"]["replica"] == "error: NotAReplica, reads on the primary"
    assert replicas.decide(environ()).database == "default"


def test_metrics_show_the_replica_and_where_reads_went(replica, settings, monkeypatch):
    settings.METRICS_TOKEN = "metrics-secret"
    bearer = {"HTTP_AUTHORIZATION": "Bearer metrics-secret"}
    answers(monkeypatch, in_recovery=True, lag=1.5)
    Client().get(LIST)
    text = Client().get("/metrics", **bearer).content.decode()
    assert "signalements_replica_up 1.0" in text
    assert "signalements_replica_lag_seconds 1.5" in text
    assert 'signalements_read_requests_total{database="replica"}' in text

    set_replica(unreachable())
    text = Client().get("/metrics", **bearer).content.decode()
    assert "signalements_replica_up 0.0" in text
    assert "\nsignalements_replica_lag_seconds " not in text


def test_metrics_say_nothing_of_a_replica_without_one(no_replica, settings):
    settings.METRICS_TOKEN = "metrics-secret"
    text = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-secret").content.decode()
    assert "signalements_replica_up" not in text
    assert "signalements_replica_lag_seconds" not in text
