"""The data of `make bench-scale` (bench/scale.py), written into the project's database
(DATABASE_URL) in bulk SQL: never `Signalement.save()`, whose routing costs milliseconds a
report (hours for a million).

    DATABASE_URL=... .venv/bin/python bench/scale_data.py setup --media DIR
    DATABASE_URL=... .venv/bin/python bench/scale_data.py grow --to 1000000
    DATABASE_URL=... .venv/bin/python bench/scale_data.py probe --deep-page 10000 --samples 300
    DATABASE_URL=... .venv/bin/python bench/scale_data.py import-file FILE --rows N --format jsonl

Each command prints one JSON object on stdout (what bench/scale.py needs next).

- `setup`: the small fixture, through the ORM: the demo's departments, categories, the
  districts of Rennes, routing rules and accounts (`load_demo_data --reports 0`), an
  eighth category, the agent's API token, and three small real JPEG files (and their
  thumbnails) in MEDIA_ROOT for the photos.
- `grow`: reports from the largest id + 1 up to `--to`, in one INSERT … SELECT per batch
  (`generate_series` on PostgreSQL, a recursive CTE on SQLite), spread over ten years
  (more of them recent), eight categories and their departments, every status in the
  proportions of its age (old reports are mostly resolved or rejected), 95 % located in
  and around Rennes (with the districts they lie in), 2 % hidden, photos on 5 %; and each
  one's creation row in the history. Then `VACUUM ANALYZE` (PostgreSQL) or `ANALYZE`.
- `probe`: what the requests need from the data: the number of public reports, random
  ids, the cursors of pages deep in the list, the last months.
- `import-file`: a file of N reports for `import_signalements` (JSON lines or CSV).
"""

import argparse
import csv
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SPAN_DAYS = 3652  # ten years
BATCH = 100_000
# Coordinates come from a pool of points (with the districts each lies in), so that a
# report's districts are one join away: report k takes point (k * STRIDE) % POOL.
POOL = 20_011  # prime: the stride visits every point
STRIDE = 7_919
POOL_SEED = 2025
# The districts' bounding box (signalements/demo/rennes-districts.geojson), widened a
# little: some reports lie outside every district, as in any city's suburbs.
WEST, SOUTH, EAST, NORTH = -1.7313, 48.068, -1.609, 48.1466
# Every 20th report has no location, every 20th another one photos, every 50th is hidden.
NO_LOCATION, WITH_PHOTO, HIDDEN = 7, 3, 11
PHOTO_FILES = 3
PHOTO_SIZE = (640, 480)

# The demo's seven categories and an eighth, with their share of the reports.
EXTRA_CATEGORY = ("mobilier-urbain", "Mobilier urbain", "Voirie et espace public")
CATEGORY_SHARES = {
    "voirie": 0.22,
    "proprete": 0.20,
    "eclairage-public": 0.15,
    "espaces-verts": 0.12,
    "signalisation": 0.10,
    "reseau-electrique": 0.08,
    "eau-assainissement": 0.08,
    "mobilier-urbain": 0.05,
}
# The statuses by age: (days younger than, cumulative shares of new, acknowledged,
# in_progress, resolved; the rest rejected).
STATUS_BY_AGE = [
    (30, (0.30, 0.50, 0.65, 0.93)),
    (365, (0.04, 0.08, 0.12, 0.87)),
    (None, (0.01, 0.015, 0.02, 0.87)),
]
PRIORITY_SHARES = (("low", 0.10), ("normal", 0.70), ("high", 0.15), ("urgent", 0.05))
DESCRIPTIONS = [
    "Panne électrique dans la rue",
    "Lampadaire éteint depuis trois soirs",
    "Nid-de-poule dangereux pour les vélos",
    "Dépôt sauvage d'encombrants sur le trottoir",
    "Feu tricolore en panne au carrefour",
    "Fuite d'eau sur la chaussée",
    "Trottoir dégradé devant l'école",
    "Poubelle débordante près de l'arrêt de bus",
    "Branche tombée sur la piste cyclable",
    "Tag sur la façade de la médiathèque",
    "Banc cassé dans le square",
    "Bouche d'égout bouchée après l'orage",
]
AGENT = "agent"
CURSOR_PAGES = 5  # neighbouring deep pages asked in turn


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "signalements_project.settings")
    import django

    django.setup()


