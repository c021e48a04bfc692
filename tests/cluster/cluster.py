"""A whole cluster started for real by `scripts/cluster.sh up` (what `make cluster` runs):
nginx, three app servers, two task workers, a PostgreSQL primary and its streaming
replica, Redis, on free loopback ports, in a directory of the test run's own; and what
the tests do to it (kill a part, start it again, ask the databases)."""

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg

from ..live import stop_process_group

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "scripts" / "cluster.sh"

# What the tests need of the app servers, beside what scripts/cluster.sh sets: no limit on
# the load's writes (an agent's token), a small anonymous-create limit whose count must be
# the cluster's, fast webhook retries and task recovery, the replica checked every second.
SETTINGS = {
    "THROTTLE_ANON_CREATE": "6/minute",
    "THROTTLE_USER_WRITE": "",
    "THROTTLE_LOGIN": "",
    "THROTTLE_ANON_EXPENSIVE_READ": "",
    "THROTTLE_SUBSCRIBE": "",
    "LOGIN_FAILURE_LIMIT": "0",
    "WEBHOOK_ALLOW_PRIVATE": "1",
    "WEBHOOK_RETRY_DELAYS": "1,1,2",
    # A held delivery waits for the test to kill its worker, not for its own timeout; a
    # claim is taken over after twice that and 2 s (signalements/webhooks.py).
    "WEBHOOK_TIMEOUT_SECONDS": "5",
    "WEBHOOK_SWEEP_SECONDS": "1",
    "TASKS_ABANDONED_AFTER_SECONDS": "3",
    "REPLICA_CHECK_SECONDS": "1",
    "REPLICA_STICKY_SECONDS": "5",
    "REPLICA_MAX_LAG_SECONDS": "3",
    "ACCESS_LOG": "0",
}


def free_base_port() -> int:
    """A port P such that P…P+12 are free (nginx, the app servers, the databases, Redis)."""
    import random
    import socket

    for _ in range(200):
        base = random.randrange(20000, 40000, 20)
        try:
            for port in range(base, base + 13):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free range of ports")


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def request(
    port: int, method: str, path: str, body=None, headers=None, timeout: float = 30
) -> Response:
    """One HTTP request on a new connection to 127.0.0.1:port (a JSON body if given)."""
    headers = dict(headers or {})
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, payload, headers)
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


