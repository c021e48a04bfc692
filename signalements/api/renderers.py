"""GeoJSON (RFC 7946) for the report list, so that a Leaflet or MapLibre map loads it
as is: `GET /api/signalements/?format=geojson` or `Accept: application/geo+json`.

The response is the same page as the JSON list (same filters, ordering, pagination and
permission scoping, since only the rendering differs), as a FeatureCollection:

    {"type": "FeatureCollection", "count": 42, "next": "…", "previous": null,
     "features": [{"type": "Feature", "id": 7,
                   "geometry": {"type": "Point", "coordinates": [-1.68, 48.11]},
                   "properties": {"id": 7, "reference": "SIG-2025-000007", …}}]}

Choices:

- Coordinates are `[longitude, latitude]` (RFC 7946 §3.1.1), WGS84 degrees, as numbers.
- A report without a location is kept, with `"geometry": null` (a Feature may be
  unlocated, RFC 7946 §3.2): `count`, `next` and `previous` then describe the features
  exactly as they describe the JSON results, and a page never comes out shorter than its
  size. Map libraries skip such features (Leaflet's `L.geoJSON`, MapLibre sources);
  to get located reports only, filter with `in_bbox`.
- `count`, `next` and `previous` are the pagination's, kept as foreign members
  (RFC 7946 §6.1). `next`/`previous` keep `format=geojson`, so following them yields
  GeoJSON too.
- `properties` holds every other field of the report as the JSON list gives it to the
  same caller (its `id` included), without `latitude` and `longitude`.
- An error is not GeoJSON: its body is the API's usual error JSON
  (`{"type", "errors": [...]}`) served as `application/json`, whatever was asked for.
"""

from collections.abc import Mapping

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import exceptions, negotiation, renderers, serializers

from .serializers import SignalementSerializer

GEOJSON_MEDIA_TYPE = "application/geo+json"
# The report fields that make a Feature's geometry rather than its properties.
LATITUDE, LONGITUDE = "latitude", "longitude"
# Members a FeatureCollection defines itself: a page's other keys may not replace them.
RESERVED_MEMBERS = {"type", "features", "bbox", "results"}


def to_feature(report):
    """One serialized report as a GeoJSON Feature (Point, or null geometry when the
    report has no location)."""
    latitude, longitude = report.get(LATITUDE), report.get(LONGITUDE)
    geometry = None
    if latitude is not None and longitude is not None:
        geometry = {"type": "Point", "coordinates": [longitude, latitude]}
    feature = {"type": "Feature"}
    if report.get("id") is not None:
        feature["id"] = report["id"]
    feature["geometry"] = geometry
    feature["properties"] = {
        name: value for name, value in report.items() if name not in (LATITUDE, LONGITUDE)
    }
    return feature


def to_feature_collection(data):
    """A page of serialized reports (`{"count", "next", "previous", "results"}`) or a
    plain list of them as a FeatureCollection; None for anything else."""
    if isinstance(data, list):
        reports, foreign_members = data, {}
    elif isinstance(data, Mapping) and isinstance(data.get("results"), list):
        reports = data["results"]
        foreign_members = {k: v for k, v in data.items() if k not in RESERVED_MEMBERS}
    else:
        return None
    if not all(isinstance(report, Mapping) for report in reports):
        return None
    return {
        "type": "FeatureCollection",
        **foreign_members,
        "features": [to_feature(report) for report in reports],
    }


class GeoJSONRenderer(renderers.JSONRenderer):
    """Renders a list of reports (paginated or not) as an RFC 7946 FeatureCollection,
    `application/geo+json` (no charset parameter: GeoJSON is UTF-8 JSON, RFC 7946 §12).

    JSON encoding is the JSON renderer's: UTF-8, compact, no NaN, decimals as numbers,
    `; indent=N` honoured in the Accept header.

    Anything else (an error body, or data that is not a list of reports) is rendered as
    plain JSON and the response's Content-Type switched to `application/json`: an error
    keeps the API's error shape and is not mislabelled as GeoJSON."""

    media_type = GEOJSON_MEDIA_TYPE
    format = "geojson"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        renderer_context = renderer_context or {}
        response = renderer_context.get("response")
        failed = response is not None and (response.exception or response.status_code >= 400)
        collection = None if failed or data is None else to_feature_collection(data)
        if collection is None:
            if response is not None and data is not None:
                # Response.rendered_content sets Content-Type before calling render().
                response["Content-Type"] = renderers.JSONRenderer.media_type
            return super().render(data, accepted_media_type, renderer_context)
        return super().render(collection, accepted_media_type, renderer_context)


class FormatOverrideNegotiation(negotiation.DefaultContentNegotiation):
    """`?format=` names the representation outright, whatever the Accept header says.

    DRF keeps only the renderers of that format and still requires the Accept header to
    match one of them, so `?format=geojson` with `Accept: application/json` would be a
    406 — and that is exactly what MapLibre sends when a GeoJSON source is given a URL.
    Here, when the Accept header matches none of the format's renderers, the format
    wins. Everything else is DRF's: an unknown format is a 404, a matching Accept header
    (e.g. `application/geo+json; indent=2`) is used as is."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            format = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
            if not format:
                raise
            renderer = self.filter_renderers(renderers, format)[0]
            return renderer, renderer.media_type


# OpenAPI description of the FeatureCollection (drf-spectacular). These serializers
# only document the response: the renderer above builds it from the list's own data.


class GeoJSONPointSerializer(serializers.Serializer):
    """A GeoJSON Point (RFC 7946 §3.1.2)."""

    type = serializers.ChoiceField(choices=["Point"])
    coordinates = serializers.ListField(
        child=serializers.FloatField(),
        min_length=2,
        max_length=2,
        help_text="`[longitude, latitude]`, in that order (RFC 7946 §3.1.1), WGS84 degrees.",
    )


class SignalementPropertiesSerializer(SignalementSerializer):
    """A report's fields but its coordinates, which make the Feature's geometry. As in
    the JSON list, only agents get every field: others get no `assigned_to`, and the
    contact fields only on their own reports."""

    class Meta(SignalementSerializer.Meta):
        fields = [
            name for name in SignalementSerializer.Meta.fields if name not in (LATITUDE, LONGITUDE)
        ]


class SignalementFeatureSerializer(serializers.Serializer):
    """A report as a GeoJSON Feature (RFC 7946 §3.2)."""

    type = serializers.ChoiceField(choices=["Feature"])
    id = serializers.IntegerField(help_text="The report's id (also in `properties`).")
    geometry = GeoJSONPointSerializer(
        allow_null=True,
        help_text="The report's location; null when it has none (the feature is kept).",
    )
    properties = SignalementPropertiesSerializer()


@extend_schema_serializer(many=False)  # one collection per page, not a list of them
class SignalementFeatureCollectionSerializer(serializers.Serializer):
    """A page of reports as a GeoJSON FeatureCollection (RFC 7946 §3.3), with the
    pagination as foreign members (RFC 7946 §6.1). Reports without a location are
    features with a null geometry."""

    type = serializers.ChoiceField(choices=["FeatureCollection"])
    count = serializers.IntegerField(
        required=False,
        help_text="Number of reports across all pages (see the list's `count` parameter): "
        "absent from cursor pages.",
    )
    next = serializers.URLField(
        allow_null=True, help_text="The next page (in GeoJSON too), or null."
    )
    previous = serializers.URLField(
        allow_null=True, help_text="The previous page (in GeoJSON too), or null."
    )
    features = SignalementFeatureSerializer(many=True)