# --- setup ----------------------------------------------------------------------------


def setup(media: Path) -> dict:
    """The fixture; returns the agent's token, the categories' codes and the districts'
    bounding boxes."""
    from io import StringIO

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from knox.models import AuthToken

    from signalements.models import Area, Category, Department

    call_command("load_demo_data", reports=0, stdout=StringIO())
    code, name, group = EXTRA_CATEGORY
    Category.objects.update_or_create(
        code=code,
        defaults={
            "name": name,
            "group": group,
            "description": "Banc, abribus, potelet ou barrière endommagé.",
            "department": Department.objects.get(code="voirie-sud"),
        },
    )
    agent = get_user_model().objects.get(username=AGENT)
    # A token that does not expire during a long run (stored hashed: kept in the fixture).
    _, token = AuthToken.objects.create(user=agent, expiry=None)
    write_photos(media)
    return {
        "token": token,
        "categories": sorted(Category.objects.values_list("code", flat=True)),
        "districts": {
            area.code: [
                area.min_longitude,
                area.min_latitude,
                area.max_longitude,
                area.max_latitude,
            ]
            for area in Area.objects.order_by("code")
        },
    }


def photo_name(folder: str, number: int) -> str:
    return f"{folder}/bench-scale/{number}.jpg"


def write_photos(media: Path) -> None:
    """Small real JPEGs (and thumbnails) that the photos' rows point to, so that their
    URLs answer."""
    from PIL import Image

    for number in range(PHOTO_FILES):
        for folder, size in (("photos", PHOTO_SIZE), ("thumbnails", (160, 120))):
            path = media / photo_name(folder, number)
            path.parent.mkdir(parents=True, exist_ok=True)
            image = Image.new("RGB", size, (40 + 60 * number, 120, 200 - 50 * number))
            buffer = BytesIO()
            image.save(buffer, format="JPEG", quality=70)
            path.write_bytes(buffer.getvalue())


# --- grow -----------------------------------------------------------------------------


def point_pool() -> tuple[list[tuple[int, float, float]], list[tuple[int, int]]]:
    """POOL points in and around Rennes, the same on every run, and the districts each
    lies in (shapely, boundary included, as `signalements.areas.covers` decides)."""
    import shapely
    from shapely.geometry import Point, shape

    from signalements.models import Area

    areas = [(area.pk, shape(area.geometry)) for area in Area.objects.filter(is_active=True)]
    for _, geometry in areas:
        shapely.prepare(geometry)
    rng = random.Random(POOL_SEED)
    points, memberships = [], []
    for index in range(POOL):
        latitude = round(rng.uniform(SOUTH, NORTH), 6)
        longitude = round(rng.uniform(WEST, EAST), 6)
        points.append((index, latitude, longitude))
        point = Point(longitude, latitude)
        memberships += [(index, pk) for pk, geometry in areas if geometry.covers(point)]
    return points, memberships


class Dialect:
    """What differs between PostgreSQL and SQLite in the generating SQL."""

    def __init__(self, vendor: str):
        self.pg = vendor == "postgresql"

    def series(self, low: int, high: int) -> str:
        if self.pg:
            return f"SELECT k FROM generate_series({low:d}::bigint, {high:d}) AS k"
        return (
            f"WITH RECURSIVE s(k) AS (SELECT {low:d} UNION ALL SELECT k + 1 FROM s "
            f"WHERE k < {high:d}) SELECT k FROM s"
        )

    @property
    def random(self) -> str:
        """A uniform number in [0, 1)."""
        if self.pg:
            return "random()"
        return "((random() & 1073741823) / 1073741824.0)"

    @property
    def uuid(self) -> str:
        # SQLite: Django stores a UUIDField as its 32 hex digits.
        return "gen_random_uuid()" if self.pg else "lower(hex(randomblob(16)))"

    def timestamp(self, epoch: str) -> str:
        """A stored datetime from seconds since 1970 (UTC)."""
        if self.pg:
            return f"to_timestamp({epoch})"
        # As Django stores an aware datetime on SQLite: UTC text with microseconds.
        return (
            f"(strftime('%Y-%m-%d %H:%M:%S', {epoch}, 'unixepoch') || '.' || "
            f"printf('%06d', CAST(({epoch}) * 1000000 AS INTEGER) % 1000000))"
        )

    def boolean(self, condition: str) -> str:
        return f"({condition})" if self.pg else f"CASE WHEN {condition} THEN 1 ELSE 0 END"

    @property
    def false(self) -> str:
        return "false" if self.pg else "0"

    def text_array(self, values: list[str], index: str) -> str:
        """values[index] (index from 0)."""
        quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
        if self.pg:
            return f"(ARRAY[{quoted}])[1 + ({index})]"
        return f"json_extract('{json.dumps(values).replace(chr(39), chr(39) * 2)}', '$[' || ({index}) || ']')"


