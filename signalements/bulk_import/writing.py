"""Writing an import's reports: a batch per transaction, staged then inserted by the
database itself, in a thread of its own.

- **Staging**: a batch's reports go into a temporary table (COPY on PostgreSQL; on
  SQLite, INSERTs of as many rows as a statement takes), then two `INSERT … SELECT`
  write the reports and their creation's history rows (simple-history's "+", dated
  `created_at`, the routing's reason as note) from it. The history is not sent a second
  time, and SQLite runs each statement's row triggers and index updates in one go:
  inserting row by row (executemany) was four times slower there, mostly for the
  statement journal each row's triggers need. The areas' links follow.
- **Ids** are taken first (PostgreSQL's sequence; on SQLite the next ones, under the
  write lock of the batch's transaction), so that the history and the areas name their
  reports without reading them back.
- **Idempotency**: rows whose `external_id` is in the database, or earlier in the
  batch, are left out and counted.
- **In a thread** (`BackgroundWriter`): while the database works on a batch (the
  drivers let go of Python's lock meanwhile) the caller reads and checks the next one.
  The thread shares the caller's connection as Django's live server thread does, so
  that one transaction sees the other's data (a test's, too); `lock` keeps them from
  using it at the same time.

The database's triggers fire as for any write (the data version, the aggregates). No
event is emitted: no email, no webhook, no notification."""

import os
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy
import orjson
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

from ..models import Signalement, Status
from .reading import COLUMNS
from .routing import Routed

# The reports' columns a row gives, in the order of the file's columns (a column of
# the file that the writer did not write would fail here, not go missing); the id is
# added last by the writer. The others take the same value for a whole batch.
ROW_COLUMNS = (
    "uuid",
    *(Signalement._meta.get_field(name).attname for name in COLUMNS),
    "due_at",
)
REASON = "history_change_reason"
# A row as staged: its values, the routing's reason (the history's note), its id.
STAGE_COLUMNS = (*ROW_COLUMNS, REASON, "id")
_EXTERNAL_ID = ROW_COLUMNS.index("external_id")
STAGE_TABLE = "signalements_import_stage"
# Rows per INSERT statement on SQLite.
SQLITE_ROWS = 256


