"""Areas on the map (`models.Area`): their GeoJSON geometry checked, its bounds, the
areas that contain a point, the import of a GeoJSON file, and the reports' areas
recomputed when areas change. The database prefilters by bounding box (indexed
columns); shapely decides, so SQLite and PostgreSQL agree (no PostGIS).

A point on an area's boundary is in the area (`covers`, not `contains`): a report on the
line between two districts belongs to both, rather than to neither. A point in a hole of
a polygon is not in it."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy
import shapely
from django.core.validators import slug_re
from django.db.models import F, Q
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django_tasks import task
from shapely.geometry import Point, shape

GEOMETRY_TYPES = ("Polygon", "MultiPolygon")

# Prepared shapes by (area id, updated_at): a shape is parsed and prepared once per
# process and version of the area.
_SHAPES_MAX = 2000
_shapes: dict[tuple, object] = {}

# Reports whose areas `reassign()` recomputes at a time.
REASSIGN_BATCH = 1000
# Beyond this many changed areas, `reassign()` looks at the reports in the box around
# them all rather than in each one's box (one condition per area: SQLite limits the depth
# of an expression to 1000).
_BOXES_MAX = 100
# The bounding boxes are widened by this much when reports are looked up in them: the
# reports' coordinates are decimals, the boxes floats; shapely decides.
_BOX_MARGIN = 1e-6


def geometry_problem(geometry) -> str | None:
    """Why `geometry` is not a valid GeoJSON Polygon or MultiPolygon in WGS84, or None."""
    if not isinstance(geometry, dict) or geometry.get("type") not in GEOMETRY_TYPES:
        return _("Give a GeoJSON geometry of type Polygon or MultiPolygon.")
    try:
        parsed = shape(geometry)
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        shapely.errors.ShapelyError,
    ):
        return _("The coordinates do not make a polygon.")
    if parsed.is_empty:
        return _("The polygon is empty.")
    west, south, east, north = parsed.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        return _("Coordinates are [longitude, latitude] in degrees (WGS84).")
    if not parsed.is_valid:
        return _("The polygon is not valid: %(reason)s.") % {
            "reason": shapely.is_valid_reason(parsed)
        }
    return None


def bounds(geometry) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a geometry; zeros for one that is not valid."""
    try:
        return tuple(shape(geometry).bounds) if geometry_problem(geometry) is None else (0, 0, 0, 0)
    except (ValueError, TypeError):
        return (0.0, 0.0, 0.0, 0.0)


def _remember_shape(key: tuple, geometry) -> object:
    found = shape(geometry)
    shapely.prepare(found)
    if len(_shapes) >= _SHAPES_MAX:
        _shapes.clear()
    _shapes[key] = found
    return found


def _prepared(area):
    """The area's prepared shape, from the cache when this version of the area was seen
    (its geometry is read, from the database if deferred, only when it was not)."""
    key = (area.pk, area.updated_at)
    found = _shapes.get(key)
    if found is None:
        found = _remember_shape(key, area.geometry)
    return found


def _prepare_all(areas: list) -> list:
    """Make sure each area's shape is cached, reading the geometries not cached yet in
    one query (the areas were loaded without their geometry: `containing()`). Returns the
    areas whose shape is known (one deleted meanwhile is left out)."""
    from .models import Area

    missing = {
        area.pk: area
        for area in areas
        if (area.pk, area.updated_at) not in _shapes and "geometry" not in area.__dict__
    }
    if missing:
        geometries = dict(Area.objects.filter(pk__in=missing).values_list("pk", "geometry"))
        for pk, area in missing.items():
            if pk in geometries and geometry_problem(geometries[pk]) is None:
                _remember_shape((pk, area.updated_at), geometries[pk])
    return [
        area
        for area in areas
        if (area.pk, area.updated_at) in _shapes or "geometry" in area.__dict__
    ]


def covers(area, latitude, longitude) -> bool:
    """Whether the area contains the point, its boundary included."""
    return _prepared(area).covers(Point(float(longitude), float(latitude)))


def containing(latitude: Decimal | float | None, longitude: Decimal | float | None) -> list:
    """The active areas that contain this point (boundary included), by kind and name.

    One query on the indexed bounding-box columns, without the geometries: those of the
    areas whose shape this process has not prepared yet (a first time, or a new version
    of the area) are read by a second query, then kept (`_shapes`)."""
    from .models import Area

    if latitude is None or longitude is None:
        return []
    lat, lon = float(latitude), float(longitude)
    candidates = list(
        Area.objects.filter(
            is_active=True,
            min_latitude__lte=lat,
            max_latitude__gte=lat,
            min_longitude__lte=lon,
            max_longitude__gte=lon,
        ).defer("geometry")
    )
    return [area for area in _prepare_all(candidates) if covers(area, lat, lon)]


