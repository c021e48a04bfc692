"""The database triggers that count writes, whoever makes them (the API, the admin,
`.update()`, a management command, raw SQL):

- the data version (`data_version.py`): bumped by every write to the tables that report
  representations are made of, in the writing transaction;
- a report's version (`Signalement.version`): one more at each update of the report,
  and at each photo added to it, moved or removed (its ETag, `If-Match`).

- the rollup of reports (`rollup.py`): the counts by status, category, department and
  month, and the histograms of durations, that the statistics and the list's counts
  read; on PostgreSQL one statement-level trigger per kind of write, which inserts the
  statement's changes (`ReportRollupDelta`, no row that another writer waits for); on
  SQLite row triggers that update the rollup directly.

Migrations 0009, 0011 and 0017 created them; `install()` runs again after every `migrate`
(`apps.py`), because SQLite rebuilds a table to alter it, and the rebuilt table has lost
its triggers. It is idempotent: `CREATE ... IF NOT EXISTS` (SQLite), `CREATE OR REPLACE`
(PostgreSQL). The rollup counts months of `TIME_ZONE`: when it was built in another zone
(or never), `install()` counts every report again (`rollup.rebuild`), the reports' table
held against writers meanwhile.
"""

from django.conf import settings
from django.db import transaction

from . import rollup
from .data_version import SHARDS

REPORT = "signalements_signalement"
PHOTO = "signalements_attachment"
# The tables whose writes bump the data version: the report (and the original it
# duplicates), its photos, its category's code, its assignee's username, its department's
# code and its areas (and their codes).
DATA_TABLES = (
    REPORT,
    PHOTO,
    "signalements_category",
    "auth_user",
    "signalements_department",
    "signalements_area",
    "signalements_signalement_areas",
)
SQLITE_EVENTS = ("INSERT", "UPDATE", "DELETE")
DATA_VERSION_FUNCTION = "signalements_bump_data_version"
REPORT_VERSION_FUNCTION = "signalements_bump_report_version"
ROLLUP_FUNCTION = "signalements_rollup"
ROLLUP_EVENTS = ("INSERT", "UPDATE", "DELETE")
# The reports' columns the rollup's key and measures are made of.
ROLLUP_SOURCE_COLUMNS = rollup.REPORT_COLUMNS


def names(vendor: str) -> set[str]:
    """Every trigger `install` makes, by name."""
    if vendor == "postgresql":
        found = {f"{table}_data_version" for table in DATA_TABLES}
        return found | {f"{REPORT}_version", f"{PHOTO}_report_version"}
    found = {
        f"{table}_data_version_{event.lower()}" for table in DATA_TABLES for event in SQLITE_EVENTS
    }
    found.add(f"{REPORT}_version")
    found |= {f"{PHOTO}_report_version_{event.lower()}" for event in SQLITE_EVENTS}
    return found | rollup_names(vendor)


def rollup_names(vendor: str) -> set[str]:
    """The rollup's triggers, by name."""
    found = {f"{REPORT}_rollup_{event.lower()}" for event in ROLLUP_EVENTS}
    if vendor == "postgresql":
        found.add(f"{REPORT}_rollup_truncate")
    return found


def install(connection) -> None:
    """Make the triggers, on the tables that exist (a migration before the one that
    creates a table installs the others' triggers), and the rollup, when it is not yet
    that of `TIME_ZONE` (in the same transaction, the reports held against writers)."""
    tables = set(connection.introspection.table_names())
    with_rollup = {rollup.ROLLUP, rollup.DELTA, rollup.MONTHS, rollup.STATE} <= tables
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        stale = with_rollup and rollup.state(connection.alias) != settings.TIME_ZONE
        if stale and connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {REPORT} IN SHARE ROW EXCLUSIVE MODE")
        for statement in _statements(connection.vendor, with_rollup=with_rollup):
            if _on_table(statement) in tables or _on_table(statement) is None:
                cursor.execute(statement)
        if stale:
            rollup.rebuild(connection)


