"""Export of every report as JSON Lines (`manage.py export_signalements`), in exactly
the format that `bulk_import` reads: importing the file into another database (with
the same categories, departments and areas) gives the same reports, and importing it
again imports nothing twice.

One JSON object per line, its keys the import's columns (`bulk_import.COLUMNS`):
category and department by code, dates in ISO 8601 in UTC to the microsecond,
coordinates as numbers (6 decimals at most, exact), `extra` as an object, null for
none. A report imported from another system keeps its `external_id`; one created here
gets "signalements:<uuid>", stable, so that a file re-imported skips it. The areas are
not written: the import finds them again from the location, as routing does.

The contact fields are personal data: the file is for moving an instance, not for
sharing. Memory stays constant: the reports are read in chunks (a server-side cursor on
PostgreSQL).
"""

from collections.abc import Iterator

import orjson

from .bulk_import import COLUMNS
from .models import Signalement

CHUNK_SIZE = 2000
EXTERNAL_ID_PREFIX = "signalements:"

# The values read per report, as plain tuples (no model instances), in the order of
# the file's keys, plus the uuid for reports without an external id.
_FIELDS = {
    "category": "category__code",
    "department": "department__code",
}
VALUES = (*(_FIELDS.get(name, name) for name in COLUMNS), "uuid")
_EXTERNAL_ID = COLUMNS.index("external_id")
_COORDINATES = (COLUMNS.index("latitude"), COLUMNS.index("longitude"))


def external_id_of(external_id: str | None, report_uuid) -> str:
    return external_id or f"{EXTERNAL_ID_PREFIX}{report_uuid}"


def iter_jsonl(queryset=None) -> Iterator[bytes]:
    """The reports of `queryset` (default: all), by id, one JSON line each."""
    queryset = Signalement.objects.all() if queryset is None else queryset
    rows = queryset.order_by("pk").values_list(*VALUES).iterator(chunk_size=CHUNK_SIZE)
    for values in rows:
        row = dict(zip(COLUMNS, values[:-1], strict=True))
        row["external_id"] = external_id_of(values[_EXTERNAL_ID], values[-1])
        for index in _COORDINATES:
            if values[index] is not None:
                # A Decimal of 6 places at most: the float's shortest repr is exact.
                row[COLUMNS[index]] = float(values[index])
        yield orjson.dumps(row) + b"\n"