def _cumulative_case(value: str, shares: list[tuple[str, float]]) -> str:
    """CASE choosing among `shares` (SQL literal, share) by a uniform `value`."""
    branches, total = [], 0.0
    for literal, share in shares[:-1]:
        total += share
        branches.append(f"WHEN {value} < {total:.6f} THEN {literal}")
    return f"CASE {' '.join(branches)} ELSE {shares[-1][0]} END"


def _status_case() -> str:
    statuses = ["'new'", "'acknowledged'", "'in_progress'", "'resolved'"]
    branches = []
    for younger_than, thresholds in STATUS_BY_AGE:
        inner = " ".join(
            f"WHEN r2 < {threshold} THEN {status}"
            for status, threshold in zip(statuses, thresholds, strict=True)
        )
        case = f"CASE {inner} ELSE 'rejected' END"
        branches.append(f"WHEN age_days < {younger_than} THEN {case}" if younger_than else case)
    return f"CASE {' '.join(branches[:-1])} ELSE {branches[-1]} END"


REPORT_COLUMNS = (
    "id, uuid, title, description, date, status, priority, latitude, longitude, address, "
    "contact_name, contact_email, contact_phone, is_public, created_at, updated_at, "
    "resolved_at, category_id, assigned_to_id, duplicate_of_id, reporter_id, extra, "
    "reporter_token_expires_at, reporter_token_hash, media_url, api_key_id, version, "
    "language, due_at, keep_routing, department_id, external_id"
)
# The history's copy of a report (simple-history's columns less the excluded ones).
HISTORY_COLUMNS = (
    "id, uuid, title, description, date, status, priority, latitude, longitude, address, "
    "contact_name, contact_email, contact_phone, is_public, created_at, resolved_at, "
    "assigned_to_id, category_id, duplicate_of_id, reporter_id, extra, media_url, "
    "api_key_id, due_at, keep_routing, department_id, external_id"
)


