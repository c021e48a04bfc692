"""The lean read path of the report list and detail: what a cache miss costs.

DRF's way builds a model instance per report, a serializer per request (its fields
deep-copied), walks the fields through generic code and encodes with `json`. Here the
reports the caller may see (chosen, filtered, ordered and paginated as before, by the
viewset) are read as plain rows by one SQL statement prepared once per process, their
photos by a second, turned into the API's dictionaries by converters chosen once per
column, and encoded by orjson. The output is DRF's, byte for byte: the same keys in the
same order, the same values (ISO 8601 in the current time zone with `Z` for UTC, a local
offset with seconds given in UTC, decimals quantized then written as numbers, private
fields only for staff and the reporter, an original a caller may not see as null), the
same encoding (compact, UTF-8, U+2028/U+2029 escaped). `tests/test_reading.py` compares
the two over varied reports, roles, time zones and both databases.

Only JSON and GeoJSON without parameters in the accepted media type are rendered here; a
number that orjson writes differently from Python's `json` (an exponent: below 1e-4 or
from 1e16 on), or one it cannot write (an integer beyond 64 bits), sends the response
back to DRF's renderer.
"""

import json
import uuid
from datetime import datetime, timedelta
from decimal import Context, Decimal

import orjson
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models.expressions import Col
from django.utils import timezone

from signalements import photo_access, reporter_tokens
from signalements.models import REFERENCE_PREFIX, Attachment, Signalement, with_writable_offset

from .pagination import Rows, plan_rows
from .renderers import to_feature_collection

# DecimalField(max_digits=9, decimal_places=6), as Django converts it on SQLite (its
# converter) and as DRF quantizes it for output.
_CREATE_DECIMAL = Context(prec=15).create_decimal_from_float
_QUANTUM = Decimal(1).scaleb(-6)
_COORDINATE_CONTEXT = Context(prec=9)
# Numbers that orjson and `json` write alike.
_SAFE_FLOAT_MIN, _SAFE_FLOAT_MAX = 1e-4, 1e16
_SAFE_INT_MAX = 2**63 - 1


def _table(model) -> str:
    return model._meta.db_table


def _column(model, name: str) -> str:
    return model._meta.get_field(name).column


class Statements:
    """The SQL of the lean path for one database connection, written once."""

    def __init__(self, connection):
        quote = connection.ops.quote_name
        self.sqlite = connection.vendor == "sqlite"
        report = quote(_table(Signalement))
        category = quote(_table(Signalement._meta.get_field("category").related_model))
        user = quote(_table(Signalement._meta.get_field("assigned_to").related_model))
        # The reports' table keeps its name (no alias), so that a WHERE clause compiled
        # by Django from the viewset's queryset applies as it is.
        self.s = lambda name: f"{report}.{quote(_column(Signalement, name))}"  # noqa: E731
        s, when = self.s, self.datetime
        columns = [
            s("id"),
            s("uuid"),
            s("title"),
            s("description"),
            when(s("date")),
            "c." + quote("code"),
            s("status"),
            s("priority"),
            s("latitude"),
            s("longitude"),
            s("address"),
            s("media_url"),
            s("extra"),
            s("contact_name"),
            s("contact_email"),
            s("contact_phone"),
            "u." + quote("username"),
            s("duplicate_of"),
            "d." + quote(_column(Signalement, "is_public")),
            "d." + quote(_column(Signalement, "reporter")),
            s("is_public"),
            when(s("created_at")),
            when(s("updated_at")),
            when(s("resolved_at")),
            s("reporter"),
            s("version"),
            "dep." + quote("code"),
            when(s("due_at")),
            s("keep_routing"),
        ]
        department = quote(_table(Signalement._meta.get_field("department").related_model))
        # Where a row says whether its report is public (its photos' URLs depend on it).
        self.is_public_index = columns.index(s("is_public"))
        self.columns = ", ".join(columns)
        self.joins = (
            f"LEFT JOIN {category} c ON c.{quote('id')} = {s('category')} "
            f"LEFT JOIN {user} u ON u.{quote('id')} = {s('assigned_to')} "
            f"LEFT JOIN {report} d ON d.{quote('id')} = {s('duplicate_of')} "
            f"LEFT JOIN {department} dep ON dep.{quote('id')} = {s('department')} "
        )
        self.select = f"SELECT {self.columns} FROM {report} {self.joins}"
        self.reports = f"{self.select}WHERE {s('id')} IN "
        a = lambda name: quote(_column(Attachment, name))  # noqa: E731
        photo_columns = [a(name) for name in ("signalement", "id", "file", "thumbnail")]
        photo_columns += [a(name) for name in ("content_type", "size", "width", "height")]
        photo_columns.append(when(a("created_at")))
        self.photos = (
            f"SELECT {', '.join(photo_columns)} FROM {quote(_table(Attachment))} "
            f"WHERE {a('signalement')} IN "
        )
        self.photos_order = f" ORDER BY {a('signalement')}, {a('created_at')}, {a('id')}"
        # The page's areas in one query (a subquery per row would run for every row
        # the database reads before the page's OFFSET).
        through = Signalement._meta.get_field("areas").remote_field.through
        area = quote(_table(Signalement._meta.get_field("areas").related_model))
        self.areas = (
            f"SELECT ra.{quote('signalement_id')}, ar.{quote('code')} "
            f"FROM {quote(_table(through))} ra "
            f"JOIN {area} ar ON ar.{quote('id')} = ra.{quote('area_id')} "
            f"WHERE ra.{quote('signalement_id')} IN "
        )
        self.table = report

    def datetime(self, column: str) -> str:
        # SQLite: the stored text, parsed faster here than by Django's column converter.
        return f"CAST({column} AS TEXT)" if self.sqlite else column

    @staticmethod
    def placeholders(count: int) -> str:
        return f"({', '.join(['%s'] * count)})"


