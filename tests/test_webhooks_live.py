"""Webhooks with the real parts: the production server (`scripts/serve.sh`) and real
`manage.py worker` processes on the database queue, a real receiver on 127.0.0.1 that
checks every signature with `standardwebhooks`, on a SQLite file and (under make
test-postgres) on PostgreSQL.

- Retries and order: the first event of a report fails twice on purpose; the worker
  tries it again after WEBHOOK_RETRY_DELAYS (1 s, 1 s), and the report's later events
  wait for it, then arrive in order.
- At least once: a worker killed with `kill -9` in the middle of a delivery (the receiver
  holds the request until then) loses nothing: a second worker delivers it again, with
  the same `webhook-id`, then the event that waited behind it.
"""

import time

import pytest

from .live import DATABASES, LiveServer, Worker, api_token, live_database, sql
from .webhook_receiver import Receiver

pytestmark = pytest.mark.slow

SETTINGS = {
    "TASKS_BACKEND": "database",
    "WEBHOOK_ALLOW_PRIVATE": "1",
    "WEBHOOK_RETRY_DELAYS": "1,1,2",
    "TASKS_ABANDONED_AFTER_SECONDS": "3",
    "WEBHOOK_TIMEOUT_SECONDS": "2",
    "WEBHOOK_SWEEP_SECONDS": "1",
    "TASK_WORKERS": "0",
}


def ids_of(receiver: Receiver, report_id: int) -> list[tuple[str, str]]:
    """(type, webhook-id) of each request about the report, in the order received."""
    return [
        (received.json["type"], received.webhook_id)
        for received in list(receiver.received)
        if received.json["data"]["signalement"]["id"] == report_id
    ]


def delivery_log(database_url: str, event_id: str) -> list[tuple]:
    return sql(
        database_url,
        "SELECT a.number, a.started_at, a.duration_ms, a.status_code, a.error "
        "FROM signalements_webhookdeliveryattempt a "
        "JOIN signalements_webhookdelivery d ON d.id = a.delivery_id "
        "JOIN signalements_webhookevent e ON e.id = d.event_id "
        f"WHERE e.event_id = '{event_id}' ORDER BY a.number",
    )


@pytest.mark.parametrize("database", DATABASES)
def test_real_workers_retry_keep_order_and_survive_a_kill(database, tmp_path):
    receiver = Receiver(fail_first=2, fail_types={"signalement.created"})
    workers: list[Worker] = []
    server = None
    with live_database(database, tmp_path) as database_url:
        try:
            token = api_token(database_url, "admin")
            server = LiveServer(database_url, workers=1, **SETTINGS)
            admin = {"Authorization": f"Token {token}"}
            status, _, endpoint = server.request(
                "POST",
                "/api/webhooks/",
                {
                    "url": receiver.url,
                    "events": [
                        "signalement.created",
                        "signalement.status_changed",
                        "signalement.commented",
                    ],
                },
                admin,
            )
            assert status == 201, endpoint
            secret = endpoint["secret"]
            workers.append(Worker(database_url, **SETTINGS))

            # Retries and order: created fails twice; the status change and the comment
            # made meanwhile wait for it.
            status, _, report = server.request(
                "POST",
                "/api/signalements/",
                {
                    "description": "Lampadaire éteint",
                    "date": "2025-04-29T16:30:00+02:00",
                    "contact_email": "camille.secret@example.org",
                },
            )
            assert status == 201, report
            report_id = report["id"]
            status, _, _ = server.request(
                "POST",
                f"/api/signalements/{report_id}/transition/",
                {"status": "acknowledged"},
                admin,
            )
            assert status == 200
            status, _, _ = server.request(
                "POST",
                f"/api/signalements/{report_id}/comments/",
                {"body": "Équipe prévenue"},
                admin,
            )
            assert status == 201
            assert receiver.wait_for(lambda got: len(got) >= 5, timeout=30), workers[0].log_text()
            time.sleep(0.5)  # nothing more should come
            sent = ids_of(receiver, report_id)
            assert [kind for kind, _ in sent] == [
                "signalement.created",
                "signalement.created",
                "signalement.created",
                "signalement.status_changed",
                "signalement.commented",
            ]
            assert len({webhook_id for _, webhook_id in sent[:3]}) == 1
            retried = sent[0][1]
            received_at = [received.at for received in receiver.received[:3]]
            assert received_at[1] - received_at[0] >= 0.9  # WEBHOOK_RETRY_DELAYS: 1 s
            assert received_at[2] - received_at[1] >= 0.9

            # kill -9 in the middle of a delivery: the receiver holds the request.
            receiver.hang_first = True
            status, _, _ = server.request(
                "POST",
                f"/api/signalements/{report_id}/comments/",
                {"body": "Intervention lundi"},
                admin,
            )
            assert status == 201
            assert receiver.hanging.wait(20), workers[0].log_text()
            workers[0].kill()
            receiver.hang_first = False
            receiver.release()
            # Another event of the report while no worker runs: it waits for the first.
            status, _, _ = server.request(
                "POST", f"/api/signalements/{report_id}/comments/", {"body": "Réparé"}, admin
            )
            assert status == 201
            workers.append(Worker(database_url, **SETTINGS))
            assert receiver.wait_for(lambda got: len(got) >= 8, timeout=30), workers[1].log_text()
            time.sleep(0.5)

            sent = ids_of(receiver, report_id)
            interrupted = sent[5][1]
            assert [kind for kind, _ in sent[5:]] == ["signalement.commented"] * 3
            assert sent[6][1] == interrupted  # the same message again: at least once
            assert sent[7][1] != interrupted  # then the one that waited, in order
            assert [r.json["data"]["comment"]["body"] for r in receiver.received[5:]] == [
                "Intervention lundi",
                "Intervention lundi",
                "Réparé",
            ]

            # Every event at least once, each request signed, nothing private.
            outbox = {
                row[0]
                for row in sql(database_url, "SELECT event_id FROM signalements_webhookevent")
            }
            assert outbox == {webhook_id for _, webhook_id in sent}
            for received in receiver.received:
                received.verify(secret)
                assert b"camille.secret" not in received.body
            statuses = sql(
                database_url,
                "SELECT status, COUNT(*) FROM signalements_webhookdelivery GROUP BY status",
            )
            assert statuses == [("delivered", 5)]
            log = delivery_log(database_url, retried)
            assert [(number, code) for number, _, _, code, _ in log] == [
                (1, 500),
                (2, 500),
                (3, 204),
            ]
            killed = delivery_log(database_url, interrupted)
            assert killed[0][3] is None and killed[0][4].startswith("interrupted")
            assert killed[-1][3] == 204
            print(f"\n{database}: the attempts of {retried}")
            for row in log:
                print("  ", row)
            print(f"{database}: the attempts of {interrupted} (worker killed)")
            for row in killed:
                print("  ", row)
        finally:
            for worker in workers:
                worker.stop()
            if server is not None:
                server.stop()
            receiver.close()