class AreaIndex:
    """The active areas in a spatial index (shapely's STRtree), read once:
    `containing_many()` answers `containing()` for many points in one call and without
    a query, for the bulk import (thousands of reports a second). The areas are those of
    the index's creation."""

    def __init__(self):
        from .models import Area

        self.areas = [
            area
            for area in Area.objects.filter(is_active=True)
            if geometry_problem(area.geometry) is None
        ]
        self.tree = (
            shapely.STRtree([_prepared(area) for area in self.areas]) if self.areas else None
        )

    def containing_many(self, points: list[tuple]) -> list[list]:
        """For each (latitude, longitude), the active areas that contain it (boundary
        included), by kind and name; none for a point without coordinates."""
        found: list[list[int]] = [[] for _ in points]
        located = [i for i, (lat, lon) in enumerate(points) if lat is not None and lon is not None]
        if self.tree is None or not located:
            return [[] for _ in points]
        lats = numpy.array([float(points[i][0]) for i in located])
        lons = numpy.array([float(points[i][1]) for i in located])
        hits, indexes = self.tree.query(shapely.points(lons, lats), predicate="covered_by")
        areas = self.areas
        for hit, index in zip(hits.tolist(), indexes.tolist(), strict=True):
            area, lat, lon = areas[index], lats[hit], lons[hit]
            # The bounding box too, as `containing()` asks the database.
            if (
                area.min_latitude <= lat <= area.max_latitude
                and area.min_longitude <= lon <= area.max_longitude
            ):
                found[located[hit]].append(index)
        return [[areas[index] for index in sorted(indexes)] if indexes else [] for indexes in found]


# Recomputing the reports' areas ---------------------------------------------------------


def _in_boxes(areas: list) -> Q | None:
    """Reports located in the bounding box of one of `areas` (None: no area)."""
    if not areas:
        return None
    if len(areas) > _BOXES_MAX:
        boxes = [
            (
                min(area.min_latitude for area in areas),
                max(area.max_latitude for area in areas),
                min(area.min_longitude for area in areas),
                max(area.max_longitude for area in areas),
            )
        ]
    else:
        boxes = [
            (area.min_latitude, area.max_latitude, area.min_longitude, area.max_longitude)
            for area in areas
        ]
    where = Q()
    for south, north, west, east in boxes:
        where |= Q(
            latitude__gte=Decimal(south - _BOX_MARGIN).quantize(Decimal("0.000001")),
            latitude__lte=Decimal(north + _BOX_MARGIN).quantize(Decimal("0.000001")),
            longitude__gte=Decimal(west - _BOX_MARGIN).quantize(Decimal("0.000001")),
            longitude__lte=Decimal(east + _BOX_MARGIN).quantize(Decimal("0.000001")),
        )
    return where


def reassign(areas: Iterable, *, batch_size: int = REASSIGN_BATCH) -> int:
    """Recompute, for these areas (just created, reshaped, deactivated…), which reports
    lie in them: the reports in their bounding boxes, and those linked to them so far.
    Returns how many reports' areas changed.

    Only the links to these areas change (the others did not move); the reports'
    department, priority and history are left as they are: routing happens when a report
    is filed or moved, not when a map is redrawn. The changed reports' version (their
    ETag) moves on, since their `areas` did. Batches of `batch_size` reports, by id."""
    from .models import Signalement

    areas = list(areas)
    if not areas:
        return 0
    area_ids = [area.pk for area in areas]
    live = [area for area in areas if area.is_active and geometry_problem(area.geometry) is None]
    links = Signalement.areas.through
    where = Q(pk__in=links.objects.filter(area_id__in=area_ids).values("signalement_id"))
    boxes = _in_boxes(live)
    if boxes is not None:
        where |= boxes
    candidates = Signalement.objects.filter(where).order_by("pk")
    changed = 0
    last = 0
    while True:
        batch = list(
            candidates.filter(pk__gt=last).values_list("pk", "latitude", "longitude")[:batch_size]
        )
        if not batch:
            return changed
        last = batch[-1][0]
        now_in = defaultdict(set)
        for report_id, area_id in links.objects.filter(
            signalement_id__in=[row[0] for row in batch], area_id__in=area_ids
        ).values_list("signalement_id", "area_id"):
            now_in[report_id].add(area_id)
        to_add, to_remove = [], defaultdict(list)
        moved = set()
        for report_id, latitude, longitude in batch:
            wanted = set()
            if latitude is not None and longitude is not None:
                lat, lon = float(latitude), float(longitude)
                wanted = {
                    area.pk
                    for area in live
                    if area.min_latitude <= lat <= area.max_latitude
                    and area.min_longitude <= lon <= area.max_longitude
                    and covers(area, lat, lon)
                }
            had = now_in[report_id]
            for area_id in wanted - had:
                to_add.append(links(signalement_id=report_id, area_id=area_id))
            for area_id in had - wanted:
                to_remove[area_id].append(report_id)
            if wanted != had:
                moved.add(report_id)
        for area_id, report_ids in to_remove.items():
            links.objects.filter(area_id=area_id, signalement_id__in=report_ids).delete()
        if to_add:
            links.objects.bulk_create(to_add, ignore_conflicts=True)
        if moved:
            # An update that changes nothing but fires the trigger moving the version on.
            Signalement.objects.filter(pk__in=moved).update(version=F("version"))
        changed += len(moved)


