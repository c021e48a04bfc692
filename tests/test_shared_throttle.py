"""With a shared cache, a rate limit holds across worker processes: a real gunicorn
with several workers, counters in the database cache."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 3
RATE = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_report(url: str) -> int:
    request = urllib.request.Request(
        url,
        data=b'{"description": "Panne", "date": "2025-04-29T16:30:00"}',
        headers={"Content-Type": "application/json", "Connection": "close"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def gunicorn_with_a_shared_cache(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "signalements_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CACHE_URL": "dbcache://throttle_cache",
        "THROTTLE_ANON_CREATE": f"{RATE}/hour",
        "DEBUG": "0",
        "SECRET_KEY": "test-only",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    subprocess.run([*manage, "createcachetable"], cwd=ROOT, env=env, check=True, timeout=60)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "signalements_project.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/api/signalements/"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_anonymous_create_limit_holds_across_gunicorn_workers(gunicorn_with_a_shared_cache):
    # Each request on a new connection: the workers share them out.
    statuses = [post_report(gunicorn_with_a_shared_cache) for _ in range(RATE * WORKERS)]

    assert statuses[:RATE] == [201] * RATE
    assert set(statuses[RATE:]) == {429}
