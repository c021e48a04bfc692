"""The production server started for real, for the live tests: a database of the test's
own (a SQLite file, or a new database on the PostgreSQL server of `make test-postgres`),
migrated, and `scripts/serve.sh` (what `make serve` runs) on loopback ports."""

import http.client
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = POSTGRES_URL.startswith(("postgres://", "postgresql://"))
DATABASES = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not ON_POSTGRES, reason="runs under make test-postgres"),
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_database(kind: str, tmp_path: Path):
    """The DATABASE_URL of a new, migrated database of `kind`, dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
        migrate(url)
        yield url
        return
    import psycopg

    name = f"live_{secrets.token_hex(6)}"
    parts = urllib.parse.urlsplit(POSTGRES_URL)
    url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def server_environment(database_url: str, **overrides: str) -> dict:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DJANGO_SETTINGS_MODULE": "signalements_project.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "test-only-live-server",
        # Plain HTTP on loopback, no proxy: not redirected to HTTPS (on by default).
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "THROTTLE_ANON_CREATE": "",
        "THROTTLE_USER_WRITE": "",
        "THROTTLE_LOGIN": "",
        "THROTTLE_ANON_EXPENSIVE_READ": "",
        "THROTTLE_SUBSCRIBE": "",
        # And the lockout after failed logins (tests/test_lockout.py), which would answer
        # a fuzzer's repeated wrong credentials with 429s.
        "LOGIN_FAILURE_LIMIT": "0",
        "LOG_LEVEL": "WARNING",
        "ACCESS_LOG": "0",
        "PYTHONWARNINGS": "ignore",
        **overrides,
    }


def sql(database_url: str, statement: str) -> list[tuple]:
    """Runs one SQL statement on a live database, outside the server (committed); its
    rows, if any."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            return connection.execute(statement).fetchall()
    import psycopg

    with psycopg.connect(database_url) as connection:
        cursor = connection.execute(statement)
        return cursor.fetchall() if cursor.description else []


def migrate(database_url: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env=server_environment(database_url),
        check=True,
        timeout=300,
    )


class LiveServer:
    """`scripts/serve.sh` on a loopback port, until `stop()`."""

    def __init__(self, database_url: str, *, workers: int = 2, **overrides: str):
        self.port = free_port()
        env = server_environment(
            database_url,
            HOST="127.0.0.1",
            PORT=str(self.port),
            WEB_CONCURRENCY=str(workers),
            **overrides,
        )
        # The server's log goes to a file: a pipe nobody reads fills up (64 KB of 4xx
        # warnings under a fuzzer) and then blocks the server.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            ["scripts/serve.sh"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        self.wait_until_ready()

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log_text()}")
            try:
                status, _, _ = self.request("GET", "/api/")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the server did not answer")

    def log_text(self) -> str:
        """What the server wrote on its standard error so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None, headers=None, connection=None):
        """(status, headers with lower-case names, parsed JSON or raw bytes), on a
        keep-alive `connection` or a new one."""
        own = connection is None
        connection = connection or self.connection()
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=data, headers=all_headers)
            response = connection.getresponse()
            payload = response.read()
            try:
                parsed = json.loads(payload) if payload else None
            except ValueError:
                parsed = payload
            headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, headers, parsed
        finally:
            if own:
                connection.close()

    def at_once(self, count: int, method: str, path: str, body=None, headers=None) -> list:
        """`count` requests sent at the same moment, each on its own connection, opened
        beforehand; `body` may be a function of the request's index. Their answers, in
        order (as `request` gives them)."""
        results = [None] * count
        start = threading.Barrier(count)

        def send(index):
            connection = self.connection()
            connection.connect()
            start.wait()
            data = body(index) if callable(body) else body
            results[index] = self.request(method, path, data, headers, connection=connection)
            connection.close()

        threads = [threading.Thread(target=send, args=(index,)) for index in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    def stop(self) -> None:
        stop_process_group(self.process)


def stop_process_group(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM to every process of `process`'s group (started with start_new_session),
    then SIGKILL to those still there after `timeout` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def api_token(database_url: str, role: str) -> str:
    """The API token of a new user of `role` ("agent": in the agents' group, or "admin": a
    superuser), made in the live database by `manage.py shell`."""
    script = (
        "from django.contrib.auth import get_user_model;"
        "from django.contrib.auth.models import Group;"
        "from knox.models import AuthToken;"
        "from signalements.models import AGENTS_GROUP;"
        "User = get_user_model();"
        + (
            "user = User.objects.create_superuser('admin-live', 'a@example.org', 'x');"
            if role == "admin"
            else "user = User.objects.create_user('agent-live', 'a@example.org', 'x',"
            " is_staff=True);"
            "user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0]);"
        )
        + "print(AuthToken.objects.create(user=user)[1])"
    )
    completed = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=server_environment(database_url),
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip().splitlines()[-1]


def wait_for(condition, timeout: float = 40):
    """`condition()`'s first true value, asked every 0.1 s; an AssertionError after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


class Worker:
    """`manage.py worker` on the database queue of a live database, polling every 0.2 s,
    until stopped or killed; `overrides` are settings of its environment."""

    def __init__(self, database_url: str, **overrides: str):
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "worker",
                "--no-startup-delay",
                "--no-reload",
                "--interval",
                "0.2",
            ],
            cwd=ROOT,
            env=server_environment(database_url, **{"TASKS_BACKEND": "database", **overrides}),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )

    def kill(self) -> None:
        """`kill -9`: no chance to finish anything."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process_group(self.process)

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")
