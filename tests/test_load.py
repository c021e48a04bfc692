"""Under load, against the production server (`scripts/serve.sh` with 4 workers): 32
concurrent writers and readers for LOAD_SECONDS (30) get no 5xx and no "database is
locked", and every 201 is a row; on SQLite and PostgreSQL. With a shared cache
(`REDIS_URL`, Debian's redis-server started here), the anonymous-create limit holds
across the 4 workers."""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter

import pytest

from .live import DATABASES, LiveServer, free_port, live_database
from .test_faults import REPORT, stored_reports

LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "30"))
WRITERS = 32
READERS = 8


@pytest.mark.parametrize("kind", DATABASES)
def test_writers_and_readers_at_once_get_no_5xx_and_every_201_is_a_row(kind, tmp_path):
    with live_database(kind, tmp_path) as database_url:
        server = LiveServer(database_url, workers=4)
        statuses: Counter = Counter()
        created: list[int] = []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(index):
            connection = server.connection()
            number = 0
            while not stop.is_set():
                number += 1
                body = {**REPORT, "description": f"Charge {index}-{number} : lampadaire éteint"}
                status, _, answer = server.request(
                    "POST", "/api/signalements/", body, connection=connection
                )
                with lock:
                    statuses[("POST", status)] += 1
                    if status == 201:
                        created.append(answer["id"])
                if status == 201 and number % 3 == 0:  # and the reporter edits it
                    token = answer["reporter_token"]
                    status, _, _ = server.request(
                        "PATCH",
                        f"/api/signalements/{answer['id']}/",
                        {"title": "Précisé"},
                        headers={"X-Reporter-Token": token},
                        connection=connection,
                    )
                    with lock:
                        statuses[("PATCH", status)] += 1
            connection.close()

        def reader(index):
            connection = server.connection()
            number = 0
            while not stop.is_set():
                number += 1
                path = (
                    f"/api/signalements/?page_size={10 + number % 40}"
                    if index % 2
                    else "/api/signalements/stats/"
                )
                status, _, _ = server.request("GET", path, connection=connection)
                with lock:
                    statuses[("GET", status)] += 1
            connection.close()

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        threads += [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
        try:
            for thread in threads:
                thread.start()
            time.sleep(LOAD_SECONDS)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            server.stop()
        log = server.log_text()
        stored = stored_reports(database_url)
    print(f"{kind}: {dict(statuses)} in {LOAD_SECONDS:g} s; {len(stored)} rows")
    assert [key for key in statuses if key[1] >= 500] == [], statuses
    assert set(statuses) <= {("POST", 201), ("PATCH", 200), ("GET", 200)}, statuses
    assert "database is locked" not in log
    assert len(stored) == statuses[("POST", 201)] == len(set(created))
    assert statuses[("POST", 201)] > 100


def redis_server():
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    directory = tempfile.mkdtemp(prefix="signalements-redis-")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, port, directory


def test_the_anonymous_create_limit_holds_across_workers_with_redis(tmp_path):
    process, port, directory = redis_server()
    try:
        with live_database("sqlite", tmp_path) as database_url:
            server = LiveServer(
                database_url,
                workers=4,
                REDIS_URL=f"redis://127.0.0.1:{port}/1",
                THROTTLE_ANON_CREATE="5/minute",
            )
            try:
                results = [
                    status
                    for status, _, _ in server.at_once(20, "POST", "/api/signalements/", REPORT)
                ]
            finally:
                server.stop()
            stored = stored_reports(database_url)
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)
    assert Counter(results) == {201: 5, 429: 15}
    assert len(stored) == 5
