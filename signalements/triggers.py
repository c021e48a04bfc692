"""The database triggers that count writes, whoever makes them (the API, the admin,
`.update()`, a management command, raw SQL):

- the data version (`data_version.py`): bumped by every write to the tables that report
  representations are made of, in the writing transaction;
- a report's version (`Signalement.version`): one more at each update of the report,
  and at each photo added to it, moved or removed (its ETag, `If-Match`).

Migrations 0009 and 0011 created them; `install()` runs again after every `migrate`
(`apps.py`), because SQLite rebuilds a table to alter it, and the rebuilt table has lost
its triggers. It is idempotent: `CREATE ... IF NOT EXISTS` (SQLite), `CREATE OR REPLACE`
(PostgreSQL).
"""

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
    return found


def install(connection) -> None:
    """Make the triggers, on the tables that exist (a migration before the one that
    creates a table installs the others' triggers)."""
    tables = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for statement in _statements(connection.vendor):
            if _on_table(statement) in tables or _on_table(statement) is None:
                cursor.execute(statement)


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


def _statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return _postgresql()
    if vendor == "sqlite":
        return _sqlite()
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