def reports_sql(dialect: Dialect, low: int, high: int, now: float, context: dict) -> str:
    """One INSERT … SELECT of the reports low..high (ids given: the photos and the areas
    are then joined by id)."""
    rnd = dialect.random
    categories = context["categories"]  # [(id, department id or None, share)]
    category = _cumulative_case("r3", [(str(pk), share) for pk, _, share in categories])
    department = "CASE category_id " + " ".join(
        f"WHEN {pk} THEN {department if department is not None else 'NULL'}"
        for pk, department, _ in categories
    )
    department += " END"
    priority = _cumulative_case("r4", [(f"'{name}'", share) for name, share in PRIORITY_SHARES])
    # Seconds since 1970: created a minute ago at the latest; resolved within 30 days
    # (within its age when younger).
    created = f"{now:.6f} - 60 - age_days * 86400.0"
    resolution = "r5 * (CASE WHEN age_days < 30 THEN age_days ELSE 30 END) * 86400.0"
    resolved = (
        f"CASE WHEN status = 'resolved' THEN {dialect.timestamp(f'{created} + {resolution}')} END"
    )
    description = (
        dialect.text_array(DESCRIPTIONS, f"k % {len(DESCRIPTIONS)}")
        + " || ', report ' || k || ' of the scale benchmark'"
    )
    located = f"k % 20 <> {NO_LOCATION}"
    return f"""
    WITH r AS MATERIALIZED (
        SELECT k, {rnd} AS r1, {rnd} AS r2, {rnd} AS r3, {rnd} AS r4, {rnd} AS r5
        FROM ({dialect.series(low, high)}) AS series
    ), aged AS (
        SELECT k, r2, r3, r4, r5, (1 - sqrt(r1)) * {SPAN_DAYS} AS age_days FROM r
    ), classified AS (
        SELECT k, r4, r5, age_days, {_status_case()} AS status, {category} AS category_id
        FROM aged
    )
    INSERT INTO signalements_signalement ({REPORT_COLUMNS})
    SELECT k, {dialect.uuid}, '', {description},
        {dialect.timestamp(f"{created} - r5 * 86400.0")}, status, {priority},
        CASE WHEN {located} THEN p.latitude END, CASE WHEN {located} THEN p.longitude END,
        '', '', '', '', {dialect.boolean(f"k % 50 <> {HIDDEN}")},
        {dialect.timestamp(created)},
        COALESCE({resolved}, {dialect.timestamp(created)}),
        {resolved}, category_id,
        CASE WHEN status <> 'new' THEN {context["agent"]} END, NULL, NULL, '{{}}', NULL, NULL,
        '', NULL, 1, 'fr',
        {dialect.timestamp(f"{created} + 7 * 86400.0")}, {dialect.false},
        {department}, NULL
    FROM classified
    JOIN bench_scale_points AS p ON p.idx = (k * {STRIDE}) % {POOL}
    """


def history_sql(low: int, high: int) -> str:
    return f"""
    INSERT INTO signalements_historicalsignalement
        ({HISTORY_COLUMNS}, history_change_reason, history_date, history_type, history_user_id)
    SELECT {HISTORY_COLUMNS}, NULL, created_at, '+', NULL
    FROM signalements_signalement WHERE id BETWEEN {low:d} AND {high:d}
    """


def areas_sql(low: int, high: int) -> str:
    return f"""
    INSERT INTO signalements_signalement_areas (signalement_id, area_id)
    SELECT s.id, m.area_id
    FROM signalements_signalement AS s
    JOIN bench_scale_point_areas AS m ON m.idx = (s.id * {STRIDE}) % {POOL}
    WHERE s.id BETWEEN {low:d} AND {high:d} AND s.latitude IS NOT NULL
    """


def photos_sql(low: int, high: int) -> str:
    def name(folder: str) -> str:
        prefix = f"{folder}/bench-scale/"
        return f"'{prefix}' || (s.id % {PHOTO_FILES}) || '.jpg'"

    return f"""
    INSERT INTO signalements_attachment
        (file, thumbnail, content_type, size, width, height, created_at, signalement_id,
         uploaded_by_id)
    SELECT {name("photos")}, {name("thumbnails")}, 'image/jpeg', 20000, {PHOTO_SIZE[0]},
        {PHOTO_SIZE[1]}, s.created_at, s.id, NULL
    FROM signalements_signalement AS s
    WHERE s.id BETWEEN {low:d} AND {high:d} AND s.id % 20 = {WITH_PHOTO}
    """


def create_pool(cursor, dialect: Dialect) -> None:
    points, memberships = point_pool()
    number = "numeric(9, 6)" if dialect.pg else "REAL"
    for table in ("bench_scale_points", "bench_scale_point_areas"):
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute(
        f"CREATE TEMPORARY TABLE bench_scale_points "
        f"(idx integer PRIMARY KEY, latitude {number}, longitude {number})"
    )
    cursor.execute("CREATE TEMPORARY TABLE bench_scale_point_areas (idx integer, area_id bigint)")
    cursor.executemany("INSERT INTO bench_scale_points VALUES (%s, %s, %s)", points)
    cursor.executemany("INSERT INTO bench_scale_point_areas VALUES (%s, %s)", memberships)
    cursor.execute("CREATE INDEX bench_scale_point_areas_idx ON bench_scale_point_areas (idx)")


