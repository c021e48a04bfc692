"""PostgreSQL: `pg_dump --format=custom` of one snapshot, counted in the same snapshot,
and `pg_restore` in one transaction.

The counts and `pg_dump` see the same data: a REPEATABLE READ transaction exports its
snapshot (`pg_export_snapshot()`), counts every table in it, and stays open while
`pg_dump --snapshot=...` dumps that very snapshot. The server goes on writing meanwhile.

The tools are PostgreSQL's client programs, of the server's major version or newer (a
`pg_dump` older than the server refuses to dump it): Debian's
`/usr/lib/postgresql/<version>/bin` first (the `postgresql-client` packages), then the
`PATH`. They connect with the settings of `DATABASES["default"]`, passed in their
environment (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`, and the SSL
options): the password is never on a command line, where `ps` would show it.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
from django.db import connections
from django.utils.translation import gettext as _

from .archive import BackupError

MEMBER = "database/db.dump"
DEBIAN_BIN = Path("/usr/lib/postgresql")
# DATABASES settings and OPTIONS that libpq reads from its environment.
SETTINGS_ENV = {
    "HOST": "PGHOST",
    "PORT": "PGPORT",
    "USER": "PGUSER",
    "PASSWORD": "PGPASSWORD",
    "NAME": "PGDATABASE",
}
OPTIONS_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}
TOOL_TIMEOUT = 6 * 3600


def tool_environment() -> dict[str, str]:
    """The environment of `pg_dump` and `pg_restore`: ours, with the connection of
    `DATABASES["default"]`."""
    database = connections["default"].settings_dict
    env = dict(os.environ)
    for setting, variable in SETTINGS_ENV.items():
        if database.get(setting):
            env[variable] = str(database[setting])
    for option, variable in OPTIONS_ENV.items():
        value = database.get("OPTIONS", {}).get(option)
        if value not in (None, ""):
            env[variable] = str(value)
    return env


def server_major() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        return int(cursor.fetchone()[0]) // 10000


def _major_of(program: str) -> int | None:
    try:
        completed = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    found = re.search(r"(\d+)(?:\.\d+)?", completed.stdout)
    return int(found.group(1)) if found else None


def find_tool(name: str, major: int) -> str:
    """The `name` program (pg_dump, pg_restore) for a server of version `major`: the
    oldest Debian one at least as new, else the one on the PATH if it is."""
    candidates = []
    for directory in DEBIAN_BIN.glob("*/bin"):
        program = directory / name
        if directory.parent.name.isdigit() and os.access(program, os.X_OK):
            version = int(directory.parent.name)
            if version >= major:
                candidates.append((version, str(program)))
    if candidates:
        return min(candidates)[1]
    on_path = shutil.which(name)
    if on_path and (_major_of(on_path) or 0) >= major:
        return on_path
    raise BackupError(
        _(
            "No %(tool)s of PostgreSQL %(major)d or newer found (looked in "
            "/usr/lib/postgresql/*/bin and the PATH): install postgresql-client-%(major)d."
        )
        % {"tool": name, "major": major}
    )


def _run(command: list[str], what: str) -> None:
    try:
        completed = subprocess.run(
            command,
            env=tool_environment(),
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BackupError(
            _("%(what)s failed: %(error)s") % {"what": what, "error": error}
        ) from None
    if completed.returncode != 0:
        raise BackupError(
            _("%(what)s failed (exit code %(code)d): %(error)s")
            % {"what": what, "code": completed.returncode, "error": completed.stderr.strip()}
        )


def _database_name() -> list[str]:
    name = connections["default"].settings_dict.get("NAME")
    return [f"--dbname={name}"] if name else []


def count_rows(cursor, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        counts[table] = cursor.fetchone()[0]
    return counts


def table_names(cursor) -> list[str]:
    cursor.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
    )
    return [name for (name,) in cursor.fetchall()]


def dump_command(pg_dump: str, exported_snapshot: str, path: Path) -> list[str]:
    """`pg_dump` of the exported snapshot into `path`, in the custom format (compressed;
    `pg_restore` picks what it needs from it). Never prompts for a password: cron has
    nobody to answer."""
    return [
        pg_dump,
        "--format=custom",
        f"--snapshot={exported_snapshot}",
        f"--file={path}",
        "--no-password",
        *_database_name(),
    ]


def snapshot(directory: Path, photo_columns: tuple[str, str, str]) -> dict:
    """Dump the database into `directory`: the member's name, its file, the counts of its
    tables and the photo files it references (both read in the dump's snapshot), and a
    description of the source."""
    wrapper = connections["default"]
    dump_path = directory / "db.dump"
    try:
        session = wrapper.get_new_connection(wrapper.get_connection_params())
    except psycopg.Error as error:
        raise BackupError(_("Cannot connect to PostgreSQL: %(error)s") % {"error": error}) from None
    try:
        session.rollback()
        session.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        session.read_only = True
        major = session.info.server_version // 10000
        server_version = session.info.parameter_status("server_version")
        pg_dump = find_tool("pg_dump", major)
        with session.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            exported = cursor.fetchone()[0]
            counts = count_rows(cursor, table_names(cursor))
            table, *columns = photo_columns
            referenced = set()
            if table in counts:
                for column in columns:
                    cursor.execute(f'SELECT "{column}" FROM "{table}"')
                    referenced.update(name for (name,) in cursor.fetchall() if name)
            # The transaction stays open: pg_dump reads its snapshot.
            _run(dump_command(pg_dump, exported, dump_path), "pg_dump")
        session.rollback()
    except psycopg.Error as error:
        raise BackupError(_("PostgreSQL: %(error)s") % {"error": error}) from None
    finally:
        session.close()
    return {
        "member": MEMBER,
        "file": dump_path,
        "tables": counts,
        "referenced": referenced,
        "description": {
            "vendor": "postgresql",
            "server_version": server_version,
            "pg_dump": _version_line(pg_dump),
        },
    }


def _version_line(program: str) -> str:
    try:
        return subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
    except OSError:
        return ""


def restore(extracted: Path, *, replace: bool) -> None:
    """`pg_restore` of the dump at `extracted` into the configured database, in one
    transaction that any error rolls back; with `replace`, the objects of the dump that
    exist already are dropped first (`--clean --if-exists`)."""
    if not _database_name():
        raise BackupError(_("DATABASES has no NAME: pg_restore needs a database to restore into."))
    pg_restore = find_tool("pg_restore", server_major())
    command = [
        pg_restore,
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        "--no-password",
        *(["--clean", "--if-exists"] if replace else []),
        *_database_name(),
        str(extracted),
    ]
    try:
        _run(command, "pg_restore")
    except BackupError as error:
        if not replace:
            raise
        # --clean drops the dump's objects only: one that the database has besides them
        # (a newer migration's table) may stand in the way. Nothing was changed.
        raise BackupError(
            _(
                "%(error)s\nNothing was changed. Restore into a new empty database (createdb), "
                "not one that has tables."
            )
            % {"error": error}
        ) from None
