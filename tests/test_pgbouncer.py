"""The app servers through PgBouncer in transaction mode (DATABASE_TRANSACTION_POOLING),
with the real parts: Debian's `pgbouncer` started by the test (`pool_mode = transaction`,
2 server connections for every client), in front of a new database on the PostgreSQL
server of `make test-postgres`, and the production server (`scripts/serve.sh`, 3
processes) connected to PgBouncer.

PgBouncer is set to hand its server connections out in turn (`server_round_robin`), so
that each transaction of a client runs on another server connection than its previous
one, as under load, every time rather than by chance: what lives longer than one
transaction is lost at once.

- With DATABASE_TRANSACTION_POOLING=1, everything answers as it should: keyed creates and
  their retries (concurrent ones too), an agent's transitions and comments, the list, a
  detail and the statistics read many times, a PATCH with If-Match (and a stale one),
  the CSV export; PostgreSQL sees no more than the pool's 2 connections, for 3 server
  processes. `manage.py import_signalements` (a temporary table and COPY) and
  `export_signalements` work through it too.
  Each read is made 12 times, over psycopg's `prepare_threshold` (5): no prepared
  statement is asked for (Django's cursors bind parameters on the client, and its
  default threshold is None; the setting keeps it so whatever DATABASE_URL says).
- Without it, the CSV export (a server-side cursor, `.iterator()`, declared WITH HOLD in
  one transaction and fetched from in the next, on another server connection) fails.
- The settings: both flags on the primary and the replica; refused on SQLite.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

import pytest

from .live import (
    ON_POSTGRES,
    ROOT,
    LiveServer,
    api_token,
    free_port,
    live_database,
    server_environment,
    sql,
    stop_process_group,
)

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
POOL_SIZE = 2
READS = 12  # each read well over psycopg's prepare_threshold (5) times
NEW_REPORT = {"description": "Nid-de-poule rue de Siam", "date": "2025-04-29T16:30:00+02:00"}

only_on_postgresql = pytest.mark.skipif(
    not ON_POSTGRES, reason="PgBouncer pools PostgreSQL: runs under make test-postgres"
)
# CI installs pgbouncer: there, a missing one fails the test rather than skip it.
needs_pgbouncer = pytest.mark.skipif(
    not Path(PGBOUNCER).exists() and not os.environ.get("CI"),
    reason="no pgbouncer here (apt-get install pgbouncer); CI installs it",
)


class PgBouncer:
    """Debian's `pgbouncer` in transaction mode on a loopback port, in front of the
    PostgreSQL server of `server_url` (any database of it), until `stop()`. As root it
    runs as the `postgres` user (it refuses to run as root), from a directory of its own
    (pytest's tmp_path is closed to other users)."""

    def __init__(self, server_url: str):
        self.port = free_port()
        self.server = urllib.parse.urlsplit(server_url)
        self.directory = Path(tempfile.mkdtemp(prefix="signalements-pgbouncer."))
        user = self.server.username or "postgres"
        (self.directory / "users.txt").write_text(f'"{user}" ""\n')
        (self.directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={self.server.hostname} port={self.server.port or 5432} user={user}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.directory / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {POOL_SIZE}\n"
            "max_client_conn = 200\n"
            "server_round_robin = 1\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\n"
        )
        command = [PGBOUNCER, str(self.directory / "pgbouncer.ini")]
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
        )

    def url(self, database_url: str) -> str:
        """`database_url` (a database of the same server) through PgBouncer."""
        parts = urllib.parse.urlsplit(database_url)
        return urllib.parse.urlunsplit(parts._replace(netloc=f"postgres@127.0.0.1:{self.port}"))

    def open_server_connections(self, database_url: str) -> None:
        """Waits for PgBouncer to answer, then makes it open its POOL_SIZE server
        connections to the database (as many transactions at once), which it then takes
        in turn."""
        import psycopg

        deadline = time.monotonic() + 20
        while True:
            try:
                clients = [psycopg.connect(self.url(database_url)) for _ in range(POOL_SIZE)]
                break
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {self.log_text()}") from None
                time.sleep(0.1)
        for client in clients:
            client.execute("SELECT 1")  # a transaction, left open: a server connection each
        for client in clients:
            client.commit()  # (closed in a transaction, its server connection would go)
            client.close()

    def log_text(self) -> str:
        log = self.directory / "pgbouncer.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self) -> None:
        stop_process_group(self.process, timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def pgbouncer_in_front_of(database_url: str):
    bouncer = PgBouncer(database_url)
    try:
        bouncer.open_server_connections(database_url)
        yield bouncer
    finally:
        bouncer.stop()


def manage(database_url: str, *command: str) -> None:
    """A management command, with DATABASE_TRANSACTION_POOLING on."""
    completed = subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=server_environment(database_url, DATABASE_TRANSACTION_POOLING="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr


def server_connections(database_url: str) -> int:
    """How many connections to the database PostgreSQL has, besides the one asking."""
    name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    [(count,)] = sql(
        database_url,
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
    )
    return count


def exercise(server: LiveServer, agent: dict, database_url: str) -> None:
    """What the API's clients do, through the pooler, answering as expected."""
    key = {"Idempotency-Key": secrets.token_hex(8)}
    status, headers, created = server.request("POST", "/api/signalements/", NEW_REPORT, key)
    assert status == 201, created
    assert "idempotent-replayed" not in headers
    status, headers, again = server.request("POST", "/api/signalements/", NEW_REPORT, key)
    assert (status, headers.get("idempotent-replayed"), again) == (201, "true", created)
    # Concurrent retries of one create: they wait for the first on its row lock.
    concurrent = server.at_once(
        6, "POST", "/api/signalements/", NEW_REPORT, {"Idempotency-Key": "at-once"}
    )
    assert [status for status, _, _ in concurrent] == [201] * 6, concurrent
    assert len({body["id"] for _, _, body in concurrent}) == 1
    more = [
        server.request("POST", "/api/signalements/", {**NEW_REPORT, "title": f"n°{n}"})
        for n in range(5)
    ]
    assert [status for status, _, _ in more] == [201] * 5
    assert sql(database_url, "SELECT count(*) FROM signalements_signalement") == [(7,)]

    report = f"/api/signalements/{created['id']}/"
    for to_status, note in (("acknowledged", "Vu"), ("in_progress", "Équipe en route")):
        status, _, body = server.request(
            "POST", f"{report}transition/", {"status": to_status, "note": note}, agent
        )
        assert (status, body["status"]) == (200, to_status), body
    for text in ("Équipe prévenue", "Intervention lundi"):
        status, _, body = server.request("POST", f"{report}comments/", {"body": text}, agent)
        assert status == 201, body

    connection = server.connection()  # one client, many requests: keep-alive
    for _ in range(READS):
        status, _, listed = server.request(
            "GET", "/api/signalements/", headers=agent, connection=connection
        )
        assert (status, listed["count"]) == (200, 7)
        status, headers, detail = server.request(
            "GET", report, headers=agent, connection=connection
        )
        assert (status, detail["status"]) == (200, "in_progress")
        status, _, stats = server.request(
            "GET", "/api/signalements/stats/", headers=agent, connection=connection
        )
        assert status == 200, stats
    connection.close()
    assert stats["total"] == 7, stats

    etag = headers["etag"]
    status, _, patched = server.request(
        "PATCH", report, {"priority": "high"}, {**agent, "If-Match": etag}
    )
    assert (status, patched["priority"]) == (200, "high"), patched
    status, _, stale = server.request(
        "PATCH", report, {"priority": "low"}, {**agent, "If-Match": etag}
    )
    assert (status, stale["errors"][0]["attr"]) == (412, "If-Match"), stale
    assert sql(
        database_url, f"SELECT priority FROM signalements_signalement WHERE id = {created['id']}"
    ) == [("high",)]

    status, _, exported = export(server, agent)
    assert status == 200, exported
    assert len(exported.decode("utf-8-sig").splitlines()) == 1 + 7


def export(server: LiveServer, agent: dict):
    return server.request(
        "GET", "/api/signalements/export.csv", headers={**agent, "Accept": "text/csv"}
    )


@pytest.mark.slow
@only_on_postgresql
@needs_pgbouncer
def test_the_app_servers_work_through_pgbouncer_in_transaction_mode(tmp_path):
    with live_database("postgresql", tmp_path) as direct, pgbouncer_in_front_of(direct) as bouncer:
        agent = {"Authorization": f"Token {api_token(direct, 'agent')}"}
        pooled = bouncer.url(direct)

        server = LiveServer(pooled, workers=3, DATABASE_TRANSACTION_POOLING="1")
        try:
            exercise(server, agent, direct)
            # The 3 processes' connections (and the test's) shared the pool's 2.
            assert server_connections(direct) <= POOL_SIZE
            assert "Traceback" not in server.log_text(), server.log_text()
        finally:
            server.stop()
        # The bulk import (a temporary table and COPY, in each batch's transaction) and
        # the bulk export, through the pooler too.
        imported = tmp_path / "import.jsonl"
        rows = [
            {"description": f"Panne {n}", "date": "2025-04-29", "external_id": f"ailleurs-{n}"}
            for n in range(30)
        ]
        imported.write_text("".join(json.dumps(row) + "\n" for row in rows))
        manage(pooled, "import_signalements", str(imported))
        assert sql(direct, "SELECT count(*) FROM signalements_signalement") == [(37,)]
        manage(pooled, "export_signalements", str(tmp_path / "export.jsonl"))
        assert len((tmp_path / "export.jsonl").read_text().splitlines()) == 37

        # The same server without the setting: the export's server-side cursor is
        # declared on one server connection and fetched from on the other.
        server = LiveServer(pooled, workers=2)
        try:
            status, _, body = export(server, agent)
            assert status == 500, body
            assert "InvalidCursorName: cursor" in server.log_text(), server.log_text()
        finally:
            server.stop()


def settings_of(**environment: str) -> subprocess.CompletedProcess:
    """The DATABASES that settings.py makes of `environment`, printed by a new process."""
    script = (
        "from django.conf import settings;"
        "print({alias: (d.get('DISABLE_SERVER_SIDE_CURSORS', False),"
        " d['OPTIONS'].get('prepare_threshold', 'unset'))"
        " for alias, d in settings.DATABASES.items()})"
    )
    env = server_environment("sqlite:///unused.sqlite3")
    env.pop("DATABASE_REPLICA_URL", None)
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_the_setting_keeps_the_primary_and_the_replica_off_session_state():
    # `prepare_threshold` from the URL is overruled: a pooler cannot keep prepared statements.
    completed = settings_of(
        DATABASE_URL="postgres://app@db.example/signalements?prepare_threshold=5",
        DATABASE_REPLICA_URL="postgres://app@replica.example/signalements",
        DATABASE_TRANSACTION_POOLING="1",
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "{'default': (True, None), 'replica': (True, None)}"


def test_without_the_setting_the_database_options_are_left_alone():
    completed = settings_of(
        DATABASE_URL="postgres://app@db.example/signalements?prepare_threshold=5",
        DATABASE_TRANSACTION_POOLING="0",
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "{'default': (False, 5)}"


def test_the_setting_is_refused_on_sqlite():
    completed = settings_of(DATABASE_TRANSACTION_POOLING="1")
    assert completed.returncode != 0
    assert "ImproperlyConfigured: DATABASE_TRANSACTION_POOLING is for PostgreSQL" in (
        completed.stderr
    )
