"""Backups of a running instance, and their restore (`manage.py backup`, `manage.py
restore`).

A backup is ONE archive file (a tar, gzipped when its name ends in `.gz` or `.tgz`):

- `database/db.sqlite3` (SQLite, copied through SQLite's online backup API) or
  `database/db.dump` (PostgreSQL, `pg_dump --format=custom`): one consistent snapshot,
  taken while the server goes on writing;
- `media/...`: the uploaded photos, when they are files under MEDIA_ROOT (Django's
  `FileSystemStorage`). Another storage (S3) is not copied: its own versioning or
  replication is its backup, and the manifest says so;
- `manifest.json`: the format and its version, when, the application's and Django's
  versions, the database's kind, the number of rows of every table *in the snapshot that
  was dumped* (PostgreSQL: counted in a REPEATABLE READ transaction whose snapshot
  `pg_dump --snapshot` shares; SQLite: counted in the copy), the photos referenced by
  the snapshot and not found (deleted since), and the size and SHA-256 of every other
  member; `manifest.sha256`, the manifest's own checksum.

The database is read first, the photos after: a photo's file is written before its row
is committed (`attachments.add`), so every photo of the snapshot is on disk by then,
unless it was deleted meanwhile (listed as missing).

The archive is written to a hidden temporary file beside PATH, then renamed: PATH is the
previous backup or a complete new one, never a part. A restore reads and checks the
whole archive (every checksum) before it touches anything, refuses a database that
holds reports or users (unless forced), restores, then counts every table again and
compares with the manifest. The checksums detect a damaged file, not a forged one:
keep backups where only operators write, and encrypt those that leave the machine.

Modules: `archive` (the tar and its manifest), `sqlite` and `postgresql` (each
database's snapshot, dump and restore), `media` (the photos), `operations` (a backup and
a restore, step by step).
"""

from .archive import FORMAT_VERSION, BackupError
from .operations import BackupResult, RestoreResult, create, restore

__all__ = ["FORMAT_VERSION", "BackupError", "BackupResult", "RestoreResult", "create", "restore"]