_statements: dict[str, Statements] = {}


def statements(connection) -> Statements:
    found = _statements.get(connection.alias)
    if found is None:
        found = _statements[connection.alias] = Statements(connection)
    return found


# The local offset of each UTC hour, by time zone: (as StorableDateTimeField writes it,
# as DateTimeField does), each an (offset to add, text to append) pair; None when the
# offset changes within the hour or the hour cannot be converted.
_HOURS_MAX = 50_000
_hours: dict[tuple, tuple | None] = {}


def _local_hour(zone, hour: str):
    """The offsets of the UTC hour `hour` ("YYYY-MM-DD HH", as SQLite stores it) in
    `zone`, looked up once per process: a report's dates are written by adding the
    offset to the stored UTC text, instead of converting each of them."""
    key = (zone, hour)
    found = _hours.get(key, False)
    if found is not False:
        return found
    try:
        start = datetime.fromisoformat(f"{hour}:00:00+00:00")
        first = start.astimezone(zone)
        last = (start + timedelta(hours=1, microseconds=-1)).astimezone(zone)
    except (ValueError, OverflowError):
        found = None
    else:
        offset = first.utcoffset()
        if offset != last.utcoffset() or start.year in (1, 9999):
            found = None
        else:
            text = first.isoformat()[19:]  # e.g. "+02:00", "+00:09:21"
            plain = (offset, "Z" if text == "+00:00" else text)
            # StorableDateTimeField: a local offset with seconds is written in UTC.
            storable = (timedelta(0), "Z") if offset.seconds % 60 else plain
            found = (storable, plain)
    if len(_hours) >= _HOURS_MAX:
        _hours.clear()
    _hours[key] = found
    return found


class Converters:
    """Raw database values to the API's output, for one connection's database."""

    def __init__(self, connection):
        self.sqlite = connection.vendor == "sqlite"
        self.zone = timezone.get_current_timezone()
        # Whether every number converted so far is one orjson writes as `json` does.
        self.exact_with_orjson = True

    def datetime(self, value, *, storable: bool = True) -> str | None:
        """DRF's DateTimeField output (StorableDateTimeField's when `storable`)."""
        if value is None:
            return None
        if self.sqlite:  # the stored text, UTC: "YYYY-MM-DD HH:MM:SS[.ffffff]"
            hour = _local_hour(self.zone, value[:13]) if len(value) in (19, 26) else None
            if hour is not None:
                offset, suffix = hour[0] if storable else hour[1]
                return (datetime.fromisoformat(value) + offset).isoformat() + suffix
            value = datetime.fromisoformat(value + "+00:00")
        value = value.astimezone(self.zone)
        if storable and value.utcoffset().seconds % 60:
            value = with_writable_offset(value)  # a local offset with seconds: in UTC
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def year(self, value) -> int:
        """The local year (a report's reference): that of DateTimeField's output."""
        return int(self.datetime(value, storable=False)[:4])

    def uuid(self, value) -> str:
        if isinstance(value, str) and len(value) == 32:  # SQLite: Django stores the hex
            value = value.lower()
            return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
        return str(uuid.UUID(str(value)))

    def coordinate(self, value) -> float | None:
        if value is None:
            return None
        decimal = _CREATE_DECIMAL(value) if self.sqlite else value
        number = float(decimal.quantize(_QUANTUM, context=_COORDINATE_CONTEXT))
        if number and not _SAFE_FLOAT_MIN <= abs(number) < _SAFE_FLOAT_MAX:
            self.exact_with_orjson = False
        return number

    def extra(self, value) -> dict:
        if value == "{}" or value == {}:
            return {}
        answers = json.loads(value) if isinstance(value, str | bytes) else value
        answers = {str(key): answer for key, answer in answers.items()}
        if self.exact_with_orjson and not writes_alike(answers):
            self.exact_with_orjson = False
        return answers