@task()
def reassign_later(area_ids: list[int]) -> int:
    """`reassign()` in the background, for areas changed in the admin or the API."""
    from .models import Area

    return reassign(Area.objects.filter(pk__in=area_ids))


# Importing a GeoJSON file ----------------------------------------------------------------


class NotGeoJSON(ValueError):
    """The file is not a GeoJSON FeatureCollection or Feature."""


@dataclass
class Problem:
    """A feature left out of an import: its index in the file's features, and why."""

    index: int
    reason: str


@dataclass
class ImportResult:
    created: list = field(default_factory=list)
    updated: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    deactivated: list = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Whether `deactivate_missing` was left undone because some features were bad.
    deactivation_skipped: bool = False

    @property
    def changed(self) -> list:
        """The areas whose reports may have changed."""
        return [*self.created, *self.updated, *self.deactivated]


def features_of(data) -> list:
    """The features of a parsed GeoJSON FeatureCollection, or a single Feature."""
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features")
        if isinstance(features, list):
            return features
        raise NotGeoJSON(_("The FeatureCollection has no list of features."))
    if isinstance(data, dict) and data.get("type") == "Feature":
        return [data]
    raise NotGeoJSON(_("Give a GeoJSON FeatureCollection or Feature."))


def _text(value) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return str(value).strip()


def _read_feature(feature, code_property: str, name_property: str):
    """(code, name, geometry) of a feature, or a Problem's reason (str)."""
    from .models import Area

    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return _("not a GeoJSON Feature")
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        return _("its properties are not an object")
    name = _text(properties.get(name_property))
    code = _text(properties.get(code_property)) or slugify(name)
    if not code:
        return _("no code (property “%(code)s”) and no name (property “%(name)s”)") % {
            "code": code_property,
            "name": name_property,
        }
    max_code = Area._meta.get_field("code").max_length
    if not slug_re.match(code) or len(code) > max_code:
        return _("the code “%(code)s” is not made of at most %(max)d letters, digits, - and _") % {
            "code": code,
            "max": max_code,
        }
    name = name or code
    max_name = Area._meta.get_field("name").max_length
    if len(name) > max_name:
        return _("the name is longer than %(max)d characters") % {"max": max_name}
    geometry = feature.get("geometry")
    problem = geometry_problem(geometry)
    if problem:
        return problem
    return code, name, {"type": geometry["type"], "coordinates": geometry["coordinates"]}


def import_features(
    features: list,
    *,
    kind: str,
    code_property: str = "code",
    name_property: str = "name",
    deactivate_missing: bool = False,
    reason: str = "",
) -> ImportResult:
    """Create or update an area of this kind for each feature, by code (the property
    `code_property`, else its name slugified): its name, its geometry, and active. A bad
    feature is left out and listed, with its index and why (a geometry that is not a valid
    Polygon or MultiPolygon, a code already used in the file or by an area of another
    kind…); the others are imported. Importing the same file again changes nothing.

    With `deactivate_missing`, the active areas of this kind that the file does not name
    are made inactive: unless a feature was bad (it may have been one of them).

    Each change is saved through the model (history, with `reason`), in the caller's
    transaction. The reports' areas are not recomputed here: see `reassign()`."""
    from .models import Area

    result = ImportResult()
    read = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        outcome = _read_feature(feature, code_property, name_property)
        if isinstance(outcome, str):
            result.problems.append(Problem(index, outcome))
            continue
        code = outcome[0]
        if code in seen:
            result.problems.append(
                Problem(
                    index,
                    _("the code “%(code)s” is also that of feature %(index)d")
                    % {"code": code, "index": seen[code]},
                )
            )
            continue
        seen[code] = index
        read.append((index, *outcome))
    existing = {area.code: area for area in Area.objects.filter(code__in=seen)}
    for index, code, name, geometry in read:
        area = existing.get(code)
        if area is None:
            area = Area(code=code, name=name, kind=kind, geometry=geometry)
            _save(area, reason)
            result.created.append(area)
        elif area.kind != kind:
            result.problems.append(
                Problem(
                    index,
                    _("the code “%(code)s” is that of an area of another kind (%(kind)s)")
                    % {"code": code, "kind": area.kind},
                )
            )
        elif area.name == name and area.geometry == geometry and area.is_active:
            result.unchanged.append(area)
        else:
            area.name, area.geometry, area.is_active = name, geometry, True
            _save(area, reason)
            result.updated.append(area)
    result.problems.sort(key=lambda problem: problem.index)
    if deactivate_missing:
        if result.problems:
            result.deactivation_skipped = True
        else:
            for area in Area.objects.filter(kind=kind, is_active=True).exclude(code__in=seen):
                area.is_active = False
                _save(area, reason)
                result.deactivated.append(area)
    return result


def _save(area, reason: str) -> None:
    if reason:
        area._change_reason = reason
    area.save()
