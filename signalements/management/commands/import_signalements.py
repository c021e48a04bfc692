"""Import reports from a CSV or JSON Lines file: a city migrating from another system.

    manage.py import_signalements FILE [--dry-run] [--batch-size N] [--errors PATH.csv]
        [--format csv|jsonl]

Each row is checked by the API's rules (and the migration's: see
`signalements/bulk_import/`); a bad row is reported as "line N: field: message" on
stderr (and in the `--errors` CSV file: line, field, message) and left out, the others
are imported, a batch per transaction. Rows whose `external_id` is already imported are
skipped: running the same file again imports nothing twice. The imported reports are
routed as if created through the API (areas, department, priority, due date), get their
creation in their history, and send no email, webhook or notification. A progress bar
on a terminal (stderr), a line every few seconds otherwise; then a summary:
"imported X, skipped Y already imported, rejected Z".

Exit status: 0 when rows were imported (or, with --dry-run, would be) or skipped, or the
file holds none; 1 when every row was rejected, or the file cannot be read (a missing
file, not UTF-8, unknown columns).
"""

import argparse
import csv
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from tqdm import tqdm

from signalements import bulk_import
from signalements.exports import BOM


def batch_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of rows, not {value!r}")
    return size


class Progress:
    """How far the import is: a tqdm bar on a terminal (the file's bytes drive its
    percentage and ETA; rows and rows per second beside them), else a plain line
    every PLAIN_EVERY seconds (a log, CI)."""

    PLAIN_EVERY = 5.0

    def __init__(self, stream, size: int):
        self.stream = stream
        self.size = size
        self.started = self.last = time.monotonic()
        self.bar = None
        if stream.isatty():
            self.bar = tqdm(
                total=size,
                file=stream,
                unit="B",
                unit_scale=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
                dynamic_ncols=True,
            )

    def __call__(self, rows: int, position: int) -> None:
        now = time.monotonic()
        rate = rows / max(now - self.started, 1e-9)
        if self.bar is not None:
            self.bar.update(position - self.bar.n)
            self.bar.set_postfix_str(
                _("%(rows)s rows, %(rate)s rows/s") % {"rows": f"{rows:,}", "rate": f"{rate:,.0f}"}
            )
            return
        if now - self.last < self.PLAIN_EVERY:
            return
        self.last = now
        share = position / self.size if self.size else 1
        left = (now - self.started) * (1 - share) / share if share else 0
        self.stream.write(
            _("%(rows)s rows read (%(share)d%%), %(rate)s rows/s, about %(left)d s left")
            % {"rows": f"{rows:,}", "share": share * 100, "rate": f"{rate:,.0f}", "left": left}
            + "\n"
        )
        self.stream.flush()

    def write(self, line: str) -> None:
        """A line on the progress's stream, above the bar when there is one."""
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            self.stream.write(line + "\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Command(BaseCommand):
    help = (
        "Import reports from a CSV (header row) or JSON Lines file, each row checked by the "
        "API's rules; bad rows are reported with their line and left out. Idempotent on "
        "external_id. Imported reports are routed, get their history, and trigger no "
        "email, webhook or notification. The columns: " + ", ".join(bulk_import.COLUMNS) + "."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A .csv or .jsonl file (UTF-8).")
        parser.add_argument(
            "--format",
            choices=bulk_import.FORMATS,
            help="The file's format (default: from its extension, .csv or .jsonl).",
        )
        parser.add_argument(
            "--batch-size",
            type=batch_size,
            default=bulk_import.DEFAULT_BATCH_SIZE,
            help="Rows written per transaction at most (default: %(default)s; a batch also "
            "ends after 8 MB of the file).",
        )
        parser.add_argument(
            "--errors",
            metavar="PATH.csv",
            help="Also write the bad rows' problems to this CSV file (line, field, message).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check every row and say what would be imported; write nothing.",
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        errors_file = errors = None
        if options["errors"]:
            errors_file = open(options["errors"], "w", encoding="utf-8", newline="")  # noqa: SIM115
            errors_file.write(BOM)  # Excel reads accents right
            errors = csv.writer(errors_file)
            errors.writerow(["line", "field", "message"])
        progress = None

        def opened(source):
            nonlocal progress
            progress = Progress(self.stderr._out, source.size)

        def problem(found: bulk_import.Problem) -> None:
            where = f"{found.field}: " if found.field else ""
            progress.write(
                _("line %(line)d: %(where)s%(message)s")
                % {"line": found.line, "where": where, "message": found.message}
            )
            if errors is not None:
                errors.writerow([found.line, found.field, found.message])

        try:
            result = bulk_import.import_file(
                path,
                fmt=options["format"],
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
                on_problem=problem,
                on_progress=lambda rows, position: progress(rows, position),
                on_open=opened,
            )
        except bulk_import.UnreadableFile as error:
            if error.result is not None:
                self._summary(error.result, options["dry_run"])
            raise CommandError(str(error)) from None
        finally:
            if progress is not None:
                progress.close()
            if errors_file is not None:
                errors_file.close()
        self._summary(result, options["dry_run"])
        if result.rejected and not (result.imported or result.skipped):
            raise CommandError(_("No row could be imported."), returncode=1)

    def _summary(self, result: bulk_import.Result, dry_run: bool) -> None:
        summary = _(
            "imported %(imported)d, skipped %(skipped)d already imported, rejected %(rejected)d"
        ) % {"imported": result.imported, "skipped": result.skipped, "rejected": result.rejected}
        if dry_run:
            summary = _("Dry run, nothing saved: %(summary)s") % {"summary": summary}
        self.stdout.write(summary)