class Reports(list):
    """Reports as the API shows them; `exact_with_orjson`: every number in them is one
    that orjson writes as Python's `json` does; `versions`: their versions, by id (for
    the detail's ETag)."""

    exact_with_orjson = True

    def __init__(self, *args):
        super().__init__(*args)
        self.versions: dict[int, int] = {}


def read_reports(
    ids: list[int], request, *, scope, agent: bool, photos: bool = True, areas=None
) -> Reports:
    """The reports with these ids, in this order, among `scope` (the viewset's
    `get_queryset()`: who may see what is decided there alone), as the API shows them to
    the caller of `request` (`agent`: staff's representation). `photos=False`: reports
    known to have none (just created), whose photos are not looked for; `areas`: their
    area codes by id when known (just routed), not looked for either."""
    if not ids:
        return Reports()
    connection = connections[scope.db]
    sql = statements(connection)
    where, params = scope_of(scope)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{sql.reports}{sql.placeholders(len(ids))}{' AND ' + where if where else ''}",
            [*ids, *params],
        )
        rows = {row[0]: row for row in cursor.fetchall()}
    rows = [rows[pk] for pk in ids if pk in rows]
    return represent(rows, request, agent=agent, using=scope.db, photos=photos, areas=areas)


def scope_of(queryset) -> tuple[str, list]:
    """The WHERE clause of a queryset that only filters the reports' own table, compiled
    alone (a fraction of compiling the whole query), and its parameters."""
    query = queryset.query
    if not query.where:
        return "", []
    if not _filters_own_table_only(query):
        raise ValueError("The scope filters on another table than the reports'.")
    try:
        sql, params = query.get_compiler(using=queryset.db).compile(query.where)
    except EmptyResultSet:  # e.g. a filter on codes that name nothing
        return "1 = 0", []
    return f"({sql})", list(params)