def random_uuids(count: int) -> list[str]:
    """`count` random (version 4) UUIDs as 32 hex digits, as `uuid.uuid4().hex`, from
    one read of the system's randomness (uuid4() reads it once per call)."""
    raw = numpy.frombuffer(os.urandom(16 * count), dtype=numpy.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    data = raw.tobytes()
    return [data[i : i + 16].hex() for i in range(0, 16 * count, 16)]


def _sqlite_datetime(value: datetime | None) -> str | None:
    """As Django writes a datetime on SQLite: in UTC, without offset."""
    if value is None:
        return None
    return str(value.astimezone(UTC))[:-6]  # "+00:00" left out


@dataclass
class Staged:
    """A batch ready to write: its reports' values (`ROW_COLUMNS` and the reason), each
    report's area ids, and the batch's time (its reports' `updated_at`)."""

    rows: list[tuple]
    areas: list[tuple[int, ...]]
    now: datetime


class Writer:
    """Stages and writes batches (see the module's doc): `stage()` in the caller's
    thread, `write()` in the writer's, in a transaction."""

    def __init__(self):
        self.sqlite = connection.vendor == "sqlite"
        self.when = _sqlite_datetime if self.sqlite else (lambda value: value)
        quote = connection.ops.quote_name
        history = Signalement.history.model
        self.report_table = Signalement._meta.db_table
        self.links_table = quote(Signalement.areas.through._meta.db_table)
        # The columns a row does not give take one value for the whole batch: its time
        # for `updated_at`, else the field's default (none for the reporter, the
        # assignee, the API key, the reporter's token…; 1 for the version…).
        by_batch = [f for f in Signalement._meta.concrete_fields if f.column not in STAGE_COLUMNS]
        self.batch_columns = [f.column for f in by_batch]
        self.defaults = [f.get_db_prep_save(f.get_default(), connection) for f in by_batch]
        self.updated_at = self.batch_columns.index("updated_at")
        # Each column's value in the SELECTs from the stage: the stage's column, or a
        # parameter (the batch's value).
        source = {name: quote(name) for name in STAGE_COLUMNS}
        source.update(dict.fromkeys(self.batch_columns, "%s"))
        report_columns = [*ROW_COLUMNS, "id", *self.batch_columns]
        self.create_sql = (
            f"CREATE TEMPORARY TABLE {STAGE_TABLE} AS SELECT "
            + ", ".join(quote(name) for name in (*ROW_COLUMNS, "id"))
            + f", CAST(NULL AS TEXT) AS {REASON} FROM {quote(self.report_table)} WHERE 1 = 0"
        )
        self.stage_columns = ", ".join(quote(name) for name in STAGE_COLUMNS)
        self.report_sql = (
            f"INSERT INTO {quote(self.report_table)} ("
            + ", ".join(quote(name) for name in report_columns)
            + ") SELECT "
            + ", ".join(source[name] for name in report_columns)
            + f" FROM {STAGE_TABLE}"
        )
        # A creation's history row: the report's tracked columns, the routing's reason,
        # dated when the report was created.
        report_columns = set(report_columns)
        tracked = [f.column for f in history._meta.concrete_fields if f.column in report_columns]
        self.history_sql = (
            f"INSERT INTO {quote(history._meta.db_table)} ("
            + ", ".join(quote(name) for name in (*tracked, REASON, "history_date", "history_type"))
            + ") SELECT "
            + ", ".join(source[name] for name in (*tracked, REASON, "created_at"))
            + f", '+' FROM {STAGE_TABLE}"
        )
        self.history_batch_columns = [
            self.batch_columns.index(name) for name in tracked if name in self.batch_columns
        ]

    # In the caller's thread ---------------------------------------------------------

    def stage(self, rows: list[dict], routed: list[Routed], now: datetime) -> Staged:
        """The batch's values, as the database takes them (SQLite: text for dates and
        decimals, as Django writes them)."""
        when, sqlite = self.when, self.sqlite
        staged = []
        uuids = random_uuids(len(rows))
        for attrs, route, uuid in zip(rows, routed, uuids, strict=True):
            category = attrs.get("category")
            latitude, longitude = attrs.get("latitude"), attrs.get("longitude")
            if sqlite and latitude is not None:
                latitude, longitude = str(latitude), str(longitude)
            extra = attrs["extra"]
            resolved_at = attrs.get("resolved_at")
            due_at = route.due_at
            staged.append(
                (
                    uuid,
                    attrs.get("title", ""),
                    attrs["description"],
                    when(attrs["date"]),
                    category.pk if category is not None else None,
                    latitude,
                    longitude,
                    attrs.get("address", ""),
                    attrs.get("media_url", ""),
                    orjson.dumps(extra).decode() if extra else "{}",
                    attrs.get("contact_name", ""),
                    attrs.get("contact_email", ""),
                    attrs.get("contact_phone", ""),
                    attrs.get("external_id") or None,
                    attrs.get("status", Status.NEW),
                    route.priority,
                    attrs.get("is_public", True),
                    when(attrs.get("created_at") or now),
                    when(resolved_at) if resolved_at is not None else None,
                    route.department_id,
                    when(due_at) if due_at is not None else None,
                    route.reason,
                )
            )
        return Staged(staged, [route.area_ids for route in routed], now)

    # In the writer's thread ---------------------------------------------------------

    def write(self, batch: Staged) -> tuple[int, int]:
        """Writes the batch's new reports in the current transaction; returns how many
        were written and how many skipped (already imported)."""
        rows, areas = self._new(batch)
        if not rows:
            return 0, len(batch.rows)
        ids = self._ids(len(rows))
        values = list(self.defaults)
        values[self.updated_at] = self.when(batch.now)
        with connection.cursor() as cursor:
            cursor.execute(self.create_sql)
            staged = [(*row, report_id) for row, report_id in zip(rows, ids, strict=True)]
            self._load(cursor, STAGE_TABLE, self.stage_columns, staged)
            cursor.execute(self.report_sql, values)
            cursor.execute(self.history_sql, [values[i] for i in self.history_batch_columns])
            cursor.execute(f"DROP TABLE {STAGE_TABLE}")
            links = [
                (report_id, area_id)
                for report_id, area_ids in zip(ids, areas, strict=True)
                for area_id in area_ids
            ]
            if links:
                self._load(cursor, self.links_table, '"signalement_id", "area_id"', links)
        return len(rows), len(batch.rows) - len(rows)

    def _load(self, cursor, table: str, columns: str, rows: list[tuple]) -> None:
        """Rows into a table: PostgreSQL's COPY; on SQLite, INSERTs of SQLITE_ROWS rows
        each. One statement per row (executemany) was four times slower there, and let
        Python's lock go back and forth with the caller's thread once a row; a few
        hundred rows a statement are as fast as thousands, and keep the prepared
        statements that sqlite3 caches (with their parameters) small: at 1,400 rows a
        statement they took 150 MB."""
        if not self.sqlite:
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        # sqlite3 itself, with its own placeholders: Django's cursor would rewrite each
        # statement's "%s" with a regular expression.
        execute = connection.connection.execute
        values = "(" + ", ".join(["?"] * len(rows[0])) + ")"
        for start in range(0, len(rows), SQLITE_ROWS):
            chunk = rows[start : start + SQLITE_ROWS]
            execute(
                f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([values] * len(chunk)),
                [value for row in chunk for value in row],
            )

    def _new(self, batch: Staged) -> tuple[list[tuple], list[tuple]]:
        """The rows not imported yet: neither in the database nor earlier in the batch,
        by external_id; and their areas."""
        ids = [row[_EXTERNAL_ID] for row in batch.rows if row[_EXTERNAL_ID] is not None]
        if not ids:
            return batch.rows, batch.areas
        known = in_database(ids)
        rows, areas = [], []
        for row, area_ids in zip(batch.rows, batch.areas, strict=True):
            external_id = row[_EXTERNAL_ID]
            if external_id is not None:
                if external_id in known:
                    continue
                known.add(external_id)
            rows.append(row)
            areas.append(area_ids)
        return rows, areas

    def _ids(self, count: int) -> list[int]:
        with connection.cursor() as cursor:
            if not self.sqlite:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [self.report_table, count],
                )
                return [row[0] for row in cursor.fetchall()]
            # AUTOINCREMENT never gives an id again, even a deleted row's: past both.
            table = connection.ops.quote_name(self.report_table)
            cursor.execute(f"SELECT MAX(id) FROM {table}")
            highest = cursor.fetchone()[0] or 0
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [self.report_table])
            row = cursor.fetchone()
            start = max(highest, row[0] if row else 0) + 1
            return list(range(start, start + count))


