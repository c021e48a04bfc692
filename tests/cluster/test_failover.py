"""An app server lost under load loses nothing.

wrk sends a mixed load through nginx (reads of the list and of reports, creates by an
agent) while three clients create reports with an `Idempotency-Key` each and send the same
request again when an answer is lost; in the middle, one app server is killed with
`kill -9` (all its processes), then started again:

- every create that was answered 201 is in the primary;
- a request in flight on the dead server fails at most once: nginx passes a read (and any
  request not yet sent) to another server, and a create lost with the server is retried by
  its client, which gets the report once (created, or the first answer replayed);
- no report is created twice;
- the server started again gets its share of the requests.
"""

import http.client
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from .cluster import request

LOAD_SECONDS = 24
KILL_AFTER = 7
RESTART_AFTER = 7
CONNECTIONS = 8


class Creator(threading.Thread):
    """Creates reports one after the other until stopped, each with a key of its own,
    sent again with the same key while the answer is lost (a broken connection, 502,
    504) or the first request still runs elsewhere (409)."""

    def __init__(self, port: int, token: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.token, self.stop = port, token, stop
        self.created: dict[str, int] = {}  # key -> id of the report
        self.attempts: dict[str, list] = {}  # key -> what each attempt got
        self.unexpected: list = []

    def run(self):
        while not self.stop.is_set():
            key = str(uuid.uuid4())
            attempts = self.attempts[key] = []
            while len(attempts) < 20:
                try:
                    response = request(
                        self.port,
                        "POST",
                        "/api/signalements/",
                        {"description": f"idem {key}", "date": "2025-04-29T16:30:00+02:00"},
                        {"Authorization": f"Token {self.token}", "Idempotency-Key": key},
                        timeout=20,
                    )
                except (OSError, http.client.HTTPException) as error:
                    attempts.append(type(error).__name__)
                    time.sleep(0.2)
                    continue
                attempts.append(response.status)
                if response.status in (200, 201):
                    self.created[key] = response.json["id"]
                    break
                if response.status not in (409, 502, 504):
                    self.unexpected.append((key, response))
                    break
                time.sleep(0.2)


def test_an_app_server_killed_under_load_loses_nothing(cluster, tmp_path):
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.fail("wrk is not installed (make test-cluster installs it: bench/ensure-tools.sh)")
    token = cluster.token("agent")
    last_id = cluster.last_of_first_ids()
    output = tmp_path / "wrk"
    output.mkdir()
    load = subprocess.Popen(
        [
            wrk,
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{LOAD_SECONDS}s",
            "--timeout",
            "20s",
            "-s",
            str(Path(__file__).with_name("mixed.lua")),
            cluster.url,
            "--",
            token,
            str(output),
            str(last_id),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    stop = threading.Event()
    creators = [Creator(cluster.port, token, stop) for _ in range(3)]
    for creator in creators:
        creator.start()
    started = time.monotonic()
    try:
        time.sleep(KILL_AFTER)
        victims = cluster.pids("app2")
        assert len(victims) >= 2, victims  # granian and its worker process
        cluster.kill("app2")
        killed_at = time.monotonic() - started
        assert cluster.pids("app2") == []
        time.sleep(RESTART_AFTER)
        cluster.start("app2")
        restarted_at = time.monotonic() - started
        summary, _ = load.communicate(timeout=LOAD_SECONDS + 60)
    finally:
        stop.set()
        for creator in creators:
            creator.join(60)
        if load.poll() is None:
            load.kill()
    assert load.returncode == 0, summary

    # What wrk got: every 201's report is in the primary, the failures are the creates
    # that were on the dead server (at most one per connection), nothing else.
    created, failed = [], []
    for file in output.glob("wrk-*.txt"):
        for line in file.read_text().splitlines():
            kind, value = line.split()
            (created if kind == "created" else failed).append(int(value))
    assert created, summary
    found = {
        row[0]
        for row in cluster.sql(
            "SELECT id FROM signalements_signalement WHERE id = ANY(%s)", params=(created,)
        )
    }
    assert found == set(created), f"lost: {sorted(set(created) - found)}"
    assert len(failed) <= CONNECTIONS, (failed, summary)
    assert set(failed) <= {502, 504}, failed
    assert "Socket errors" not in summary, summary
    duplicated = cluster.sql(
        "SELECT description, COUNT(*) FROM signalements_signalement "
        "WHERE description LIKE 'wrk %%' GROUP BY description HAVING COUNT(*) > 1"
    )
    assert duplicated == []

    # The retrying clients: every key acknowledged, at most one failed attempt each, one
    # report per key, the one whose id the client got.
    unexpected = [item for creator in creators for item in creator.unexpected]
    assert unexpected == []
    acknowledged = {key: id_ for creator in creators for key, id_ in creator.created.items()}
    attempts = {key: tries for creator in creators for key, tries in creator.attempts.items()}
    assert set(acknowledged) == set(attempts)
    retried = {key: tries for key, tries in attempts.items() if len(tries) > 1}
    for key, tries in retried.items():
        assert len([t for t in tries if t not in (200, 201, 409)]) <= 1, (key, tries)
    rows = cluster.sql(
        "SELECT description, COUNT(*), MIN(id) FROM signalements_signalement "
        "WHERE description LIKE 'idem %%' GROUP BY description"
    )
    assert {description[5:]: (count, id_) for description, count, id_ in rows} == {
        key: (1, id_) for key, id_ in acknowledged.items()
    }

    # The server started again is back in nginx's rotation.
    before = len(cluster.upstreams())
    for _ in range(30):
        assert request(cluster.port, "GET", "/api/signalements/").status == 200
    answered_by = cluster.upstreams()[before:]
    assert f"127.0.0.1:{cluster.app_port(2)}" in answered_by, answered_by

    print(
        f"\nfailover: wrk {CONNECTIONS} connections {LOAD_SECONDS} s through nginx, app2 "
        f"killed at {killed_at:.1f} s ({len(victims)} processes), started again at "
        f"{restarted_at:.1f} s\n"
        f"{summary}"
        f"wrk: {len(created)} creates acknowledged (201), all in the primary; "
        f"{len(failed)} answers failed {sorted(set(failed))}\n"
        f"retrying clients: {len(acknowledged)} reports acknowledged, {len(retried)} "
        f"sent again ({sum(len(t) - 1 for t in retried.values())} retries: "
        f"{[t for t in retried.values()]}), one row each"
    )


def test_a_create_cut_off_by_a_lost_server_is_retried_once(cluster):
    """The case the load above meets by chance, made certain: a create waits in the
    database (a lock held by the test) on the only server nginx may use when that server is
    killed. Its client gets a 502 (nginx never sends a POST twice); sent again with its
    key, once the server is gone from the rotation, the report is created once."""
    import psycopg

    token = cluster.token("agent")
    key = str(uuid.uuid4())
    body = {"description": f"cut {key}", "date": "2025-04-29T16:30:00+02:00"}
    headers = {"Authorization": f"Token {token}", "Idempotency-Key": key}
    answers = []
    cluster.balance("app2")
    try:
        with psycopg.connect(cluster.primary) as lock:
            lock.execute("LOCK TABLE signalements_signalement IN SHARE ROW EXCLUSIVE MODE")
            sender = threading.Thread(
                target=lambda: answers.append(
                    request(cluster.port, "POST", "/api/signalements/", body, headers)
                )
            )
            sender.start()
            deadline = time.monotonic() + 20
            while not cluster.sql(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'INSERT INTO \"signalements_signalement\"%%'"
            ):
                assert time.monotonic() < deadline, "the create never reached the database"
                time.sleep(0.05)
            cluster.kill("app2")
            sender.join(30)
            lock.rollback()
        assert [answer.status for answer in answers] == [502], answers
        cluster.balance()
        retried = request(cluster.port, "POST", "/api/signalements/", body, headers)
        while retried.status == 409:  # the dead server's transaction is still being undone
            time.sleep(0.2)
            retried = request(cluster.port, "POST", "/api/signalements/", body, headers)
        assert retried.status == 201, retried
        again = request(cluster.port, "POST", "/api/signalements/", body, headers)
        assert (again.status, again.headers["Idempotent-Replayed"]) == (201, "true")
        assert again.json["id"] == retried.json["id"]
        assert cluster.sql(
            "SELECT id FROM signalements_signalement WHERE description = %s",
            params=(f"cut {key}",),
        ) == [(retried.json["id"],)]
    finally:
        cluster.balance()
        if not cluster.pids("app2"):
            cluster.start("app2")
