"""Requests per second through nginx with 1, 2 and 3 app servers (one granian process
each), then the same with each app server pinned to a core of its own where there are
enough (`taskset`; app server i on core i-1, modulo the cores).

Three loads: the list's first page, anonymous (served by each app server's response
cache); reports' details with an agent's token (Django and the replica each time); and
creates by that agent (Django and the primary).
On a machine of 2 cores shared with nginx, PostgreSQL and wrk itself it does not scale:
the figures are recorded (printed; the README's "Scaling out" quotes them), and the test
checks that every request succeeded and went to the app servers in the rotation.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .cluster import request

SECONDS = os.environ.get("CLUSTER_BENCH_SECONDS", "4")
HERE = Path(__file__).parent


def wrk(cluster, path: str, *script: str) -> float:
    command = [shutil.which("wrk"), "-t2", "-c16", f"-d{SECONDS}s"]
    if script:
        command += ["-s", str(HERE / script[0]), cluster.url + path, "--", *script[1:]]
    else:
        command.append(cluster.url + path)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "Non-2xx" not in output and "Socket errors" not in output, output + "\n".join(
        cluster.failures()[-10:]
    )
    return float(re.search(r"Requests/sec:\s+([0-9.]+)", output).group(1))


def pin(cluster, parts: list[str], cores: int | None) -> None:
    """Each app server's processes on a core of its own (None: on every core again)."""
    every = f"0-{os.cpu_count() - 1}"
    for index, part in enumerate(parts):
        core = every if cores is None else str(index % cores)
        for pid in cluster.pids(part):
            subprocess.run(
                ["taskset", "-a", "-p", "-c", core, str(pid)], check=True, capture_output=True
            )


def test_throughput_with_one_two_and_three_app_servers(cluster):
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed (make test-cluster installs it)")
    token = cluster.token("agent")
    last_id = cluster.last_of_first_ids()
    cores = os.cpu_count()
    results = []
    try:
        for pinned in (False, True):
            for count in (1, 2, 3):
                parts = [f"app{number}" for number in range(1, count + 1)]
                cluster.balance(*parts)
                pin(cluster, parts, cores if pinned else None)
                before = len(cluster.upstreams())
                for _ in range(3 * count):  # each server's cache warm
                    assert request(cluster.port, "GET", "/api/signalements/").status == 200
                listed = wrk(cluster, "/api/signalements/")
                detailed = wrk(cluster, "/", "detail.lua", token, str(last_id))
                created = wrk(cluster, "/", "create.lua", token)
                answered_by = set(cluster.upstreams()[before:])
                assert answered_by == {
                    f"127.0.0.1:{cluster.app_port(number)}" for number in range(1, count + 1)
                }
                results.append((count, pinned, listed, detailed, created))
    finally:
        pin(cluster, ["app1", "app2", "app3"], None)
        cluster.balance()
    lines = [
        f"\nthroughput through nginx, wrk -t2 -c16 {SECONDS} s, {cores} cores, "
        "one granian process per app server:",
        "| app servers | pinned (taskset) | list, anonymous (req/s) | detail, token (req/s) "
        "| create, token (req/s) |",
        "|---|---|---|---|---|",
    ]
    for count, pinned, *rates in results:
        where = f"yes, {min(count, cores)} core(s)" if pinned else "no"
        lines.append(f"| {count} | {where} | " + " | ".join(f"{r:,.0f}" for r in rates) + " |")
    print("\n".join(lines))
    assert all(rate > 0 for _, _, *rates in results for rate in rates)
