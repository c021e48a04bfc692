"""Back up the database and the photos into one archive, while the server runs.

    manage.py backup PATH          # e.g. /var/backups/signalements/2026-12-01.tar(.gz)

One consistent snapshot of the database (SQLite's online backup API, or `pg_dump` of one
PostgreSQL snapshot), the photos under MEDIA_ROOT, and a manifest (counts per table,
checksums): see `signalements/backup/`. PATH is written atomically: it is the previous
file or a complete new one, never a part. A name ending in `.gz` or `.tgz` is gzipped.
Exits non-zero with the reason on failure. The archive holds PERSONAL DATA: keep it as
safe as the database.
"""

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from signalements import backup


class Command(BaseCommand):
    help = (
        "Back up the database (one consistent snapshot, while the server runs) and the "
        "photos into one archive at PATH (.tar, or .tar.gz), with a manifest of counts "
        "and checksums. It contains PERSONAL DATA: keep it as safe as the database."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The archive to write (.tar, .tar.gz or .tgz).")

    def handle(self, *args, path, **options):
        try:
            result = backup.create(path)
        except backup.BackupError as error:
            raise CommandError(str(error)) from None
        manifest = result.manifest
        rows = sum(manifest["tables"].values())
        photos = manifest["media"]
        if options["verbosity"] >= 1:
            self.stdout.write(
                _(
                    "Backup of the %(vendor)s database written to %(path)s (%(size)s): "
                    "%(tables)d tables, %(rows)d rows, %(reports)d reports."
                )
                % {
                    "vendor": manifest["database"]["vendor"],
                    "path": result.path,
                    "size": filesizeformat(result.size),
                    "tables": len(manifest["tables"]),
                    "rows": rows,
                    "reports": manifest["tables"].get("signalements_signalement", 0),
                }
            )
            if photos["included"]:
                self.stdout.write(
                    _("Photos: %(count)d files from the media directory.")
                    % {"count": photos["count"]}
                )
            else:
                self.stdout.write(
                    _(
                        "Photos: not copied, they are in %(storage)s (its own versioning or "
                        "replication is their backup)."
                    )
                    % {"storage": photos["storage"]}
                )
        if photos.get("missing"):
            self.stderr.write(
                ngettext(
                    "%(count)d photo file of the snapshot was deleted before it could be "
                    "copied (listed in the manifest).",
                    "%(count)d photo files of the snapshot were deleted before they could be "
                    "copied (listed in the manifest).",
                    len(photos["missing"]),
                )
                % {"count": len(photos["missing"])}
            )
