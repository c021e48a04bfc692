"""Export every report as JSON Lines, in the format `import_signalements` reads.

    manage.py export_signalements FILE.jsonl     # or - for the standard output

The file holds personal data (the reporters' contact name, email and phone): keep it
as you keep the database. See `signalements/bulk_export.py`.
"""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from signalements import bulk_export


class Command(BaseCommand):
    help = (
        "Export every report as JSON Lines (FILE, or - for stdout), in the format that "
        "import_signalements reads: the file round-trips. It contains PERSONAL DATA "
        "(reporters' contact name, email and phone): keep it as safe as the database."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The .jsonl file to write, or - for stdout.")

    def handle(self, *args, **options):
        target = options["file"]
        count = 0
        try:
            out = sys.stdout.buffer if target == "-" else open(target, "wb")  # noqa: SIM115
        except OSError as error:
            raise CommandError(
                _("Cannot write %(file)s: %(error)s")
                % {"file": target, "error": error.strerror or error}
            ) from None
        try:
            for line in bulk_export.iter_jsonl():
                out.write(line)
                count += 1
            out.flush()
        finally:
            if out is not sys.stdout.buffer:
                out.close()
        # The data may be on stdout: the count goes to stderr.
        self.stderr.write(_("%(count)d reports exported.") % {"count": count})
