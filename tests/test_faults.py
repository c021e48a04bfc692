"""Under faults, against the production server (`scripts/serve.sh`, as `make serve`
runs it): a `kill -9` of every server process in the middle of a write load loses no
acknowledged report and leaves the database intact; a stopped PostgreSQL makes the API
answer 503 in its error shape (not a 500, not a hang), `/healthz` stays 200 and
`/readyz` turns 503, and service resumes by itself when PostgreSQL is back."""

import glob
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from .live import DATABASES, LiveServer, free_port, live_database, migrate, sql

REPORT = {"description": "Panne électrique rue de Brest", "date": "2025-04-29T16:30:00+02:00"}


def write_load(server: LiveServer, stop: threading.Event, writers: int = 8):
    """Writer threads creating reports until `stop` (or until the server dies); returns
    the acknowledged reports (201: id and description) and the other answers."""
    acknowledged: list[dict] = []
    others: list = []
    lock = threading.Lock()

    def write(index):
        number = 0
        while not stop.is_set():
            number += 1
            body = {**REPORT, "description": f"Rapport {index}-{number} : panne électrique"}
            try:
                status, _, answer = server.request("POST", "/api/signalements/", body)
            except (OSError, http.client.HTTPException) as error:  # killed under it
                with lock:
                    others.append(type(error).__name__)
                return
            with lock:
                if status == 201:
                    acknowledged.append({"id": answer["id"], "description": body["description"]})
                else:
                    others.append(status)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    return threads, acknowledged, others


def stored_reports(database_url: str) -> dict[int, str]:
    return dict(sql(database_url, "SELECT id, description FROM signalements_signalement"))


@pytest.mark.parametrize("kind", DATABASES)
def test_kill_9_in_the_middle_of_writes_loses_no_acknowledged_report(kind, tmp_path):
    with live_database(kind, tmp_path) as database_url:
        server = LiveServer(database_url, workers=2)
        stop = threading.Event()
        threads, acknowledged, others = write_load(server, stop)
        try:
            deadline = time.monotonic() + 30
            while len(acknowledged) < 50 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.killpg(server.process.pid, signal.SIGKILL)  # every process of the server
            server.process.wait()
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            server.stop()
        assert len(acknowledged) >= 50, others
        stored = stored_reports(database_url)
        missing = [
            report for report in acknowledged if stored.get(report["id"]) != report["description"]
        ]
        assert missing == []
        if kind == "sqlite":
            assert sql(database_url, "PRAGMA integrity_check") == [("ok",)]
        # Started again, it serves, and every report is there.
        again = LiveServer(database_url, workers=2)
        try:
            status, _, listed = again.request("GET", "/api/signalements/?page_size=1")
            created, _, _ = again.request("POST", "/api/signalements/", REPORT)
        finally:
            again.stop()
        assert status == 200 and listed["count"] == len(stored) >= len(acknowledged)
        assert created == 201


# --- PostgreSQL stopped -----------------------------------------------------------------


def postgres_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class Cluster:
    """A PostgreSQL cluster of this test's own, which it stops and starts."""

    def __init__(self, binaries: Path):
        self.binaries = binaries
        self.directory = Path(tempfile.mkdtemp(prefix="signalements-faults-"))
        self.port = free_port()
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.directory, "postgres")
        self.run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()

    @property
    def data(self) -> str:
        return str(self.directory / "data")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *arguments: str) -> None:
        command = [str(self.binaries / program), *arguments]
        if self.root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} "
            # No fsync (the machine does not crash), but a commit is in the WAL before
            # it is acknowledged: an immediate stop keeps it.
            "-c fsync=off -c full_page_writes=off"
        )
        self.run(
            "pg_ctl",
            "-D",
            self.data,
            "-l",
            str(self.directory / "log"),
            "-w",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        self.run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def own_postgres():
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's server is not installed (apt-get install -y postgresql)")
    cluster = Cluster(binaries)
    try:
        yield cluster
    finally:
        cluster.remove()


def timed(server, method, path, body=None, headers=None):
    started = time.monotonic()
    status, response_headers, answer = server.request(method, path, body, headers)
    return status, response_headers, answer, time.monotonic() - started


def test_a_stopped_postgresql_is_a_503_then_service_resumes_by_itself():
    with own_postgres() as cluster:
        migrate(cluster.url)
        server = LiveServer(cluster.url, workers=2)
        try:
            assert server.request("POST", "/api/signalements/", REPORT)[0] == 201
            assert server.request("GET", "/readyz")[0] == 200

            cluster.stop()

            status, _, answer, took = timed(server, "GET", "/healthz")
            assert (status, answer) == (200, {"status": "ok"}) and took < 2
            status, _, answer, took = timed(server, "GET", "/readyz")
            assert status == 503 and took < 6
            assert answer["checks"]["database"].startswith("error")
            assert answer["checks"]["cache"] == "ok"
            for method, path, body in [
                ("GET", "/api/signalements/", None),
                ("GET", "/api/signalements/1/", None),
                ("POST", "/api/signalements/", REPORT),
                ("GET", "/api/categories/", None),
            ]:
                status, headers, answer, took = timed(server, method, path, body)
                assert status == 503, (method, path, status, answer)
                assert took < 6
                assert headers["content-type"].startswith("application/json")
                assert headers["retry-after"] == "5"
                assert answer["type"] == "server_error"
                assert answer["errors"][0]["code"] == "service_unavailable"
                assert "Traceback" not in json.dumps(answer)
            status, _, answer, _ = timed(server, "GET", "/open311/v2/services.json")
            assert status == 503 and answer[0]["code"] == 503

            cluster.start()

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if server.request("GET", "/api/signalements/")[0] == 200:
                    break
                time.sleep(0.2)
            status, _, listed = server.request("GET", "/api/signalements/")
            assert status == 200 and listed["count"] == 1
            assert server.request("GET", "/readyz")[0] == 200
            assert server.request("POST", "/api/signalements/", REPORT)[0] == 201
        finally:
            server.stop()


def test_the_database_url_parser_keeps_the_connect_timeout():
    """The 5 s bound on connecting comes from the settings (DATABASE_CONNECT_TIMEOUT)."""
    environment = {
        **os.environ,
        "DATABASE_URL": "postgres://u@127.0.0.1:1/x",
        "DATABASE_CONNECT_TIMEOUT": "3",
        "DEBUG": "1",
    }
    completed = subprocess.run(
        [
            "python",
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']="
            "'signalements_project.settings'; from django.conf import settings; "
            "print(settings.DATABASES['default']['OPTIONS']['connect_timeout'])",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        env={**environment, "PATH": f"{Path(os.sys.executable).parent}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == "3"
