"""The report list in GeoJSON (RFC 7946): `?format=geojson` or `Accept: application/geo+json`.

The same page as the JSON list (filters, pagination, permission scoping), as a
FeatureCollection of Point features in `[longitude, latitude]` order; reports without a
location are features with a null geometry; errors stay JSON.
"""

import json
from decimal import Decimal
from numbers import Real
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from signalements.models import Status

from .factories import SignalementFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("signalement-list")
GEOJSON = "application/geo+json"
PRIVATE_FIELDS = {"contact_name", "contact_email", "contact_phone"}


# A hand-written check of the RFC 7946 rules that apply to what the API produces.


def is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool)


def check_point(geometry):
    assert isinstance(geometry, dict), geometry
    assert geometry["type"] == "Point"  # §3.1.2
    assert not {"geometry", "properties"} & set(geometry)  # §7.1
    position = geometry["coordinates"]  # §3.1.1: [longitude, latitude(, altitude)]
    assert isinstance(position, list) and len(position) in (2, 3), position
    assert all(is_number(value) for value in position), position
    longitude, latitude = position[:2]
    assert -180 <= longitude <= 180 and -90 <= latitude <= 90, position


def check_feature(feature):
    assert isinstance(feature, dict), feature
    assert feature["type"] == "Feature"  # §3.2
    assert "geometry" in feature and "properties" in feature
    assert not {"coordinates", "geometries"} & set(feature)  # §7.1
    if "id" in feature:
        assert isinstance(feature["id"], str) or is_number(feature["id"])
    if feature["geometry"] is not None:
        check_point(feature["geometry"])
    assert feature["properties"] is None or isinstance(feature["properties"], dict)


def check_feature_collection(collection):
    assert isinstance(collection, dict), collection
    assert collection["type"] == "FeatureCollection"  # §3.3
    assert isinstance(collection["features"], list)
    assert not {"coordinates", "geometries", "geometry", "properties"} & set(collection)
    for feature in collection["features"]:
        check_feature(feature)


