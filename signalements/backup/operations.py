"""A backup and a restore, step by step (see the package's docstring)."""

import subprocess
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import django
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import Signalement
from . import media, postgresql, sqlite
from .archive import FORMAT, FORMAT_VERSION, ArchiveWriter, BackupError, extract

ENGINES = {"sqlite": sqlite, "postgresql": postgresql}


def _engine(vendor: str):
    try:
        return ENGINES[vendor]
    except KeyError:
        raise BackupError(
            _("Backups support SQLite and PostgreSQL, not %(vendor)s.") % {"vendor": vendor}
        ) from None


def app_version() -> str:
    """This code's version: `git describe` in a checkout, else the project's version
    (pyproject.toml)."""
    base = Path(settings.BASE_DIR)
    try:
        described = subprocess.run(
            ["git", "describe", "--tags", "--always", "--dirty"],
            cwd=base,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if described.returncode == 0 and described.stdout.strip():
            return described.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        with open(base / "pyproject.toml", "rb") as file:
            return tomllib.load(file)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


@dataclass
class BackupResult:
    path: Path
    size: int
    manifest: dict


def create(path: Path | str) -> BackupResult:
    """Write a backup of the configured database and the photos to `path` (a new file,
    or one replaced whole)."""
    path = Path(path).absolute()
    if path.is_dir():
        raise BackupError(
            _("%(path)s is a directory: name the archive, e.g. %(example)s.")
            % {"path": path, "example": path / "signalements.tar"}
        )
    if not path.parent.is_dir():
        raise BackupError(_("The directory %(path)s does not exist.") % {"path": path.parent})
    engine = _engine(connections["default"].vendor)
    created_at = timezone.now()
    local = media.on_local_files()
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".signalements-backup-") as work:
            database = engine.snapshot(Path(work), media.photo_columns())
            with ArchiveWriter(path) as archive:
                archive.add_file(database["member"], database["file"])
                database["file"].unlink()  # its room, for the photos
                included = {}
                if local:
                    for name, file in media.files():
                        entry = archive.add_file(media.PREFIX + name, file)
                        if entry is not None:
                            included[name] = entry["size"]
                manifest = {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "created_at": created_at.isoformat(),
                    "app_version": app_version(),
                    "django_version": django.get_version(),
                    "database": {**database["description"], "member": database["member"]},
                    "tables": database["tables"],
                    "media": _media_entry(local, included, database["referenced"]),
                }
                archive.add_manifest(manifest)
                size = archive.commit()
    except OSError as error:
        raise BackupError(
            _("Cannot write the backup %(path)s: %(error)s")
            % {"path": path, "error": error.strerror or error}
        ) from None
    return BackupResult(path=path, size=size, manifest={**manifest, "files": archive.files})


def _media_entry(local: bool, included: dict[str, int], referenced: set[str]) -> dict:
    if not local:
        return {
            "storage": media.storage_name(),
            "included": False,
            "count": 0,
            "referenced": len(referenced),
            "note": "The photos are in this storage, not in the archive: the storage's "
            "own versioning or replication is their backup.",
        }
    return {
        "storage": media.storage_name(),
        "included": True,
        "count": len(included),
        "bytes": sum(included.values()),
        # Files of photos in the snapshot, deleted before they could be copied.
        "missing": sorted(referenced - set(included)),
    }


# --- Restore ---------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    manifest: dict
    counts: dict[str, int | None]
    photos: int
    mismatches: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    pending_migrations: int = 0


def occupants() -> dict[str, int]:
    """The reports and users of the configured database (none when it has no tables)."""
    connection = connections["default"]
    tables = set(connection.introspection.table_names())
    found = {}
    for model in (Signalement, get_user_model()):
        table = model._meta.db_table
        if table in tables:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
                found[table] = cursor.fetchone()[0]
    return found


def restore(path: Path | str, *, force: bool = False) -> RestoreResult:
    """Restore the backup at `path` into the configured database and MEDIA_ROOT, after
    checking the whole archive; refuses a database that holds reports or users, or a
    MEDIA_ROOT that holds files, unless `force`."""
    path = Path(path)
    connection = connections["default"]
    engine = _engine(connection.vendor)
    with tempfile.TemporaryDirectory(prefix="signalements-restore-") as work:
        work = Path(work)
        manifest = extract(path, work)
        kind = manifest.get("database", {}).get("vendor")
        if kind != connection.vendor:
            raise BackupError(
                _(
                    "This is a backup of a %(kind)s database; the configured database is "
                    "%(vendor)s. A backup is restored into the same kind of database only."
                )
                % {"kind": kind, "vendor": connection.vendor}
            )
        photos = sorted(
            name.removeprefix(media.PREFIX)
            for name in manifest["files"]
            if name.startswith(media.PREFIX)
        )
        _check_target(photos, force=force)
        replace = bool(connection.introspection.table_names())
        connections.close_all()
        member = work / manifest["database"]["member"]
        if engine is sqlite:
            sqlite.restore(member)
        else:
            postgresql.restore(member, replace=replace)
        media.restore(work / media.PREFIX.rstrip("/"), photos)
    counts = _count(list(manifest["tables"]))
    result = RestoreResult(manifest=manifest, counts=counts, photos=len(photos))
    result.mismatches = {
        table: (expected, counts[table])
        for table, expected in manifest["tables"].items()
        if counts[table] != expected
    }
    result.pending_migrations = _pending_migrations()
    return result


def _check_target(photos: list[str], *, force: bool) -> None:
    try:
        found = occupants()
    except DatabaseError as error:
        raise BackupError(
            _("Cannot read the configured database: %(error)s") % {"error": error}
        ) from None
    if any(found.values()) and not force:
        held = ", ".join(f"{table}: {count}" for table, count in found.items())
        raise BackupError(
            _(
                "The configured database is not empty (%(held)s): a backup is restored "
                "into an empty database. Use --force to replace its content."
            )
            % {"held": held}
        )
    if photos and not media.on_local_files():
        raise BackupError(
            _(
                "The backup holds photos, but the configured storage (%(storage)s) is not "
                "a directory: extract them from the archive's media/ into the storage."
            )
            % {"storage": media.storage_name()}
        )
    if photos and media.has_files() and not force:
        raise BackupError(
            _(
                "%(path)s already holds files: photos are restored into an empty directory. "
                "Use --force to add them to it."
            )
            % {"path": media.root()}
        )


def _count(tables: list[str]) -> dict[str, int | None]:
    """Every table's rows in the restored database (None: no such table)."""
    connection = connections["default"]
    present = set(connection.introspection.table_names())
    counts = {}
    with connection.cursor() as cursor:
        for table in tables:
            if table not in present:
                counts[table] = None
                continue
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


def _pending_migrations() -> int:
    """Migrations of this code that the restored database has not had (an older
    backup): `manage.py migrate` applies them."""
    executor = MigrationExecutor(connections["default"])
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
