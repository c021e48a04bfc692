"""The uploaded photos in a backup: the files under MEDIA_ROOT when the storage is Django's
`FileSystemStorage` (the default); nothing for another storage (S3 and the like: the
bucket's versioning or replication is their backup), which the manifest records."""

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.core.files.storage import FileSystemStorage, storages

from ..models import Attachment

PREFIX = "media/"


def storage_name() -> str:
    kind = type(storages["default"])
    return f"{kind.__module__}.{kind.__qualname__}"


def on_local_files() -> bool:
    """Whether the photos are files in a directory (and so are backed up here)."""
    return isinstance(storages["default"], FileSystemStorage)


def root() -> Path:
    """The photos' directory: the storage's location (MEDIA_ROOT unless its OPTIONS say
    otherwise)."""
    return Path(storages["default"].location)


def photo_columns() -> tuple[str, str, str]:
    """The table of the photos and its two file columns (the photo, its thumbnail)."""
    meta = Attachment._meta
    return meta.db_table, meta.get_field("file").column, meta.get_field("thumbnail").column


def files() -> Iterator[tuple[str, Path]]:
    """Every regular file under MEDIA_ROOT, as (its storage name, its path), by name."""
    base = root()
    if not base.is_dir():
        return
    for directory, subdirectories, names in os.walk(base):
        subdirectories.sort()
        for name in sorted(names):
            path = Path(directory) / name
            try:
                if not stat.S_ISREG(path.lstat().st_mode):
                    continue  # a link or a socket: not a photo the storage wrote
            except FileNotFoundError:
                continue  # deleted since it was listed
            yield path.relative_to(base).as_posix(), path


def has_files() -> bool:
    return next(files(), None) is not None


def restore(extracted: Path, names: list[str]) -> None:
    """Put the archived files (`names`, under `extracted`) under MEDIA_ROOT, each written
    to a temporary file then renamed: a file is there whole or not at all."""
    base = root()
    for name in names:
        target = base.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".restore-")
        try:
            with open(descriptor, "wb") as out, open(extracted / name, "rb") as source:
                shutil.copyfileobj(source, out)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
