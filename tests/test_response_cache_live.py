"""Never a stale byte, against the production server: two server processes
(`scripts/serve.sh`, as `make serve` runs it, 2 workers each, response cache on) on one
database. Writer threads create reports through one server and at once read them back,
anonymously, through the other; they edit them (with the reporter token) and read the
edit back the same way; meanwhile reader threads keep both servers' caches warm with
the same anonymous reads. Every read must show every write acknowledged before it was
sent. On a SQLite file always, and on PostgreSQL under `make test-postgres`."""

import itertools
import threading

import pytest

from .live import DATABASES, LiveServer, live_database

WRITERS = 4
ROUNDS = 12
READERS = 4
LIST = "/api/signalements/?page_size=100"


@pytest.mark.parametrize("kind", DATABASES)
def test_a_read_shows_every_write_acknowledged_before_it(kind, tmp_path):
    with live_database(kind, tmp_path) as database_url:
        servers = [LiveServer(database_url), LiveServer(database_url)]
        try:
            problems, hits = run_the_load(*servers)
        finally:
            for server in servers:
                server.stop()
    assert problems == []
    assert hits["reads"] > 100
    assert hits["hits"] > 0  # the store was in play, not bypassed


def run_the_load(first: LiveServer, second: LiveServer):
    problems: list[str] = []
    counts = {"reads": 0, "hits": 0}
    lock = threading.Lock()
    stop = threading.Event()
    known_ids: list[int] = []

    def note(problem: str) -> None:
        with lock:
            problems.append(problem)

    def count(headers: dict) -> None:
        with lock:
            counts["reads"] += 1
            counts["hits"] += headers.get("x-cache") == "hit"

    def reader(number: int) -> None:
        connections = [(first, first.connection()), (second, second.connection())]
        for server, connection in itertools.cycle(connections):
            if stop.is_set():
                return
            status, headers, _ = server.request("GET", LIST, connection=connection)
            count(headers)
            if status != 200:
                note(f"reader {number}: list answered {status}")
            with lock:
                some_id = known_ids[-1] if known_ids else None
            if some_id is not None:
                status, headers, _ = server.request(
                    "GET", f"/api/signalements/{some_id}/", connection=connection
                )
                count(headers)

    def writer(number: int) -> None:
        servers = [(first, first.connection()), (second, second.connection())]
        for round_ in range(ROUNDS):
            (write_to, write_on), (read_from, read_on) = (
                servers[round_ % 2],
                servers[1 - round_ % 2],
            )
            description = f"Écrit par {number}, tour {round_}"
            status, _, created = write_to.request(
                "POST",
                "/api/signalements/",
                {"description": description, "date": "2025-04-29T16:30:00+02:00"},
                connection=write_on,
            )
            if status != 201:
                note(f"writer {number}: create answered {status}: {created}")
                continue
            pk = created["id"]
            with lock:
                known_ids.append(pk)

            status, headers, detail = read_from.request(
                "GET", f"/api/signalements/{pk}/", connection=read_on
            )
            count(headers)
            if status != 200 or detail.get("description") != description:
                note(f"writer {number}: report {pk} read back as {status} {detail}")

            status, headers, page = read_from.request("GET", LIST, connection=read_on)
            count(headers)
            if status != 200 or pk not in [item["id"] for item in page["results"]]:
                note(f"writer {number}: report {pk} missing from the list ({status}): {page}")

            title = f"Modifié {number}-{round_}"
            status, _, _ = write_to.request(
                "PATCH",
                f"/api/signalements/{pk}/",
                {"title": title},
                headers={"X-Reporter-Token": created["reporter_token"]},
                connection=write_on,
            )
            if status != 200:
                note(f"writer {number}: edit of {pk} answered {status}")
                continue
            status, headers, detail = read_from.request(
                "GET", f"/api/signalements/{pk}/", connection=read_on
            )
            count(headers)
            if status != 200 or detail.get("title") != title:
                note(f"writer {number}: the edit of {pk} read back as {status} {detail}")

    readers = [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=300)
    stop.set()
    for thread in readers:
        thread.join(timeout=60)
    return problems, counts