# The tables that `grow` fills: their secondary indexes are dropped during a large
# load and made again after it (one sort each, instead of a million random inserts).
GROWN_TABLES = (
    "signalements_signalement",
    "signalements_historicalsignalement",
    "signalements_signalement_areas",
    "signalements_attachment",
)
# Below this many new reports the indexes stay.
REINDEX_FROM = 50_000


def secondary_indexes(cursor, dialect: Dialect) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the indexes of GROWN_TABLES that no constraint
    (primary key, unique) stands on."""
    if dialect.pg:
        cursor.execute(
            """SELECT i.relname, pg_get_indexdef(i.oid)
            FROM pg_index AS x
            JOIN pg_class AS i ON i.oid = x.indexrelid
            JOIN pg_class AS t ON t.oid = x.indrelid
            WHERE t.relname = ANY(%s)
            AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = x.indexrelid)""",
            [list(GROWN_TABLES)],
        )
    else:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join(['%s'] * len(GROWN_TABLES))})",
            list(GROWN_TABLES),
        )
    return [
        (name, statement)
        for name, statement in cursor.fetchall()
        if "UNIQUE" not in statement.upper()
    ]


def grow(target: int) -> dict:
    """Reports up to id `target`; returns how many were added and how long it took."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from signalements import rollup
    from signalements.models import Category

    started = time.monotonic()
    dialect = Dialect(connection.vendor)
    ids = {
        code: (pk, department)
        for code, pk, department in Category.objects.values_list("code", "pk", "department_id")
    }
    context = {
        "categories": [(*ids[code], share) for code, share in CATEGORY_SHARES.items()],
        "agent": get_user_model().objects.get(username=AGENT).pk,
    }
    now = datetime.now(UTC).timestamp()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM signalements_signalement")
        first = cursor.fetchone()[0] + 1
        if first > target:
            return {"added": 0, "reindexed": 0, "seconds": 0.0, "analyze_seconds": 0.0}
        create_pool(cursor, dialect)
        indexes = secondary_indexes(cursor, dialect) if target - first >= REINDEX_FROM else []
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
        if dialect.pg:
            cursor.execute("SET maintenance_work_mem = '256MB'")
        for low in range(first, target + 1, BATCH):
            high = min(target, low + BATCH - 1)
            with transaction.atomic():
                cursor.execute(reports_sql(dialect, low, high, now, context))
                cursor.execute(history_sql(low, high))
                cursor.execute(areas_sql(low, high))
                cursor.execute(photos_sql(low, high))
            print(
                f"    {high:,} reports ({time.monotonic() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        for _, statement in indexes:
            cursor.execute(statement)
        if indexes:
            print(
                f"    {len(indexes)} indexes made again ({time.monotonic() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        if dialect.pg:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('signalements_signalement', 'id'), %s)",
                [target],
            )
        # The rollup's triggers counted the new reports; on PostgreSQL as change rows,
        # folded in as after any bulk import.
        rollup.compact()
        loaded = time.monotonic()
        cursor.execute("VACUUM ANALYZE" if dialect.pg else "ANALYZE")
    return {
        "added": target - first + 1,
        "reindexed": len(indexes),
        "seconds": round(loaded - started, 1),
        "analyze_seconds": round(time.monotonic() - loaded, 1),
    }


# --- probe ----------------------------------------------------------------------------


def probe(deep_page: int, page_size: int, samples: int) -> dict:
    """What the measured requests need: the number of public reports, random public
    ids, the cursors of five pages from `deep_page` pages deep (nearer the end when there
    are fewer), and the last twelve months."""
    from django.db import connection

    from signalements.api.pagination import cursor_after
    from signalements.models import Signalement

    public = Signalement.objects.filter(is_public=True)
    count = public.count()
    # The report just before the page; at a smaller size, before the sixth page from the
    # end (the five pages asked are full ones).
    offset = min(deep_page * page_size, count - CURSOR_PAGES * page_size - page_size) - 1
    rng = random.Random(samples)
    with connection.cursor() as cursor:
        cursor.execute("SELECT MAX(id) FROM signalements_signalement")
        top = cursor.fetchone()[0] or 0
    ids = list(
        public.filter(pk__in=[rng.randint(1, top) for _ in range(samples * 2)]).values_list(
            "pk", flat=True
        )
    )[:samples]
    cursors = []
    if offset >= 0:
        # A few neighbouring pages: the same depth, not the same request every time.
        for shift in range(0, CURSOR_PAGES * page_size, page_size):
            found = (
                public.order_by("-created_at", "-id")
                .values_list("created_at", "pk")[offset + shift : offset + shift + 1]
                .first()
            )
            if found:
                cursors.append(cursor_after(*found))
    return {
        "public": count,
        "ids": ids,
        "deep_offset": offset + 1,
        "cursors": cursors,
        "months": last_months(),
    }


def last_months() -> list[list[str]]:
    """The last twelve complete months, most recent first, as the stats' filter takes
    them: [first instant, last instant] in local time (ISO 8601, with the offset)."""
    from django.utils import timezone

    zone = timezone.get_current_timezone()
    months, first = [], timezone.localdate().replace(day=1)
    for _ in range(12):
        end = first
        first = (first - timedelta(days=1)).replace(day=1)
        start_at = datetime(first.year, first.month, 1, tzinfo=zone)
        end_at = datetime(end.year, end.month, 1, tzinfo=zone) - timedelta(microseconds=1)
        months.append([start_at.isoformat(), end_at.isoformat()])
    return months


# --- import files ---------------------------------------------------------------------

IMPORT_FIELDS = [
    "external_id",
    "description",
    "date",
    "category",
    "latitude",
    "longitude",
    "address",
]
IMPORT_CATEGORIES = [
    "voirie",
    "proprete",
    "espaces-verts",
    "signalisation",
    "reseau-electrique",
    "eau-assainissement",
]


def import_rows(count: int, prefix: str):
    """`count` reports as another system would export them: its id, a description with
    accents, a date in the past, a category (one without required questions), a place in
    Rennes."""
    rng = random.Random(count)
    start = datetime(2016, 1, 1, tzinfo=UTC)
    span = (datetime(2025, 12, 31, tzinfo=UTC) - start).total_seconds()
    for number in range(1, count + 1):
        yield {
            "external_id": f"{prefix}-{number}",
            "description": f"{DESCRIPTIONS[number % len(DESCRIPTIONS)]} (ancien système, n° {number})",
            "date": (start + timedelta(seconds=int(rng.random() * span))).isoformat(),
            "category": IMPORT_CATEGORIES[number % len(IMPORT_CATEGORIES)],
            "latitude": f"{rng.uniform(SOUTH, NORTH):.6f}",
            "longitude": f"{rng.uniform(WEST, EAST):.6f}",
            "address": f"{rng.randint(1, 120)} rue de Brest, Rennes",
        }


def write_import_file(path: Path, count: int, file_format: str) -> dict:
    started = time.monotonic()
    with path.open("w", encoding="utf-8", newline="") as out:
        if file_format == "csv":
            writer = csv.DictWriter(out, fieldnames=IMPORT_FIELDS)
            writer.writeheader()
            writer.writerows(import_rows(count, path.stem))
        else:
            for row in import_rows(count, path.stem):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {
        "rows": count,
        "bytes": path.stat().st_size,
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    setup_parser = commands.add_parser("setup")
    setup_parser.add_argument("--media", type=Path, required=True)
    grow_parser = commands.add_parser("grow")
    grow_parser.add_argument("--to", type=int, required=True)
    probe_parser = commands.add_parser("probe")
    probe_parser.add_argument("--deep-page", type=int, default=10_000)
    probe_parser.add_argument("--page-size", type=int, default=20)
    probe_parser.add_argument("--samples", type=int, default=300)
    file_parser = commands.add_parser("import-file")
    file_parser.add_argument("path", type=Path)
    file_parser.add_argument("--rows", type=int, required=True)
    file_parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    options = parser.parse_args(argv)
    if options.command == "import-file":
        result = write_import_file(options.path, options.rows, options.format)
    else:
        setup_django()
        if options.command == "setup":
            result = setup(options.media)
        elif options.command == "grow":
            result = grow(options.to)
        else:
            result = probe(options.deep_page, options.page_size, options.samples)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
