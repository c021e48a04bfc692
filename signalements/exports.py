"""CSV export of reports, streamed: the REST API's `GET /api/signalements/export.csv`
(agents; `api/views/export.py`) and the admin action "Export selected to CSV" share the
code below.

The API's export holds the same reports as its list: the caller's visibility (only
agents may export, and agents see every report), then the list's filters and ordering
(`?status=`, `?in_bbox=`, `?ordering=`…; default `-created_at`); no pagination. An
invalid filter is the list's 400. The admin action exports the selected reports in the
change list's order.

The file:

- UTF-8 with a byte order mark (BOM), so that Excel reads accented text correctly;
  comma-separated, fields quoted when needed, CRLF line ends (RFC 4180); one header row
  of the column names below in the request's language: in English (`Accept-Language:
  en`, what scripts should send) the names as they are, snake_case like the API's
  fields; in French, words ("Référence", "Statut"…).
- `created_at`, `date` and `resolved_at` in ISO 8601 with the offset of `TIME_ZONE`, as
  the API writes them; `status` and `priority` as their labels in the request's
  language ("En cours", "In progress"),
  `category` as its name and `category_code` as its code, `assigned_to` as a username,
  `latitude`/`longitude` in WGS84 degrees (6 decimals), `is_public` as `true`/`false`;
  an empty cell for none. The private contact fields are included: agents may read
  them.
- Formula injection (CSV injection) is neutralised: a text cell that starts with `=`,
  `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so that a spreadsheet
  shows it as text instead of evaluating it (OWASP). Only free text is concerned (title,
  description, address, names, contact fields, codes, usernames): numbers and dates
  are written as they are (a negative longitude stays a number). A phone number written
  `+33…` therefore comes out as `'+33…`.

Memory stays constant whatever the number of rows: the reports are read from the
database in chunks (`.iterator(chunk_size=…)`, a server-side cursor on PostgreSQL),
each written to CSV and sent in pieces of about 64 KiB through a
`StreamingHttpResponse`. The query runs before the response is returned, so a database
error is still an ordinary 500 and not a truncated file.
"""

import csv
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import pgettext_lazy

from .models import REFERENCE_PREFIX, Priority, Status

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
BOM = "\ufeff"
# Reports fetched from the database at a time, and characters sent per piece.
CHUNK_SIZE = 2000
FLUSH_SIZE = 64 * 1024

# The columns, by name (snake_case like the API's fields), with their title in the header
# row: in English the name itself, in French words ("Référence", "Statut"…).
COLUMN_TITLES = {
    "reference": pgettext_lazy("CSV column", "reference"),
    "id": pgettext_lazy("CSV column", "id"),
    "created_at": pgettext_lazy("CSV column", "created_at"),
    "date": pgettext_lazy("CSV column", "date"),
    "status": pgettext_lazy("CSV column", "status"),
    "priority": pgettext_lazy("CSV column", "priority"),
    "category": pgettext_lazy("CSV column", "category"),
    "category_code": pgettext_lazy("CSV column", "category_code"),
    "title": pgettext_lazy("CSV column", "title"),
    "description": pgettext_lazy("CSV column", "description"),
    "address": pgettext_lazy("CSV column", "address"),
    "latitude": pgettext_lazy("CSV column", "latitude"),
    "longitude": pgettext_lazy("CSV column", "longitude"),
    "is_public": pgettext_lazy("CSV column", "is_public"),
    "assigned_to": pgettext_lazy("CSV column", "assigned_to"),
    "resolved_at": pgettext_lazy("CSV column", "resolved_at"),
    "contact_name": pgettext_lazy("CSV column", "contact_name"),
    "contact_email": pgettext_lazy("CSV column", "contact_email"),
    "contact_phone": pgettext_lazy("CSV column", "contact_phone"),
}
COLUMNS = tuple(COLUMN_TITLES)

# What a spreadsheet may take for the start of a formula (OWASP "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(text: str) -> str:
    """A text cell that a spreadsheet cannot evaluate as a formula."""
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