def in_database(external_ids: list[str]) -> set[str]:
    """Those of `external_ids` already imported: one query with one parameter (the ORM's
    `__in` takes a parameter per id, which psycopg parses on the client: a third of a
    batch's time on PostgreSQL)."""
    table = connection.ops.quote_name(Signalement._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT external_id FROM {table} WHERE external_id = ANY(%s)", [external_ids]
            )
        else:
            cursor.execute(
                f"SELECT external_id FROM {table} WHERE external_id IN "
                "(SELECT value FROM json_each(%s))",
                [orjson.dumps(external_ids).decode()],
            )
        return {row[0] for row in cursor.fetchall()}


class BackgroundWriter:
    """`Writer.write()` in a thread of its own, a transaction per batch, while the
    caller stages the next batches (at most `depth` wait: memory stays flat). The
    thread shares the caller's connection (as Django's LiveServerThread does);
    `lock` is held while it writes, and by the caller whenever it reads the database
    meanwhile. A failed write stops the import at the caller's next `put()`; the
    batches before stay written."""

    def __init__(self, writer: Writer, *, depth: int = 1):
        self.writer = writer
        self.lock = threading.Lock()
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.connection = connections[DEFAULT_DB_ALIAS]
        self.thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
        self.error: BaseException | None = None
        self.imported = self.skipped = 0

    def __enter__(self) -> "BackgroundWriter":
        self.connection.inc_thread_sharing()
        self.thread.start()
        return self

    def put(self, batch: Staged) -> None:
        self._raise()
        self.queue.put(batch)

    def __exit__(self, kind, error, traceback) -> None:
        self.queue.put(None)
        self.thread.join()
        self.connection.dec_thread_sharing()
        if error is None:
            self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        connections[DEFAULT_DB_ALIAS] = self.connection
        while (batch := self.queue.get()) is not None:
            if self.error is not None:
                continue  # the caller stops at its next put()
            try:
                with self.lock, transaction.atomic():
                    imported, skipped = self.writer.write(batch)
            except BaseException as error:  # handed over to the caller's thread
                self.error = error
            else:
                self.imported += imported
                self.skipped += skipped
