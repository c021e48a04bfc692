"""The backup archive: a tar file (gzipped or not) written atomically, its manifest, and
the checks of a restore.

Every member but the manifest is listed in the manifest's `files` with its size and
SHA-256, computed while it is written into the archive (the bytes hashed are the bytes
archived, even of a file that changes meanwhile). `manifest.sha256` holds the manifest's
own checksum, in `sha256sum`'s format: `tar -xOf BACKUP manifest.json | sha256sum`.
"""

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from pathlib import Path, PurePosixPath

from django.utils.translation import gettext as _

FORMAT = "signalements-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_CHECKSUM = "manifest.sha256"
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or a restore that cannot be done; the message says why, for the
    operator."""


def compression_of(path: Path) -> str:
    """The tar mode's compression for an archive named `path`: gzip for `.gz` and
    `.tgz`, none otherwise (the database dump and the photos are compressed already)."""
    return "gz" if path.name.endswith((".gz", ".tgz")) else ""


class _HashingReader:
    """A file read through, its bytes counted and hashed on the way."""

    def __init__(self, file):
        self.file = file
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


class ArchiveWriter:
    """A new archive at `path`, written to a temporary file beside it and renamed into
    place by `commit()`; without a commit (an error), the temporary file is removed and
    `path` is left as it was."""

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[str, dict] = {}
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".partial"
        )
        self.temporary = Path(temporary)
        self.raw = os.fdopen(descriptor, "wb")
        self.tar = tarfile.open(
            fileobj=self.raw, mode=f"w:{compression_of(path)}", format=tarfile.PAX_FORMAT
        )

    def __enter__(self) -> "ArchiveWriter":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self.temporary is None:  # committed
            return
        try:
            self.tar.close()
        except Exception:  # noqa: BLE001 (the archive is thrown away: the first error wins)
            pass
        self.raw.close()
        self.temporary.unlink(missing_ok=True)

    def _member(self, name: str, size: int, mtime: float) -> tarfile.TarInfo:
        member = tarfile.TarInfo(name)
        member.size = size
        member.mtime = int(mtime)
        member.mode = 0o600
        return member

    def add_file(self, name: str, path: Path) -> dict | None:
        """Add the file at `path` as `name`, listed in the manifest; None when it is
        gone (deleted since it was listed)."""
        try:
            file = open(path, "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            return None
        with file:
            status = os.fstat(file.fileno())
            reader = _HashingReader(file)
            # The size when opened: a file still growing is archived as it was then.
            self.tar.addfile(self._member(name, status.st_size, status.st_mtime), reader)
        entry = {"size": reader.size, "sha256": reader.digest.hexdigest()}
        self.files[name] = entry
        return entry

    def add_manifest(self, manifest: dict) -> None:
        """The manifest (its `files`: every member added so far), and its checksum."""
        data = json.dumps({**manifest, "files": self.files}, indent=2, sort_keys=True).encode()
        checksum = f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n".encode()
        for name, content in ((MANIFEST, data), (MANIFEST_CHECKSUM, checksum)):
            self.tar.addfile(self._member(name, len(content), time.time()), io.BytesIO(content))

    def commit(self) -> int:
        """Finish the archive, write it to disk, and rename it to `path`; its size."""
        self.tar.close()
        self.raw.flush()
        os.fsync(self.raw.fileno())
        self.raw.close()
        os.replace(self.temporary, self.path)
        self.temporary = None
        _sync_directory(self.path.parent)
        return self.path.stat().st_size


def _sync_directory(directory: Path) -> None:
    """The rename itself on disk (a crash after it keeps the new name)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform or file system without directory handles
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# --- Reading, for a restore ----------------------------------------------------------------


def _safe_target(root: Path, name: str) -> Path:
    """Where member `name` goes under `root`; a BackupError for a name that would leave
    it (absolute, `..`)."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
        raise BackupError(
            _("The archive holds a file with an unsafe name: %(name)s") % {"name": name}
        )
    return root.joinpath(*parts)


def extract(path: Path, into: Path) -> dict:
    """Unpack the archive at `path` into the directory `into`, and check it: the
    manifest's checksum, its format, and the size and SHA-256 of every member against
    the manifest (no member missing, none unknown). The manifest; a BackupError saying
    what is wrong otherwise. Nothing outside `into` is written."""
    found: dict[str, dict] = {}
    contents: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                if not member.isfile():
                    raise BackupError(
                        _("The archive holds something other than a file: %(name)s")
                        % {"name": member.name}
                    )
                if member.name in found or member.name in contents:
                    raise BackupError(
                        _("The archive holds %(name)s twice.") % {"name": member.name}
                    )
                source = tar.extractfile(member)
                if member.name in (MANIFEST, MANIFEST_CHECKSUM):
                    contents[member.name] = source.read()
                    continue
                target = _safe_target(into, member.name)
                target.parent.mkdir(parents=True, exist_ok=True)
                reader = _HashingReader(source)
                with open(target, "wb") as out:
                    shutil.copyfileobj(reader, out, CHUNK)
                found[member.name] = {"size": reader.size, "sha256": reader.digest.hexdigest()}
    except FileNotFoundError:
        raise BackupError(_("No backup at %(path)s.") % {"path": path}) from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        if isinstance(error, OSError) and error.errno is not None:
            raise BackupError(
                _("Cannot unpack %(path)s: %(error)s") % {"path": path, "error": error.strerror}
            ) from None
        raise BackupError(
            _("%(path)s is not a complete backup archive (damaged or cut short): %(error)s")
            % {"path": path, "error": error}
        ) from None
    manifest = _checked_manifest(contents)
    _compare(manifest["files"], found)
    return manifest


def _checked_manifest(contents: dict[str, bytes]) -> dict:
    data, checksum = contents.get(MANIFEST), contents.get(MANIFEST_CHECKSUM)
    if data is None or checksum is None:
        raise BackupError(
            _(
                "The archive has no manifest: it is damaged or cut short, or it is not a "
                "backup of this application."
            )
        )
    expected = checksum.decode(errors="replace").split(" ", 1)[0]
    if hashlib.sha256(data).hexdigest() != expected:
        raise BackupError(_("The manifest's checksum does not match: the archive is damaged."))
    try:
        manifest = json.loads(data)
    except ValueError:
        raise BackupError(_("The manifest is not valid JSON: the archive is damaged.")) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(_("The archive is not a backup of this application."))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            _("The backup's format version is %(found)s; this version reads %(known)s only.")
            % {"found": manifest.get("format_version"), "known": FORMAT_VERSION}
        )
    return manifest


def _compare(listed: dict[str, dict], found: dict[str, dict]) -> None:
    missing = sorted(set(listed) - set(found))
    if missing:
        raise BackupError(
            _("The archive lacks %(count)d file(s) of its manifest, e.g. %(name)s.")
            % {"count": len(missing), "name": missing[0]}
        )
    unknown = sorted(set(found) - set(listed))
    if unknown:
        raise BackupError(
            _("The archive holds %(count)d file(s) its manifest does not list, e.g. %(name)s.")
            % {"count": len(unknown), "name": unknown[0]}
        )
    damaged = sorted(name for name, entry in found.items() if entry != listed[name])
    if damaged:
        raise BackupError(
            _(
                "The checksum of %(count)d file(s) does not match the manifest, e.g. "
                "%(name)s: the archive is damaged."
            )
            % {"count": len(damaged), "name": damaged[0]}
        )
