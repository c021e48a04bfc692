"""Bulk import of reports (`manage.py import_signalements`): a city moving from another
system brings years of reports at once, in a CSV file or in JSON Lines, as
`bulk_export.py` writes them.

- **Reading** (`reading.py`): the file streamed, its columns checked before anything
  is imported: the API's writable fields and what a migration needs (`COLUMNS`).
- **Checking** (`validation.py`): every row by the API's rules and the migration's,
  fast; bad rows are reported with their line (`Problem`) and left out, the rest is
  imported.
- **Routing** (`routing.py`): areas, department, priority and due date as a create
  through the API would give them, a batch at a time.
- **Writing** (`writing.py`): a batch per transaction, the reports, their creation's
  history and their areas, in a thread of its own while the next batch is read and
  checked. **Idempotent**: a row whose `external_id` is already imported, or earlier
  in the file, is skipped and counted. No email, no webhook, no notification: those are
  for what happens now, not for the history of another system.

Memory stays constant: a batch at a time is read, and at most three are in memory
(one being written, one waiting, one being read)."""

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from .reading import COLUMNS, FORMATS, Problem, Row, Source, UnreadableFile, open_source
from .routing import BulkRouter
from .validation import ImportSerializer, RowValidator
from .writing import BackgroundWriter, Writer, in_database

__all__ = [
    "COLUMNS",
    "DEFAULT_BATCH_SIZE",
    "FORMATS",
    "BulkRouter",
    "ImportSerializer",
    "Problem",
    "Result",
    "RowValidator",
    "UnreadableFile",
    "import_file",
]

DEFAULT_BATCH_SIZE = 20_000
# A batch also ends after this many bytes of the file, so that long rows (descriptions
# of 4,000 characters) do not make it large: memory is bounded whatever the rows.
BATCH_BYTES = 8 * 1024 * 1024


@dataclass
class Result:
    imported: int = 0  # in a dry run: would be imported
    skipped: int = 0  # already imported (external_id)
    rejected: int = 0


class SeenIds:
    """The external ids of a dry run's rows so far (in a real import the database
    holds them), as 64-bit hashes in a sorted array: 8 bytes a row. Two different ids
    with one hash (about one chance in 10^7 at a million rows) would count the second
    as already imported, in a dry run only."""

    def __init__(self):
        self.hashes = numpy.empty(0, dtype=numpy.int64)

    def known(self, ids: list[str]) -> set[str]:
        """Those of `ids` seen before; all of them are seen from now on."""
        hashes = numpy.array([hash(value) for value in ids], dtype=numpy.int64)
        if len(self.hashes):
            positions = numpy.searchsorted(self.hashes, hashes)
            positions = numpy.minimum(positions, len(self.hashes) - 1)
            hits = (self.hashes[positions] == hashes).tolist()
        else:
            hits = [False] * len(ids)
        # Two sorted runs: the stable sort (timsort) merges them in linear time.
        self.hashes = numpy.sort(
            numpy.concatenate([self.hashes, numpy.sort(hashes)]), kind="stable"
        )
        return {value for value, hit in zip(ids, hits, strict=True) if hit}


def batches(source: Source, size: int, max_bytes: int = BATCH_BYTES) -> Iterator[list[Row]]:
    """The source's rows by batches of `size` rows, or of about `max_bytes` of the file
    (looked at every 256 rows)."""
    batch = []
    start = source.position()
    for row in source.rows():
        batch.append(row)
        if len(batch) >= size or (len(batch) % 256 == 0 and source.position() - start >= max_bytes):
            yield batch
            batch = []
            start = source.position()
    if batch:
        yield batch


@contextmanager
def _interpreter_for_bulk():
    """Two of the interpreter's settings, for the import's time (process-wide, set back
    afterwards; measured on 200,000 rows):

    - Python's cyclic garbage collector runs every 50,000 new objects rather than 700:
      each batch makes millions of short-lived dicts and tuples (freed as they go,
      without cycles), and at the default its collections took 40 % of the import's
      Python time, walking the whole application's objects again and again.
    - The thread switch interval is 1 ms rather than 5: the writer's thread comes back
      from the database after each statement and waits for Python's lock, which the
      reading thread keeps for a whole interval; at 5 ms the writer on SQLite waited a
      third of its time (25 % slower import)."""
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(50_000, 20, 100)
    sys.setswitchinterval(0.001)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)