def drop_rollup(connection) -> None:
    """Take the rollup's triggers away (migration 0017 undone: its tables go)."""
    with connection.cursor() as cursor:
        for name in rollup_names(connection.vendor):
            if connection.vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {REPORT}")
            else:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        if connection.vendor == "postgresql":
            for event in (*ROLLUP_EVENTS, "TRUNCATE"):
                cursor.execute(f"DROP FUNCTION IF EXISTS {ROLLUP_FUNCTION}_{event.lower()}()")


def _on_table(statement: str) -> str | None:
    """The table a CREATE TRIGGER statement is on; None for another statement."""
    if " TRIGGER " not in statement:
        return None
    return statement.split(" ON ", 1)[1].split()[0]


def drop_for_rebuild(connection) -> None:
    """Before a migration that rebuilds the reports' table on SQLite (adding a column
    NOT NULL, say): the triggers on the photos' table name the reports' table, and
    SQLite refuses to rename the rebuilt table while they exist. `install()` makes them
    again once migrated (the migration's next step, and after every `migrate`)."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for name in names("sqlite"):
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


def existing(connection) -> set[str]:
    """The names of the triggers the database has (ours among them)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {row[0] for row in cursor.fetchall()}


def _statements(vendor: str, *, with_rollup: bool = False) -> list[str]:
    if vendor == "postgresql":
        return _postgresql() + (_postgresql_rollup() if with_rollup else [])
    if vendor == "sqlite":
        return _sqlite() + (_sqlite_rollup() if with_rollup else [])
    raise NotImplementedError(f"No write-counting triggers for {vendor}.")


def _postgresql() -> list[str]:
    statements = [
        # One statement, one bump; each connection keeps to its own row, so that
        # concurrent writers do not queue on one row (and never lock two: no deadlock).
        f"""CREATE OR REPLACE FUNCTION {DATA_VERSION_FUNCTION}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE signalements_dataversion SET value = value + 1
            WHERE shard = pg_backend_pid() % {SHARDS};
            RETURN NULL;
        END $$""",
        # Every update of a report: the version it had, plus one. The code never sets
        # it, and a stale value written by a save() cannot take it back.
        f"""CREATE OR REPLACE FUNCTION {REPORT_VERSION_FUNCTION}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            NEW.version := OLD.version + 1;
            RETURN NEW;
        END $$""",
        f"""CREATE OR REPLACE FUNCTION {REPORT_VERSION_FUNCTION}_of_photo() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                UPDATE {REPORT} SET version = version WHERE id = OLD.signalement_id;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                UPDATE {REPORT} SET version = version WHERE id = NEW.signalement_id;
            END IF;
            RETURN NULL;
        END $$""",
    ]
    statements += [
        f"CREATE OR REPLACE TRIGGER {table}_data_version "
        f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {DATA_VERSION_FUNCTION}()"
        for table in DATA_TABLES
    ]
    statements += [
        f"CREATE OR REPLACE TRIGGER {REPORT}_version BEFORE UPDATE ON {REPORT} "
        f"FOR EACH ROW EXECUTE FUNCTION {REPORT_VERSION_FUNCTION}()",
        f"CREATE OR REPLACE TRIGGER {PHOTO}_report_version "
        f"AFTER INSERT OR UPDATE OR DELETE ON {PHOTO} "
        f"FOR EACH ROW EXECUTE FUNCTION {REPORT_VERSION_FUNCTION}_of_photo()",
    ]
    return statements


def _sqlite() -> list[str]:
    # Row triggers; one writer at a time, so one data version row.
    statements = [
        f"CREATE TRIGGER IF NOT EXISTS {table}_data_version_{event.lower()} AFTER {event} "
        f"ON {table} BEGIN "
        "UPDATE signalements_dataversion SET value = value + 1 WHERE shard = 0; END"
        for table in DATA_TABLES
        for event in SQLITE_EVENTS
    ]
    # SQLite cannot change NEW: the report's row is updated again after the update
    # (recursive triggers are off: this does not fire itself).
    statements.append(
        f"CREATE TRIGGER IF NOT EXISTS {REPORT}_version AFTER UPDATE ON {REPORT} BEGIN "
        f"UPDATE {REPORT} SET version = OLD.version + 1 WHERE id = NEW.id; END"
    )
    for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
        bumps = " ".join(
            f"UPDATE {REPORT} SET version = version WHERE id = {row}.signalement_id;"
            for row in rows
        )
        statements.append(
            f"CREATE TRIGGER IF NOT EXISTS {PHOTO}_report_version_{event.lower()} "
            f"AFTER {event} ON {PHOTO} BEGIN {bumps} END"
        )
    return statements