def geojson(response):
    """The body of a GeoJSON response, checked against RFC 7946."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == GEOJSON  # no charset parameter (RFC 7946 §12)

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    collection = json.loads(response.content.decode("utf-8"), parse_constant=refuse)
    check_feature_collection(collection)
    return collection


def get_geojson(client, **params):
    return geojson(client.get(LIST_URL, {**params, "format": "geojson"}))


def get_json(client, **params):
    response = client.get(LIST_URL, params)
    assert response.status_code == 200, response.content
    return response.json()


def feature_of(collection, report):
    [feature] = [f for f in collection["features"] if f["id"] == report.pk]
    return feature


@pytest.fixture
def located():
    return SignalementFactory(latitude=Decimal("48.11"), longitude=Decimal("-1.68"))


@pytest.fixture
def unlocated():
    return SignalementFactory(latitude=None, longitude=None, address="")


def test_format_parameter_gives_a_feature_collection(api_client, located, unlocated):
    collection = get_geojson(api_client)
    assert [feature["id"] for feature in collection["features"]] == [
        result["id"] for result in get_json(api_client)["results"]
    ]
    feature = feature_of(collection, located)
    assert feature["geometry"] == {"type": "Point", "coordinates": [-1.68, 48.11]}  # lon, lat
    assert feature["properties"]["id"] == located.pk
    assert feature["properties"]["reference"] == located.reference
    assert not {"latitude", "longitude"} & set(feature["properties"])


def test_a_report_without_location_is_a_feature_without_geometry(api_client, unlocated):
    feature = feature_of(get_geojson(api_client), unlocated)
    assert feature["geometry"] is None
    assert feature["properties"]["id"] == unlocated.pk
    assert not {"latitude", "longitude"} & set(feature["properties"])


def test_properties_are_the_json_fields_but_the_coordinates(agent_client, located, unlocated):
    results = get_json(agent_client)["results"]
    features = get_geojson(agent_client)["features"]
    assert len(features) == len(results) == 2
    for result, feature in zip(results, features, strict=True):
        assert feature["id"] == result["id"]
        assert feature["properties"] == {
            name: value for name, value in result.items() if name not in ("latitude", "longitude")
        }
        if result["latitude"] is None:
            assert feature["geometry"] is None
        else:
            assert feature["geometry"]["coordinates"] == [result["longitude"], result["latitude"]]


def test_the_accept_header_gives_the_same_collection(api_client, located, unlocated):
    response = api_client.get(LIST_URL, HTTP_ACCEPT=GEOJSON)
    assert geojson(response)["features"] == get_geojson(api_client)["features"]


def test_the_format_parameter_wins_over_a_json_accept_header(api_client, located):
    # MapLibre asks for a GeoJSON source's URL with `Accept: application/json`.
    response = api_client.get(LIST_URL, {"format": "geojson"}, HTTP_ACCEPT="application/json")
    assert feature_of(geojson(response), located)["geometry"]["type"] == "Point"


def test_json_stays_the_default(api_client, located):
    for accept in ["*/*", "application/json", f"application/json, {GEOJSON}"]:
        response = api_client.get(LIST_URL, HTTP_ACCEPT=accept)
        assert response["Content-Type"] == "application/json", accept
        assert "results" in response.json()


def test_compact_utf8_json(api_client):
    SignalementFactory(title="Chaussée déformée")
    content = api_client.get(LIST_URL, {"format": "geojson"}).content
    assert content.startswith(b'{"type":"FeatureCollection","count":1,')
    assert "Chaussée déformée".encode() in content  # not \u-escaped


def test_same_filtering_as_the_json_list(api_client, located, unlocated):
    resolved = SignalementFactory(status=Status.RESOLVED, latitude=None, longitude=None)
    collection = get_geojson(api_client, status="resolved")
    assert [feature["id"] for feature in collection["features"]] == [resolved.pk]
    assert collection["count"] == get_json(api_client, status="resolved")["count"] == 1
    inside = get_geojson(api_client, in_bbox="-1.7,48.1,-1.6,48.2")
    assert [feature["id"] for feature in inside["features"]] == [located.pk]


def test_same_pagination_as_the_json_list(api_client):
    SignalementFactory.create_batch(3)
    first = get_geojson(api_client, page_size=2)
    as_json = get_json(api_client, page_size=2)
    assert first["count"] == as_json["count"] == 3
    assert len(first["features"]) == 2
    assert first["previous"] is None
    # `next` keeps the format: following it gives the next page in GeoJSON.
    query = parse_qs(urlsplit(first["next"]).query)
    assert query["format"] == ["geojson"] and query["page"] == ["2"]
    second = geojson(api_client.get(first["next"]))
    assert second["count"] == 3 and second["next"] is None and second["previous"]
    ids = [feature["id"] for page in (first, second) for feature in page["features"]]
    assert ids == [result["id"] for result in get_json(api_client, page_size=3)["results"]]


def test_permission_scoping_for_anonymous_clients(api_client, located):
    hidden = SignalementFactory(is_public=False)
    collection = get_geojson(api_client)
    assert hidden.pk not in {feature["id"] for feature in collection["features"]}
    assert collection["count"] == 1
    properties = feature_of(collection, located)["properties"]
    assert not PRIVATE_FIELDS & set(properties)
    assert "assigned_to" not in properties


def test_agents_get_every_report_and_field(agent_client, located):
    hidden = SignalementFactory(is_public=False)
    collection = get_geojson(agent_client)
    assert {feature["id"] for feature in collection["features"]} == {located.pk, hidden.pk}
    properties = feature_of(collection, located)["properties"]
    assert PRIVATE_FIELDS <= set(properties)
    assert properties["contact_email"] == "camille@example.org"
    assert "assigned_to" in properties


def test_a_reporter_sees_their_own_hidden_report_with_its_contact_fields(user_client, reporter):
    own = SignalementFactory(is_public=False, reporter=reporter)
    other = SignalementFactory()
    collection = get_geojson(user_client)
    assert PRIVATE_FIELDS <= set(feature_of(collection, own)["properties"])
    assert not PRIVATE_FIELDS & set(feature_of(collection, other)["properties"])


@pytest.mark.parametrize(
    ("params", "status", "attr"),
    [
        ({"in_bbox": "bad"}, 400, "in_bbox"),
        ({"status": "nonsense"}, 400, "status"),
        ({"page_size": "0"}, 400, "page_size"),
        ({"page": "99"}, 404, None),
    ],
)
def test_errors_keep_the_json_error_shape(api_client, located, params, status, attr):
    for headers, query in [({}, {"format": "geojson"}), ({"HTTP_ACCEPT": GEOJSON}, {})]:
        response = api_client.get(LIST_URL, {**params, **query}, **headers)
        assert response.status_code == status, response.content
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["type"] == ("validation_error" if status == 400 else "client_error")
        assert body["errors"] and body["errors"][0]["attr"] == attr
        assert "features" not in body


def test_only_the_list_speaks_geojson(api_client, located):
    detail = reverse("signalement-detail", args=[located.pk])
    response = api_client.get(detail, {"format": "geojson"})
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    response = api_client.get(detail, HTTP_ACCEPT=GEOJSON)
    assert response.status_code == 406
    assert response.json()["errors"][0]["code"] == "not_acceptable"


def test_the_schema_documents_the_geojson_list(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/signalements/"]["get"]
    ok = operation["responses"]["200"]["content"]
    assert ok["application/json"]["schema"]["$ref"].endswith("/PaginatedSignalementList")
    assert ok[GEOJSON]["schema"]["$ref"] == "#/components/schemas/SignalementFeatureCollection"
    [format_parameter] = [p for p in operation["parameters"] if p["name"] == "format"]
    assert set(format_parameter["schema"]["enum"]) == {"json", "geojson"}
    # Errors are JSON whatever format was asked for.
    assert list(operation["responses"]["400"]["content"]) == ["application/json"]
    components = schema["components"]["schemas"]
    collection = components["SignalementFeatureCollection"]
    # (`count` is absent from cursor pages.)
    assert set(collection["required"]) == {"type", "features", "next", "previous"}
    feature = components["SignalementFeature"]
    assert feature["properties"]["geometry"]["nullable"] is True
    properties = components["SignalementProperties"]["properties"]
    assert "latitude" not in properties and "longitude" not in properties
    # Nothing else of the report API offers GeoJSON.
    detail = schema["paths"]["/api/signalements/{id}/"]["get"]["responses"]["200"]["content"]
    assert list(detail) == ["application/json"]


def test_a_method_the_list_does_not_allow_is_a_405_in_any_format(agent_client):
    for query in ["?format=geojson", ""]:
        response = agent_client.delete(LIST_URL + query, HTTP_ACCEPT=GEOJSON)
        assert response.status_code == 405, response.content
        assert response["Content-Type"] == "application/json"
        assert set(response["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
