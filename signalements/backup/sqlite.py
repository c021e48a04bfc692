"""SQLite: a consistent copy of the live database file through SQLite's online backup
API, and its restore through the same API.

The server runs the database in WAL mode (settings: `journal_mode=WAL`): a reader never
blocks a writer. The copy is made in one step (`pages=-1`), inside one read transaction:
it is the database as it was when the step began, whatever the server commits meanwhile,
and the server's writers do not wait for it. The copy is switched to a rollback journal
(one self-contained file), checked (`PRAGMA quick_check`), and counted.

The restore copies the archived file into the configured database (`NAME`) through the
backup API too: the destination is replaced in one transaction, its WAL and shared
memory files taken care of by SQLite (copying a file over a database in WAL mode would
mix the old WAL with the new file).
"""

import sqlite3
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

from .archive import BackupError

MEMBER = "database/db.sqlite3"


def database_path() -> Path:
    """The configured SQLite database file."""
    name = str(settings.DATABASES["default"]["NAME"])
    if name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
        raise BackupError(_("An in-memory SQLite database cannot be backed up or restored."))
    return Path(name)


def _connect(path: Path) -> sqlite3.Connection:
    timeout = settings.DATABASES["default"].get("OPTIONS", {}).get("timeout", 20)
    return sqlite3.connect(path, timeout=timeout, isolation_level=None)


def table_names(connection: sqlite3.Connection) -> list[str]:
    return [
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]


def count_rows(connection: sqlite3.Connection, tables: list[str]) -> dict[str, int]:
    return {
        table: connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        for table in tables
    }


def snapshot(directory: Path, photo_columns: tuple[str, str, str]) -> dict:
    """Copy the live database into `directory`: the member's name, its file, the counts
    of its tables, the photo files it references, and a description of the source."""
    source_path = database_path()
    if not source_path.exists():
        raise BackupError(_("No SQLite database at %(path)s.") % {"path": source_path})
    copy_path = directory / "db.sqlite3"
    try:
        source = _connect(source_path)
        copy = sqlite3.connect(copy_path, isolation_level=None)
        try:
            source.backup(copy, pages=-1)
        finally:
            source.close()
        try:
            copy.execute("PRAGMA journal_mode=DELETE")
            problems = [row[0] for row in copy.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise BackupError(
                    _("The copy of the database fails SQLite's check: %(problems)s")
                    % {"problems": "; ".join(problems[:5])}
                )
            counts = count_rows(copy, table_names(copy))
            table, *columns = photo_columns
            referenced = _referenced(copy, table, columns) if table in counts else set()
        finally:
            copy.close()
    except sqlite3.Error as error:
        raise BackupError(
            _("SQLite could not copy %(path)s: %(error)s") % {"path": source_path, "error": error}
        ) from None
    return {
        "member": MEMBER,
        "file": copy_path,
        "tables": counts,
        "referenced": referenced,
        "description": {"vendor": "sqlite", "sqlite_version": sqlite3.sqlite_version},
    }


def _referenced(connection: sqlite3.Connection, table: str, columns: list[str]) -> set[str]:
    names = set()
    for column in columns:
        names.update(
            name for (name,) in connection.execute(f'SELECT "{column}" FROM "{table}"') if name
        )
    return names


def restore(extracted: Path) -> None:
    """Replace the configured database's content with the archived copy at
    `extracted`, in one transaction."""
    target_path = database_path()
    if not target_path.parent.is_dir():
        raise BackupError(
            _("The directory of the database, %(path)s, does not exist.")
            % {"path": target_path.parent}
        )
    try:
        source = sqlite3.connect(extracted, isolation_level=None)
        target = _connect(target_path)
        try:
            source.backup(target, pages=-1)
            # As the server runs it (its settings set it again on every connection).
            target.execute("PRAGMA journal_mode=WAL")
        finally:
            target.close()
            source.close()
    except sqlite3.Error as error:
        raise BackupError(
            _("SQLite could not restore into %(path)s: %(error)s")
            % {"path": target_path, "error": error}
        ) from None