class Cluster:
    def __init__(self, directory: Path, **settings: str):
        self.directory = directory
        self.port = free_base_port()
        self.app_servers = 3
        self.environment = {
            **{
                name: value
                for name, value in os.environ.items()
                # The test run's own database and tasks settings are not the cluster's.
                if name not in ("DATABASE_URL", "TASKS_BACKEND", "DJANGO_SETTINGS_MODULE")
            },
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "CLUSTER_DIR": str(directory),
            "CLUSTER_PORT": str(self.port),
            "CLUSTER_APP_SERVERS": str(self.app_servers),
            "CLUSTER_TASK_WORKERS": "2",
            **SETTINGS,
            **settings,
        }
        self.process: subprocess.Popen | None = None
        self.log = directory.parent / f"{directory.name}-up.log"

    # --- Addresses ---
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app_port(self, number: int) -> int:
        return self.port + number

    @property
    def primary(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port + 10}/signalements"

    @property
    def replica(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port + 11}/signalements"

    # --- Life ---
    def up(self, timeout: float = 240) -> None:
        self.process = subprocess.Popen(
            [str(SCRIPT), "up"],
            cwd=ROOT,
            env=self.environment,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "cluster: ready" in self.log.read_text():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"scripts/cluster.sh up stopped:\n{self.log.read_text()}")
            time.sleep(0.5)
        raise RuntimeError(f"the cluster did not start:\n{self.log.read_text()}")

    def down(self) -> None:
        if self.process is None:
            return
        stop_process_group(self.process, timeout=120)
        subprocess.run([str(SCRIPT), "down"], cwd=ROOT, env=self.environment, check=False)

    def script(self, *arguments: str, timeout: float = 120) -> str:
        completed = subprocess.run(
            [str(SCRIPT), *arguments],
            cwd=ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert completed.returncode == 0, completed.stderr
        return completed.stdout

    def kill(self, part: str) -> None:
        """kill -9 every process of the part: a machine lost."""
        self.script("kill", part)

    def stop(self, part: str) -> None:
        self.script("stop", part)

    def start(self, part: str) -> None:
        self.script("start", part)

    def balance(self, *parts: str) -> None:
        """nginx sends requests to these app servers only (all of them without any)."""
        self.script("balance", *parts)
        time.sleep(1)  # the old nginx worker finishes its requests, the new one takes over

    def pids(self, part: str) -> list[int]:
        """The processes of a part (its process group)."""
        group = int((self.directory / "pids" / f"{part}.pid").read_text())
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == group:
                        found.append(int(entry.name))
                except ProcessLookupError:
                    continue
        return found

    def manage(self, *arguments: str) -> str:
        """`manage.py` with the app servers' environment (scripts/cluster.sh's)."""
        command = f"source {self.directory / 'cluster.env'} && python manage.py " + " ".join(
            arguments
        )
        completed = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return completed.stdout

    def sql(self, statement: str, *, replica: bool = False, params=()) -> list[tuple]:
        with psycopg.connect(self.replica if replica else self.primary, autocommit=True) as db:
            return db.execute(statement, params).fetchall()

    def last_of_first_ids(self) -> int:
        """N such that reports 1…N all exist (ids have gaps: a create rolled back, by a
        server killed in the middle, still took its number)."""
        return self.sql(
            "SELECT COALESCE(MIN(number), 1) - 1 FROM generate_series(1, "
            "(SELECT COALESCE(MAX(id), 0) + 1 FROM signalements_signalement)) AS number "
            "WHERE number NOT IN (SELECT id FROM signalements_signalement)"
        )[0][0]

    def create(self, description: str, headers: dict, *, port: int | None = None) -> Response:
        """A report created through nginx (or the app server on `port`)."""
        return request(
            port or self.port,
            "POST",
            "/api/signalements/",
            {"description": description, "date": "2025-04-29T16:30:00+02:00"},
            headers,
        )

    def token(self, username: str = "agent") -> str:
        response = request(
            self.port,
            "POST",
            "/api/auth/token/",
            {"username": username, "password": "signalements"},
        )
        assert response.status == 200, response
        return response.json["token"]

    def metrics(self, app: int) -> dict[str, float]:
        """One app server's /metrics, as {"name{labels}": value}."""
        response = request(
            self.app_port(app),
            "GET",
            "/metrics",
            headers={"Authorization": f"Bearer {self.metrics_token}"},
        )
        assert response.status == 200, response
        values = {}
        for line in response.body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    @property
    def metrics_token(self) -> str:
        environment = (self.directory / "cluster.env").read_text()
        return re.search(r'^export METRICS_TOKEN="?([^"\n]*)"?$', environment, re.M).group(1)

    @contextmanager
    def replica_behind(self, delay: str):
        """The replica replays each commit `delay` late (`recovery_min_apply_delay`), while the
        primary commits a heartbeat every 100 ms: the replica's measured lag (the age of the
        last commit it replayed) is then the delay, as under a steady load, not the time since
        the last write of a quiet cluster."""
        stop = threading.Event()

        def beat():
            with psycopg.connect(self.primary, autocommit=True) as primary:
                primary.execute(
                    "CREATE TABLE IF NOT EXISTS cluster_test_heartbeat (at timestamptz)"
                )
                while not stop.wait(0.1):
                    primary.execute("INSERT INTO cluster_test_heartbeat VALUES (now())")

        heart = threading.Thread(target=beat, daemon=True)
        heart.start()
        with psycopg.connect(self.replica, autocommit=True) as replica:
            replica.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{delay}'")
            replica.execute("SELECT pg_reload_conf()")
            try:
                time.sleep(3)  # the delay in force, and measured by every server since
                yield
            finally:
                replica.execute("ALTER SYSTEM RESET recovery_min_apply_delay")
                replica.execute("SELECT pg_reload_conf()")
                stop.set()
                heart.join()

    def failures(self) -> list[str]:
        """nginx's log lines of the answers that were not a success."""
        log = (self.directory / "logs" / "nginx-access.log").read_text()
        # (499: wrk closed its connections at the end of its run, requests in flight.)
        return [
            line
            for line in log.splitlines()
            if re.search(r'" [45][0-9][0-9] ', line) and '" 499 ' not in line
        ]

    def upstreams(self) -> list[str]:
        """The app server that answered each request, in the order of nginx's access log."""
        log = (self.directory / "logs" / "nginx-access.log").read_text()
        return re.findall(r" upstream=(\S+) ", log)