def represent(
    rows: list[tuple],
    request,
    *,
    agent: bool,
    using: str = "default",
    photos: bool = True,
    areas: dict[int, list[str]] | None = None,
) -> Reports:
    """Rows of `Statements.select`, in order, as the API shows them to the caller of
    `request` (private fields for staff and the report's reporter; an original the
    caller may not see as null); their photos read in one query."""
    reports = Reports()
    if not rows:
        return reports
    connection = connections[using]
    sql = statements(connection)
    ids = [row[0] for row in rows]
    photo_rows = []
    with connection.cursor() as cursor:
        if photos:
            cursor.execute(sql.photos + sql.placeholders(len(ids)) + sql.photos_order, ids)
            photo_rows = cursor.fetchall()
        areas_of: dict[int, list[str]] = {}
        if areas is not None:
            areas_of = areas
        else:
            cursor.execute(sql.areas + sql.placeholders(len(ids)), ids)
            for report_id, code in cursor.fetchall():
                areas_of.setdefault(report_id, []).append(code)
    convert = Converters(connection)
    # A hidden report's photos on signed URLs (`photo_access.py`): this answer goes only
    # to those who may see it (`scope`).
    if photo_rows:
        links = photo_access.Links(request.build_absolute_uri)
        public_at = sql.is_public_index
        hidden = {row[0] for row in rows if not row[public_at]}
    photos_of: dict[int, list[dict]] = {}
    for report_id, pk, file, thumbnail, content_type, size, width, height, created in photo_rows:
        public = report_id not in hidden
        photos_of.setdefault(report_id, []).append(
            {
                "id": pk,
                "url": links.url(file, public=public),
                "thumbnail_url": links.url(thumbnail, public=public),
                "content_type": content_type,
                "size": size,
                "width": width,
                "height": height,
                "created_at": convert.datetime(created, storable=False),
            }
        )
    user = request.user
    user_id = user.pk if user.is_authenticated else None
    token_report = reporter_tokens.signalement_id(request)
    for row in rows:
        (
            pk,
            uuid_value,
            title,
            description,
            date,
            category,
            status,
            priority,
            latitude,
            longitude,
            address,
            media_url,
            extra,
            contact_name,
            contact_email,
            contact_phone,
            assigned_to,
            duplicate_of,
            original_is_public,
            original_reporter,
            is_public,
            created_at,
            updated_at,
            resolved_at,
            reporter,
            version,
            department,
            due_at,
            keep_routing,
        ) = row
        own = (user_id is not None and reporter == user_id) or token_report == pk
        extra = convert.extra(extra)
        report = {
            "id": pk,
            "uuid": convert.uuid(uuid_value),
            "reference": f"{REFERENCE_PREFIX}-{convert.year(created_at)}-{pk:06d}",
            "title": title,
            "description": description,
            "date": convert.datetime(date),
            "category": category,
            "status": status,
            "priority": priority,
            "latitude": convert.coordinate(latitude),
            "longitude": convert.coordinate(longitude),
            "address": address,
            "media_url": media_url,
            "extra": extra,
            "attachments": photos_of.get(pk, []),
        }
        if agent or own:
            report["contact_name"] = contact_name
            report["contact_email"] = contact_email
            report["contact_phone"] = contact_phone
        if agent:
            report["assigned_to"] = assigned_to
        report["department"] = department
        report["areas"] = sorted(areas_of.get(pk, ()))
        report["due_at"] = convert.datetime(due_at)
        if agent:
            report["keep_routing"] = bool(keep_routing)
        elif duplicate_of is not None and not (
            original_is_public or (user_id is not None and original_reporter == user_id)
        ):
            duplicate_of = None  # a report the caller may not see does not exist
        report["duplicate_of"] = duplicate_of
        report["is_public"] = bool(is_public)
        report["created_at"] = convert.datetime(created_at)
        report["updated_at"] = convert.datetime(updated_at)
        report["resolved_at"] = convert.datetime(resolved_at)
        reports.append(report)
        reports.versions[pk] = version
    reports.exact_with_orjson = convert.exact_with_orjson
    return reports


COUNTS_MAX = 1000  # scopes counted per version (one per reporter at most)
# The reports' own columns a page can be ordered by here (the ordering filter's plain
# fields; `due_at` and `priority` order by expressions).
ORDER_COLUMNS = {"created_at", "updated_at", "date", "status", "id"}


