"""The data version: a number that grows with every committed write to the tables that
the API's report representations are made of, whoever writes (the API, the admin, a
management command, `.update()`, raw SQL), because database triggers bump it inside the
writing transaction (migration 0009, which lists the tables: the reports, their photos,
their categories, and the users, whose usernames name assignees).

A response computed after reading version V holds every write committed before V was
read; so a response stored under V can be served to any request that reads V again, and
is never older than what that request may expect. A new write makes the next reads see
V + something: the stored responses are simply never asked for again.

The version is the sum of `SHARDS` counter rows (`DataVersion`). On PostgreSQL each
writing connection bumps the row `pg_backend_pid() % SHARDS`, so that concurrent writers
do not queue on one hot row (a transaction keeps to its one row: no lock-order
deadlock); the sum still grows with every commit, and snapshots are ordered, so two
different states never read the same sum. SQLite has one writer at a time: one row.
Not a sequence: `nextval` is not transactional (a rolled-back write would bump it, and
a bump would be visible before the write).
"""

from django.db import connections

SHARDS = 16  # as created by migration 0009
READ = "SELECT SUM(value) FROM signalements_dataversion"


def current(using: str = "default") -> int:
    """The data version now, as this connection sees it (read it before the data)."""
    with connections[using].cursor() as cursor:
        cursor.execute(READ)
        return int(cursor.fetchone()[0] or 0)