# What a row needs, read as plain values (no model instances: about 2.5 times faster),
# in one query whose joins fetch the category and the assignee (no query per row).
FIELDS = (
    "pk",
    "created_at",
    "date",
    "status",
    "priority",
    "category__name",
    "category__code",
    "title",
    "description",
    "address",
    "latitude",
    "longitude",
    "is_public",
    "assigned_to__username",
    "resolved_at",
    "contact_name",
    "contact_email",
    "contact_phone",
)


class RowWriter:
    """Turns a report's FIELDS into its CSV cells (COLUMNS). Labels and the time zone
    are read once, when the export starts: inside the request, in its language."""

    def __init__(self):
        self.timezone = timezone.get_current_timezone()
        self.status_labels = {value: str(label) for value, label in Status.choices}
        self.priority_labels = {value: str(label) for value, label in Priority.choices}

    def iso(self, value):
        """As the API writes dates: ISO 8601 in the current time zone, `Z` for UTC."""
        if value is None:
            return None
        text = value.astimezone(self.timezone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def __call__(self, values: tuple) -> list:
        (
            pk,
            created_at,
            date,
            status,
            priority,
            category_name,
            category_code,
            title,
            description,
            address,
            latitude,
            longitude,
            is_public,
            assigned_to,
            resolved_at,
            contact_name,
            contact_email,
            contact_phone,
        ) = values
        # `Signalement.reference`, from the values (the test suite checks they agree).
        year = created_at.astimezone(self.timezone).year
        return [
            f"{REFERENCE_PREFIX}-{year}-{pk:06d}",
            pk,
            self.iso(created_at),
            self.iso(date),
            self.status_labels.get(status, status),
            self.priority_labels.get(priority, priority),
            None if category_name is None else neutralize(category_name),
            None if category_code is None else neutralize(category_code),
            neutralize(title),
            neutralize(description),
            neutralize(address),
            latitude,
            longitude,
            "true" if is_public else "false",
            None if assigned_to is None else neutralize(assigned_to),
            self.iso(resolved_at),
            neutralize(contact_name),
            neutralize(contact_email),
            neutralize(contact_phone),
        ]


class _Echo:
    """A file-like object whose `write` returns what it is given, so that
    `csv.writer(...).writerow()` returns the CSV line (Django's "Streaming large CSV
    files")."""

    def write(self, value: str) -> str:
        return value


def export_values(queryset: QuerySet) -> QuerySet:
    """The FIELDS of `queryset`'s reports, in its order, in one query."""
    return queryset.values_list(*FIELDS)


def iter_csv(queryset: QuerySet) -> Iterator[bytes]:
    """The CSV file of `queryset`'s reports, in pieces of about FLUSH_SIZE characters
    (UTF-8, BOM and header row first). Runs the query on the first `next()`."""
    row = RowWriter()
    writer = csv.writer(_Echo())
    pending: list[str] = [BOM, writer.writerow([str(title) for title in COLUMN_TITLES.values()])]
    size = 0
    for values in export_values(queryset).iterator(chunk_size=CHUNK_SIZE):
        line = writer.writerow(row(values))
        pending.append(line)
        size += len(line)
        if size >= FLUSH_SIZE:
            yield _encode(pending)
            pending, size = [], 0
    if pending:
        yield _encode(pending)


def _encode(pieces: Iterable[str]) -> bytes:
    # "replace": a lone surrogate (which the database may hold) must not cut the file.
    return "".join(pieces).encode("utf-8", errors="replace")


def default_filename() -> str:
    return f"signalements-{timezone.localdate():%Y%m%d}.csv"


def csv_response(queryset: QuerySet, filename: str | None = None) -> StreamingHttpResponse:
    """A download of `queryset`'s reports as CSV, streamed in constant memory."""
    pieces = iter_csv(queryset)
    # The first piece runs the query: a database error is raised here, in the view.
    first = next(pieces)
    response = StreamingHttpResponse(_chain(first, pieces), content_type=CSV_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename or default_filename()}"'
    return response


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    # A generator rather than itertools.chain: the response closes it when the client
    # goes away, which closes `rest` and so the database cursor.
    yield first
    yield from rest
