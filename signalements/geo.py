"""Distances on the WGS84 sphere, in plain SQL arithmetic (no PostGIS, same on SQLite
and PostgreSQL): a bounding box that the (latitude, longitude) index serves, then an
equirectangular distance, exact to well under 1% at the radii used here (≤ 50 km)."""

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.db.models import ExpressionWrapper, F, FloatField, QuerySet, Value
from django.db.models.functions import Cast

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def bounding_box(latitude, longitude, radius_m: float) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """The box around the circle, `(min_lat, min_lon, max_lat, max_lon)`, at the columns'
    6 decimals, rounded outwards and kept within the earth's ranges (a circle across the
    antimeridian is cut there, as the list's `near` filter cuts it)."""
    lat, lon = float(latitude), float(longitude)
    dlat = radius_m / METRES_PER_DEGREE
    cos_lat = max(math.cos(math.radians(lat)), 1e-6)
    dlon = min(180.0, dlat / cos_lat)
    return (
        _bound(max(-90.0, lat - dlat), ROUND_FLOOR),
        _bound(max(-180.0, lon - dlon), ROUND_FLOOR),
        _bound(min(90.0, lat + dlat), ROUND_CEILING),
        _bound(min(180.0, lon + dlon), ROUND_CEILING),
    )


def within_radius(queryset: QuerySet, latitude, longitude, radius_m: float) -> QuerySet:
    """Reports within `radius_m` metres of the point, annotated with `distance_sq`
    (squared metres, for ordering nearest first)."""
    lat, lon = float(latitude), float(longitude)
    cos_lat = max(math.cos(math.radians(lat)), 1e-6)
    min_lat, min_lon, max_lat, max_lon = bounding_box(lat, lon, radius_m)
    queryset = queryset.filter(
        latitude__gte=min_lat,
        latitude__lte=max_lat,
        longitude__gte=min_lon,
        longitude__lte=max_lon,
    )
    north = (Cast(F("latitude"), FloatField()) - Value(lat)) * Value(METRES_PER_DEGREE)
    east = (Cast(F("longitude"), FloatField()) - Value(lon)) * Value(METRES_PER_DEGREE * cos_lat)
    distance_sq = ExpressionWrapper(north * north + east * east, output_field=FloatField())
    return queryset.annotate(distance_sq=distance_sq).filter(distance_sq__lte=radius_m**2)


def _bound(value: float, rounding: str) -> Decimal:
    """A box edge at the columns' 6 decimals, rounded outwards (never loses a point)."""
    return Decimal(value).quantize(Decimal("0.000001"), rounding=rounding)
