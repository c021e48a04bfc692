"""The replica lost, stopped or behind: reads go on through the primary, no 5xx.

Readers send the list, reports' details (anonymous: the response cache; with a token:
Django) through nginx all along, while the replica is killed with `kill -9`, started
again, stopped with `pg_ctl stop -m fast`, started again; then held further behind than
REPLICA_MAX_LAG_SECONDS. Every answer is a 200; `/readyz` stays 200 and says where the
reads go; once the replica is back, the app servers read it again.
"""

import http.client
import random
import threading
import time

from .cluster import request


class Readers:
    def __init__(self, cluster, token: str, last_id: int, count: int = 4):
        self.cluster, self.token, self.last_id = cluster, token, last_id
        self.stop = threading.Event()
        self.answers: dict[int, int] = {}
        self.problems: list = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.read, daemon=True) for _ in range(count)]

    def read(self):
        rng = random.Random()
        while not self.stop.is_set():
            kind = rng.randrange(3)
            headers = {}
            if kind == 0:
                path = f"/api/signalements/?page={rng.randint(1, 3)}"
            else:
                path = f"/api/signalements/{rng.randint(1, self.last_id)}/"
                if kind == 2:
                    headers = {"Authorization": f"Token {self.token}"}
            try:
                response = request(self.cluster.port, "GET", path, headers=headers, timeout=30)
            except (OSError, http.client.HTTPException) as error:
                with self.lock:
                    self.problems.append((path, repr(error)))
                continue
            with self.lock:
                self.answers[response.status] = self.answers.get(response.status, 0) + 1
                if response.status != 200:
                    self.problems.append((path, response))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def replica_word(cluster, app: int) -> tuple[int, str]:
    response = request(cluster.app_port(app), "GET", "/readyz")
    return response.status, response.json["checks"]["replica"]


def wait_for_every_server(cluster, accept, timeout: float = 20) -> list:
    deadline = time.monotonic() + timeout
    while True:
        words = [replica_word(cluster, app) for app in (1, 2, 3)]
        if all(accept(status, word) for status, word in words):
            return words
        assert time.monotonic() < deadline, words
        time.sleep(0.2)


def replica_reads(cluster, app: int) -> float:
    metrics = cluster.metrics(app)
    return metrics.get('signalements_read_requests_total{database="replica"}', 0.0)


def test_the_replica_lost_then_back_no_5xx(cluster):
    token = cluster.token("agent")
    last_id = cluster.last_of_first_ids()
    events = []
    with Readers(cluster, token, last_id) as readers:
        wait_for_every_server(cluster, lambda status, word: (status, word) == (200, "ok"))
        for how in ("kill", "stop"):
            time.sleep(2)
            (cluster.kill if how == "kill" else cluster.stop)("replica")
            lost = time.monotonic()
            words = wait_for_every_server(
                cluster, lambda status, word: status == 200 and word.startswith("error")
            )
            events.append(f"replica {how}: every /readyz 200, {words[0][1]!r}")
            for app in (1, 2, 3):
                assert cluster.metrics(app)["signalements_replica_up"] == 0
            time.sleep(3)  # reads go on through the primary
            cluster.start("replica")
            # (A replica started again is read once a measure finds it caught up.)
            wait_for_every_server(
                cluster, lambda status, word: (status, word) == (200, "ok"), timeout=60
            )
            events.append(f"  back in every server's reads {time.monotonic() - lost:.1f} s later")
        time.sleep(2)
    assert readers.problems == [], readers.problems[:10]
    assert set(readers.answers) == {200}

    # The servers read the replica again: details read with a token, on app1 directly.
    before = replica_reads(cluster, 1)
    for report_id in range(1, 21):
        response = request(
            cluster.app_port(1),
            "GET",
            f"/api/signalements/{report_id}/",
            headers={"Authorization": f"Token {token}"},
        )
        assert response.status == 200
    assert replica_reads(cluster, 1) - before >= 20  # and the scrape of "before"
    assert cluster.metrics(1)["signalements_replica_up"] == 1
    print(
        f"\nreplica: {sum(readers.answers.values())} reads through nginx while it was "
        f"killed and stopped, answers {readers.answers}\n" + "\n".join(events)
    )


def test_a_replica_too_far_behind_is_not_read(cluster):
    admin = {"Authorization": f"Token {cluster.token('admin')}"}
    with cluster.replica_behind("5s"):  # REPLICA_MAX_LAG_SECONDS is 3
        words = wait_for_every_server(
            cluster, lambda status, word: status == 200 and word.startswith("lagging")
        )
        before = [replica_reads(cluster, app) for app in (1, 2, 3)]
        created = cluster.create("Chaussée effondrée", admin)
        assert created.status == 201
        # Anyone, through any server, at once: the primary answers.
        for app in (1, 2, 3):
            path = f"/api/signalements/{created.json['id']}/"
            assert request(cluster.app_port(app), "GET", path).status == 200
        assert [replica_reads(cluster, app) for app in (1, 2, 3)] == before
        lag = cluster.metrics(1)["signalements_replica_lag_seconds"]
        assert lag > 3
    wait_for_every_server(cluster, lambda status, word: (status, word) == (200, "ok"))
    print(f"\nreplica 5 s behind: {words[0][1]!r} (metrics: lag {lag:.1f} s), reads on the primary")
