"""Restore a backup made by `manage.py backup` into an empty database and MEDIA_ROOT.

    manage.py restore PATH [--force]

Checks the whole archive first (the manifest's and every file's SHA-256): a damaged
archive changes nothing. Refuses a database that holds reports or users, and a media
directory that holds files, unless --force. SQLite: the database file is replaced
through SQLite's backup API; PostgreSQL: `pg_restore` in one transaction. Then counts
every table again, compares with the manifest, and prints a summary; exits non-zero if a
count differs. A backup is restored into the same kind of database (SQLite into SQLite,
PostgreSQL into PostgreSQL). Stop the application servers and workers first.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from signalements import backup


class Command(BaseCommand):
    help = (
        "Restore a backup (manage.py backup) into an empty database and media directory, "
        "after checking every checksum; then check every table's count against the "
        "manifest. Stop the servers first."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The archive that manage.py backup wrote.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace a database that holds reports or users, and add the photos to a "
            "media directory that holds files.",
        )

    def handle(self, *args, path, force=False, **options):
        try:
            result = backup.restore(path, force=force)
        except backup.BackupError as error:
            raise CommandError(str(error)) from None
        manifest = result.manifest
        if options["verbosity"] >= 2:
            for table, expected in sorted(manifest["tables"].items()):
                self.stdout.write(f"{table}: {result.counts[table]} / {expected}")
        for table, (expected, found) in sorted(result.mismatches.items()):
            self.stderr.write(
                _("%(table)s: %(found)s rows restored, the manifest says %(expected)d.")
                % {"table": table, "found": found, "expected": expected}
            )
        if result.mismatches:
            raise CommandError(
                ngettext(
                    "%(count)d table does not have the manifest's count: the restore is "
                    "incomplete.",
                    "%(count)d tables do not have the manifest's count: the restore is incomplete.",
                    len(result.mismatches),
                )
                % {"count": len(result.mismatches)}
            )
        if options["verbosity"] >= 1:
            self.stdout.write(
                _(
                    "Restored the backup of %(created_at)s (version %(version)s, %(vendor)s): "
                    "%(tables)d tables, %(rows)d rows, %(reports)d reports, %(photos)d photo "
                    "files. Every table's count matches the manifest."
                )
                % {
                    "created_at": manifest["created_at"],
                    "version": manifest["app_version"],
                    "vendor": manifest["database"]["vendor"],
                    "tables": len(manifest["tables"]),
                    "rows": sum(manifest["tables"].values()),
                    "reports": manifest["tables"].get("signalements_signalement", 0),
                    "photos": result.photos,
                }
            )
        if result.pending_migrations:
            self.stdout.write(
                ngettext(
                    "The backup is older than this code: run `manage.py migrate` "
                    "(%(count)d migration to apply).",
                    "The backup is older than this code: run `manage.py migrate` "
                    "(%(count)d migrations to apply).",
                    result.pending_migrations,
                )
                % {"count": result.pending_migrations}
            )
