"""A task worker lost in the middle of a task: another does the task, once.

A webhook delivery is the task: the receiver holds the first request without answering,
the worker that sent it is killed with `kill -9`, and the other worker delivers the same
message (same `webhook-id`) once the task is found abandoned (TASKS_ABANDONED_AFTER_SECONDS,
3 s here): the receiver answers it, and nothing more comes.
"""

import time
from pathlib import Path

from ..webhook_receiver import Receiver
from .cluster import request


def process_of_connection(local_port: int, remote_port: int) -> int:
    """The process that holds the TCP connection 127.0.0.1:local_port -> :remote_port."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == (
            remote_port
        ):
            inodes.add(f"socket:[{inode}]")
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            for descriptor in (process / "fd").iterdir():
                if descriptor.readlink().as_posix() in inodes:
                    return int(process.name)
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    raise LookupError(f"nobody holds 127.0.0.1:{local_port}")


def test_a_worker_killed_mid_task_the_other_does_it_once(cluster):
    receiver = Receiver()
    admin = {"Authorization": f"Token {cluster.token('admin')}"}
    agent = {"Authorization": f"Token {cluster.token('agent')}"}
    killed = None
    try:
        endpoint = request(
            cluster.port,
            "POST",
            "/api/webhooks/",
            {"url": receiver.url, "events": ["signalement.created"]},
            admin,
        )
        assert endpoint.status == 201, endpoint
        receiver.hang_first = True
        created = cluster.create("Tâche interrompue", agent)
        assert created.status == 201, created
        assert receiver.hanging.wait(30), "no worker delivered the webhook"
        held = receiver.received[0]
        sender = process_of_connection(held.peer_port, receiver.server.server_address[1])
        killed = next(part for part in ("worker1", "worker2") if sender in cluster.pids(part))
        cluster.kill(killed)
        receiver.hang_first = False
        receiver.release()

        webhook_id = held.webhook_id
        assert receiver.wait_for(
            lambda got: sum(r.webhook_id == webhook_id for r in got) >= 2, timeout=40
        ), "the other worker did not deliver it"
        time.sleep(3)  # past another recovery round: nothing more comes
        deliveries = [r for r in receiver.received if r.webhook_id == webhook_id]
        assert len(deliveries) == 2  # the one held (never answered), the one answered
        attempts = cluster.sql(
            "SELECT a.number, a.status_code, a.error FROM signalements_webhookdeliveryattempt a "
            "JOIN signalements_webhookdelivery d ON d.id = a.delivery_id "
            "JOIN signalements_webhookevent e ON e.id = d.event_id "
            "WHERE e.event_id = %s ORDER BY a.number",
            params=(webhook_id,),
        )
        assert [(number, code) for number, code, _ in attempts] == [(1, None), (2, 204)]
        assert attempts[0][2].startswith("interrupted")
        (status,) = cluster.sql(
            "SELECT d.status FROM signalements_webhookdelivery d "
            "JOIN signalements_webhookevent e ON e.id = d.event_id WHERE e.event_id = %s",
            params=(webhook_id,),
        )[0]
        assert status == "delivered"
        print(
            f"\nworkers: {killed} (pid {sender}) killed while delivering {webhook_id}; "
            f"delivered by the other {deliveries[1].at - deliveries[0].at:.1f} s after the "
            f"first attempt; attempts: {attempts}"
        )
    finally:
        receiver.close()
        if killed is not None:
            cluster.start(killed)