class Importer:
    """Reads, checks, routes and writes a file's rows, a batch at a time (see the
    module's doc). `on_problem` is called with each bad row's problems as they are
    found, `on_progress(rows read, bytes read)` after each batch, both in the caller's
    thread."""

    def __init__(
        self,
        source: Source,
        *,
        note: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        dry_run: bool = False,
        on_problem: Callable[[Problem], None] = lambda problem: None,
        on_progress: Callable[[int, int], None] = lambda rows, position: None,
    ):
        self.source = source
        self.note = note
        self.batch_size = batch_size
        self.dry_run = dry_run
        self.on_problem = on_problem
        self.on_progress = on_progress
        self.result = Result()

    def run(self) -> Result:
        try:
            if self.dry_run:
                self._check_only()
            else:
                self._import()
        except UnreadableFile as error:
            error.result = self.result
            raise
        return self.result

    def _batches(self) -> Iterator[tuple[datetime, list[dict]]]:
        """Each batch's time and valid rows (the bad ones reported and counted), then
        the progress."""
        read = 0
        for batch in batches(self.source, self.batch_size):
            now = timezone.now()
            yield now, self._valid(batch, now)
            read += len(batch)
            self.on_progress(read, self.source.position())

    def _import(self) -> None:
        writer = Writer()
        background = BackgroundWriter(writer)
        self.validator = RowValidator(database=background.lock)
        router = BulkRouter(self.note, database=background.lock)
        try:
            with background:
                for now, rows in self._batches():
                    if rows:
                        background.put(writer.stage(rows, router.route(rows, now), now))
        finally:
            self.result.imported += background.imported
            self.result.skipped += background.skipped

    def _check_only(self) -> None:
        """A dry run: the rows checked, and those already imported (in the database or
        earlier in the file) counted; no routing, nothing written."""
        self.validator = RowValidator()
        seen = SeenIds()
        for _now, rows in self._batches():
            ids = [attrs["external_id"] for attrs in rows if attrs.get("external_id")]
            known = (in_database(ids) | seen.known(ids)) if ids else set()
            for attrs in rows:
                external_id = attrs.get("external_id")
                if external_id:
                    if external_id in known:
                        self.result.skipped += 1
                        continue
                    known.add(external_id)
                self.result.imported += 1

    def _valid(self, batch: list[Row], now: datetime) -> list[dict]:
        self.validator.start(now)
        readable = [row for row in batch if not row.problems]
        verdicts = iter(self.validator.validate_many([row.data for row in readable]))
        valid = []
        for row in batch:
            problems = row.problems
            if not problems:
                attrs, errors = next(verdicts)
                if attrs is not None:
                    valid.append(attrs)
                    continue
                problems = [Problem(row.line, name, message) for name, message in errors]
            self.result.rejected += 1
            for problem in problems:
                self.on_problem(problem)
        return valid


# The SQLite page cache of an import: enough for the indexes' working set, and reached
# within the first 100,000 reports, so that memory stays flat afterwards.
SQLITE_CACHE_KIB = 32 * 1024


@contextmanager
def _sqlite_cache(kib: int):
    """On SQLite, a page cache of `kib` KiB for the import's connection, set back
    afterwards: with the default 2 MiB, each insert into the reports' dozen indexes
    reads pages again (measured: 2.4 times slower). Nothing on other databases."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        previous = int(cursor.fetchone()[0])
        cursor.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {previous}")


def import_file(
    path: Path,
    *,
    fmt: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    on_problem: Callable[[Problem], None] = lambda problem: None,
    on_progress: Callable[[int, int], None] = lambda rows, position: None,
    on_open: Callable[[Source], None] = lambda source: None,
) -> Result:
    """Import the reports of the file at `path` (see the module's doc). Raises
    UnreadableFile when the file cannot be imported at all; batches imported before a
    later line turns out unreadable stay imported (importing again skips them, by
    external_id)."""
    source = open_source(path, fmt)
    try:
        on_open(source)
        note = _("Imported from %(file)s") % {"file": path.name}
        importer = Importer(
            source,
            note=note,
            batch_size=batch_size,
            dry_run=dry_run,
            on_problem=on_problem,
            on_progress=on_progress,
        )
        with _interpreter_for_bulk(), nullcontext() if dry_run else _sqlite_cache(SQLITE_CACHE_KIB):
            return importer.run()
    finally:
        source.close()
