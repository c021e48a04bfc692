"""What the app servers share: nothing in their own memory decides an answer.

- The anonymous-create limit counts the cluster's creates (Redis), not each server's.
- A write through one app server is read through another at once by the client that
  made it (read-your-writes: its token, its cookie, its reporter token, recorded in Redis),
  while the replica, held 1.5 s behind on purpose (`recovery_min_apply_delay`), still
  shows the others the state before; the responses each server keeps in its cache never
  outlive the data they were made from.
"""

import secrets
import time

from .cluster import request

REPLICA_DELAY = "1500ms"


def anonymous_create(cluster, app: int, client: str):
    # The app servers believe the forwarded address of their proxy (127.0.0.1): each test
    # client is a distinct citizen.
    return cluster.create("Nid-de-poule", {"X-Forwarded-For": client}, port=cluster.app_port(app))


def test_the_anonymous_create_limit_counts_the_whole_cluster(cluster):
    client = f"198.51.100.{secrets.randbelow(200) + 1}"
    limit = int(cluster.environment["THROTTLE_ANON_CREATE"].split("/")[0])
    statuses = [anonymous_create(cluster, 1 + n % 3, client).status for n in range(limit)]
    assert statuses == [201] * limit  # two on each server
    refused = [anonymous_create(cluster, app, client) for app in (1, 2, 3)]
    assert [response.status for response in refused] == [429, 429, 429], refused
    assert int(refused[0].headers["Retry-After"]) > 0
    # Another citizen is not held by the first one's count.
    assert anonymous_create(cluster, 2, "203.0.113.77").status == 201


def title_through(cluster, app: int, report_id: int, headers=None) -> tuple[int, str | None]:
    response = request(
        cluster.app_port(app), "GET", f"/api/signalements/{report_id}/", headers=headers
    )
    return response.status, response.json.get("title") if response.status == 200 else None


def wait_until(condition, timeout: float = 15) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "never came"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_write_through_one_server_is_read_through_another_at_once(cluster):
    admin = {"Authorization": f"Token {cluster.token('admin')}"}
    report = request(
        cluster.port,
        "POST",
        "/api/signalements/",
        {"description": "Lampadaire", "date": "2025-04-29T16:30:00+02:00", "title": "avant"},
        admin,
    ).json
    path = f"/api/signalements/{report['id']}/"
    time.sleep(6)  # past the admin's stickiness, the replica has the report
    # An anonymous reader through app3 gets the report from its cache the third time (it
    # is kept from the second).
    for _ in range(2):
        assert request(cluster.app_port(3), "GET", path).status == 200
    cached = request(cluster.app_port(3), "GET", path)
    assert (cached.status, cached.headers["X-Cache"], cached.json["title"]) == (
        200,
        "hit",
        "avant",
    )
    with cluster.replica_behind(REPLICA_DELAY):
        changed = request(cluster.app_port(1), "PATCH", path, {"title": "après"}, admin)
        assert changed.status == 200, changed

        # The writer, through another server, at once: its token is recorded in Redis.
        assert title_through(cluster, 2, report["id"], admin) == (200, "après")
        # Anyone else reads the replica, which has not replayed it yet: the state before
        # (so the writer's answer above came from the primary, not from luck).
        assert title_through(cluster, 3, report["id"]) == (200, "avant")
        # Once the replica replays it, every server's answer changes (the cache's too).
        waited = wait_until(lambda: title_through(cluster, 3, report["id"]) == (200, "après"))
        for app in (1, 2, 3):
            assert title_through(cluster, app, report["id"]) == (200, "après")

        # An anonymous citizen's create: its cookie, and its reporter token, through
        # another server at once; the replica does not have the report yet.
        created = anonymous_create(cluster, 1, f"192.0.2.{secrets.randbelow(200) + 1}")
        assert created.status == 201, created
        cookie = created.headers["Set-Cookie"].split(";")[0]
        assert cookie.startswith("signalements_read_primary=")
        new_path = f"/api/signalements/{created.json['id']}/"
        assert request(cluster.app_port(3), "GET", new_path).status == 404
        assert (
            request(cluster.app_port(2), "GET", new_path, headers={"Cookie": cookie}).status == 200
        )
        reporter = {"X-Reporter-Token": created.json["reporter_token"]}
        assert request(cluster.app_port(3), "GET", new_path, headers=reporter).status == 200
        print(
            f"\nshared state: replica held {REPLICA_DELAY} behind; the writer read its write "
            f"through another server at once, others {waited:.2f} s later"
        )