class NewestVisibleRows(Rows):
    """The reports of a queryset scoped by `SignalementViewSet.get_queryset` (only
    filtered there: no join), in the list's default order or by its own columns, for
    Django's paginator: the count (under the count policy of `pagination.Rows`) and the
    page's slice (rows of `Statements.select`, for `represent`) run SQL written here
    around the queryset's own WHERE clause, compiled alone, instead of compiling the
    ORM's queries."""

    ordered = True

    def __init__(self, queryset, *, counts: dict | None = None, **policy):
        super().__init__(**policy)
        self.counts = counts
        self.connection = connections[queryset.db]
        sql = statements(self.connection)
        where, self.params = scope_of(queryset)
        where = f" WHERE {where}" if where else ""
        order = ", ".join(
            f"{sql.s(name.lstrip('-'))}{' DESC' if name.startswith('-') else ''}"
            for name in queryset.query.order_by or Signalement._meta.ordering
        )
        self.count_sql = f"SELECT COUNT(*) FROM {sql.table}{where}"
        # SQLite keeps no histogram (no STAT4): unordered, it counts `status = 'new'` in
        # a box through the index of places and the table (124 ms at 300,000 reports);
        # in the page's order, through the index the page uses, which covers the filters
        # (0.4 ms).
        ordered = f" ORDER BY {order}" if sql.sqlite else ""
        self.bounded_count_sql = (
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {sql.table}{where}{ordered} LIMIT %s) s"
        )
        self.estimate_sql = f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {sql.table}{where}"
        # The page is chosen among the reports' ids alone (the index of the order, then
        # the LIMIT: an index that covers the filters and the order answers it without
        # reading the table, however deep the OFFSET), and its reports are read and
        # joined to their category, assignee, original and department after: joining
        # first would join every report the page skips (PostgreSQL hashes the whole
        # table for each join before sorting).
        pk = sql.s("id")
        page = f"SELECT {pk} FROM {sql.table}{where} ORDER BY {order} LIMIT %s OFFSET %s"
        self.page_sql = (
            f"SELECT {sql.columns} FROM ({page}) page JOIN {sql.table} "
            f"ON {pk} = page.{self.connection.ops.quote_name('id')} {sql.joins}ORDER BY {order}"
        )

    @staticmethod
    def applies_to(queryset) -> bool:
        """Whether the queryset only filters the reports' own table, in the default
        order or by its own columns: what the SQL here can take its WHERE clause from."""
        query = queryset.query
        return (
            _filters_own_table_only(query)
            and all(
                isinstance(name, str) and name.lstrip("-") in ORDER_COLUMNS
                for name in query.order_by
            )
            and not query.distinct
            and not query.annotations
            and query.low_mark == 0
            and query.high_mark is None
        )

    def count(self) -> int:
        """The number of reports, under the count policy. Kept in `counts` when given:
        the response cache's counts under the data version it read before the request
        reached Django (a count made after reading the version holds every write before
        it; nothing is written while the version stays the same; the cache empties them
        when it grows), so that paging through a list does not count it again."""
        if self.counts is None:
            return super().count()
        key = (self.connection.alias, self.count_sql, tuple(self.params), self.exact)
        found = self.counts.get(key)
        if found is None:
            found = self.counts[key] = (super().count(), self.count_is_exact)
            if len(self.counts) > COUNTS_MAX:
                self.counts.clear()
        count, self.count_is_exact = found
        return count

    def count_exactly(self) -> int:
        return self._one(self.count_sql, self.params)

    def count_at_most(self, limit: int) -> int:
        return self._one(self.bounded_count_sql, [*self.params, limit])

    def estimate(self) -> int | None:
        if self.connection.vendor != "postgresql":
            return None
        explained = self._one(self.estimate_sql, self.params)
        return plan_rows(explained)

    def _one(self, sql: str, params: list):
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def __getitem__(self, page: slice) -> list[tuple]:
        start, stop = page.start or 0, page.stop
        with self.connection.cursor() as cursor:
            cursor.execute(self.page_sql, [*self.params, stop - start, start])
            return cursor.fetchall()


def _filters_own_table_only(query) -> bool:
    """Whether a query's WHERE clause refers to the reports' table alone (no join)."""
    table = Signalement._meta.db_table
    return all(getattr(column, "alias", table) == table for column in _columns(query.where))


def _columns(node):
    """Every column (`Col`) an expression tree refers to."""
    if isinstance(node, Col):
        yield node
        return
    children = getattr(node, "children", None)
    if children is None:
        children = node.get_source_expressions() if hasattr(node, "get_source_expressions") else ()
    for child in children:
        if child is not None and not isinstance(child, str | int | bool | tuple):
            yield from _columns(child)


def render(data, reports: Reports, *, geojson: bool = False) -> bytes | None:
    """`data` (`reports`, or a page of them) encoded as DRF's JSON (or GeoJSON) renderer
    would, or None when only that renderer can be exact (see the module's
    documentation)."""
    if not reports.exact_with_orjson:
        return None
    if geojson:
        data = to_feature_collection(data)
        if data is None:
            return None
    try:
        content = orjson.dumps(data)
    except TypeError:
        return None
    return content.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")


def writes_alike(value) -> bool:
    """Whether orjson writes every number in `value` as Python's `json` does."""
    if isinstance(value, float):
        magnitude = abs(value)
        return magnitude == 0 or _SAFE_FLOAT_MIN <= magnitude < _SAFE_FLOAT_MAX
    if isinstance(value, int):
        return -_SAFE_INT_MAX <= value <= _SAFE_INT_MAX
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, dict):
        return all(writes_alike(item) for item in value.values())
    if isinstance(value, list):
        return all(writes_alike(item) for item in value)
    return False