def _postgresql_rollup() -> list[str]:
    """Statement-level triggers over the statement's transition tables: one INSERT of
    the statement's changes, grouped by key, whatever the number of rows (a COPY of a
    million reports inserts a few thousand change rows). An update that moves no report
    from a key to another inserts none. The zone's name is written into the functions:
    `install()` makes them again, and rebuilds the rollup, when `TIME_ZONE` changes."""
    zone = settings.TIME_ZONE
    columns = ", ".join(rollup.COLUMNS)
    key = ", ".join(rollup.ROLLUP_KEY)
    inserted = rollup.rows_sql("postgresql", zone, "new_rows", 1)
    deleted = rollup.rows_sql("postgresql", zone, "old_rows", -1)
    changes = {
        "insert": f"INSERT INTO {rollup.DELTA} ({columns}) {inserted};",
        "delete": f"INSERT INTO {rollup.DELTA} ({columns}) {deleted};",
        "update": (
            f"INSERT INTO {rollup.DELTA} ({columns}) "
            f"SELECT {key}, SUM(n), SUM(due), SUM(on_time) FROM ({deleted} UNION ALL "
            f"{inserted}) moved GROUP BY {key} "
            "HAVING SUM(n) <> 0 OR SUM(due) <> 0 OR SUM(on_time) <> 0;"
        ),
        # Every report gone: the rollup too (the data of a TRUNCATE is gone at once).
        "truncate": f"DELETE FROM {rollup.DELTA}; DELETE FROM {rollup.ROLLUP};",
    }
    statements = []
    for event, body in changes.items():
        statements.append(
            f"""CREATE OR REPLACE FUNCTION {ROLLUP_FUNCTION}_{event}() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                {body}
                RETURN NULL;
            END $$"""
        )
        transition = {
            "insert": "REFERENCING NEW TABLE AS new_rows ",
            "delete": "REFERENCING OLD TABLE AS old_rows ",
            "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows ",
            "truncate": "",
        }[event]
        statements.append(
            f"CREATE OR REPLACE TRIGGER {REPORT}_rollup_{event} AFTER {event.upper()} "
            f"ON {REPORT} {transition}FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {ROLLUP_FUNCTION}_{event}()"
        )
    return statements


def _sqlite_rollup() -> list[str]:
    """Row triggers that add the report's rows to the rollup (upserts), or take them
    away; an update only when it changes what the rollup counts by. The months come from
    the rollup's calendar table (SQLite has no time zones), rebuilt with the rollup."""
    columns = ", ".join(rollup.COLUMNS)
    key = ", ".join(rollup.ROLLUP_KEY)

    def upsert(row: str, sign: int) -> str:
        values = ", ".join(f"{row}.{column} AS {column}" for column in ROLLUP_SOURCE_COLUMNS)
        rows = rollup.rows_sql("sqlite", "", f"(SELECT {values})", sign)
        return (
            f"INSERT INTO {rollup.ROLLUP} ({columns}) SELECT * FROM ({rows}) WHERE true "
            f"ON CONFLICT ({key}) DO UPDATE SET n = n + excluded.n, "
            "due = due + excluded.due, on_time = on_time + excluded.on_time;"
        )

    changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in ROLLUP_SOURCE_COLUMNS)
    return [
        f"CREATE TRIGGER IF NOT EXISTS {REPORT}_rollup_insert AFTER INSERT ON {REPORT} "
        f"BEGIN {upsert('NEW', 1)} END",
        f"CREATE TRIGGER IF NOT EXISTS {REPORT}_rollup_delete AFTER DELETE ON {REPORT} "
        f"BEGIN {upsert('OLD', -1)} END",
        f"CREATE TRIGGER IF NOT EXISTS {REPORT}_rollup_update "
        f"AFTER UPDATE OF {', '.join(ROLLUP_SOURCE_COLUMNS)} ON {REPORT} WHEN {changed} "
        f"BEGIN {upsert('OLD', -1)} {upsert('NEW', 1)} END",
    ]
