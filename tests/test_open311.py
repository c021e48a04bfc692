"""Open311 GeoReport v2 under /open311/v2/: every JSON answer is checked against the
GeoReport v2 JSON Schemas (tests/open311_schemas/), every XML answer is parsed (with
defusedxml) and read; errors, privacy, and the round trip with the REST API."""

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import defusedxml.ElementTree as SafeET
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from signalements import services
from signalements.models import ApiKey, Comment, Signalement

from .factories import CategoryFactory, ExtraFieldFactory, SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db

SCHEMA_DIR = Path(__file__).resolve().parent / "open311_schemas"
FORMATS = ["json", "xml"]
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
STATES = [{"key": "off", "label": "Éteint"}, {"key": "blinking", "label": "Clignote"}]

# --- Schemas -----------------------------------------------------------------------------

FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_rfc3339(value) -> bool:
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        raise ValueError(f"{value!r} is not RFC 3339")
    datetime.fromisoformat(value)
    return True


@FORMAT_CHECKER.checks("uri")
def _is_uri(value) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


REGISTRY = Registry().with_resources(
    (path.name, Resource.from_contents(json.loads(path.read_text()), DRAFT202012))
    for path in SCHEMA_DIR.glob("*.json")
)
# The documents that the GeoReport v2 schemas above do not describe, after the spec's
# examples: service discovery, errors, and the answer to a POST.
LOCAL_SCHEMAS = {
    "discovery": {
        "type": "object",
        "required": ["changeset", "contact", "key_service", "endpoints"],
        "properties": {
            "changeset": {"type": "string", "format": "date-time"},
            "contact": {"type": ["string", "null"]},
            "key_service": {"type": ["string", "null"]},
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["specification", "url", "changeset", "type", "formats"],
                    "properties": {
                        "specification": {"type": "string", "format": "uri"},
                        "url": {"type": "string", "format": "uri"},
                        "changeset": {"type": "string", "format": "date-time"},
                        "type": {"enum": ["production", "test"]},
                        "formats": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "errors": {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["code", "description"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "integer"},
                "description": {"type": "string", "minLength": 1},
            },
        },
    },
    "created": {
        "type": "array",
        "minItems": 1,
        "maxItems": 1,
        "items": {
            "type": "object",
            "required": ["service_request_id", "service_notice"],
            "properties": {
                "service_request_id": {"type": "string", "minLength": 1},
                "service_notice": {"type": ["string", "null"]},
            },
        },
    },
}


def validate(document, schema: str) -> None:
    """Raises if `document` does not match the schema: a GeoReport v2 file name
    ("requests.json") or one of LOCAL_SCHEMAS."""
    root = LOCAL_SCHEMAS.get(schema, {"$ref": schema})
    validator = Draft202012Validator(root, registry=REGISTRY, format_checker=FORMAT_CHECKER)
    validator.validate(document)


def test_the_schemas_reject_what_they_should(client):
    # The validation is real: a wrong document fails (the $ref between files resolves).
    with pytest.raises(Exception, match="is not one of"):
        validate(
            [
                {
                    "service_request_id": "1",
                    "status": "pending",
                    "service_code": "x",
                    "requested_datetime": "2026-01-01T00:00:00Z",
                }
            ],
            "requests.json",
        )
    with pytest.raises(Exception, match="not a 'date-time'"):
        validate(
            [
                {
                    "service_request_id": "1",
                    "status": "open",
                    "service_code": "x",
                    "requested_datetime": "2026-01-01 00:00",
                }
            ],
            "requests.json",
        )
    with pytest.raises(Exception, match="required"):
        validate([{"service_code": "x"}], "services.json")


# --- Helpers -----------------------------------------------------------------------------


def url(name: str, fmt: str, **kwargs) -> str:
    return reverse(f"open311:{name}", kwargs={"format": fmt, **kwargs})


def parse_xml(response):
    """The XML body parsed safely, after checking the declaration and content type."""
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    return SafeET.fromstring(response.content)


def xml_children(element) -> dict:
    """An element's children as {tag: text or ''}."""
    return {child.tag: child.text or "" for child in element}


def body(response, fmt: str, schema: str):
    """The parsed body: JSON validated against `schema`, or the XML root element."""
    if fmt == "json":
        assert response["Content-Type"] == "application/json; charset=utf-8"
        data = response.json()
        validate(data, schema)
        return data
    return parse_xml(response)


def errors_of(response, fmt: str) -> list[dict]:
    """An error response's errors as [{"code": int, "description": str}], either format."""
    if fmt == "json":
        return body(response, fmt, "errors")
    root = parse_xml(response)
    assert root.tag == "errors"
    assert all(child.tag == "error" for child in root)
    errors = [xml_children(error) for error in root]
    for error in errors:
        assert set(error) == {"code", "description"}
        error["code"] = int(error["code"])
    return errors


def assert_error(response, fmt: str, status: int, *names: str) -> list[dict]:
    assert response.status_code == status, response.content
    errors = errors_of(response, fmt)
    assert errors and all(error["code"] == status for error in errors)
    for name in names:
        assert any(error["description"].startswith(f"{name}:") for error in errors), (
            name,
            errors,
        )
    return errors


def post_form(client, fmt: str, data, **extra):
    """A form-encoded POST, as Open311 clients send it (`data` may repeat names)."""
    return client.post(
        url("requests", fmt),
        urlencode(data, doseq=True),
        content_type="application/x-www-form-urlencoded",
        **extra,
    )


def requests_of(response, fmt: str) -> list[dict]:
    """The service requests of a GET requests answer, as dicts of strings for XML."""
    assert response.status_code == 200, response.content
    data = body(response, fmt, "requests.json")
    if fmt == "json":
        return data
    assert data.tag == "service_requests"
    assert all(child.tag == "request" for child in data)
    return [xml_children(request) for request in data]


# --- Fixtures ----------------------------------------------------------------------------


@pytest.fixture
def key():
    """An API key of a city system and its raw value."""
    user = UserFactory(username="ville-de-rennes")
    return ApiKey.issue(name="Ville de Rennes", user=user)


@pytest.fixture
def raw_key(key):
    return key[1]


@pytest.fixture
def eclairage():
    category = CategoryFactory(
        code="eclairage-public",
        name="Éclairage public",
        description="Lampadaires éteints ou qui clignotent.",
        group="Voirie",
    )
    ExtraFieldFactory(
        category=category,
        code="lamp_state",
        label="État du lampadaire",
        datatype="singlevaluelist",
        choices=STATES,
        required=True,
        order=1,
    )
    ExtraFieldFactory(category=category, code="lamp_id", label="Numéro", order=2)
    ExtraFieldFactory(category=category, code="height_m", datatype="number", order=3)
    ExtraFieldFactory(category=category, code="seen_at", datatype="datetime", order=4)
    ExtraFieldFactory(
        category=category, code="symptoms", datatype="multivaluelist", choices=STATES, order=5
    )
    ExtraFieldFactory(
        category=category,
        code="details",
        datatype="text",
        description="Tout détail utile.",
        order=5,
    )
    return category


@pytest.fixture
def voirie():
    return CategoryFactory(code="voirie", name="Voirie", group="")


def valid_form(raw_key: str, **overrides) -> dict:
    form = {
        "api_key": raw_key,
        "service_code": "eclairage-public",
        "lat": "48.1147",
        "long": "-1.6801",
        "address_string": "Place Sainte-Anne, 35000 Rennes",
        "description": "Lampadaire éteint depuis trois soirs.",
        "attribute[lamp_state]": "off",
        "first_name": "Léa",
        "last_name": "Robert",
        "email": "lea.robert@example.org",
        "phone": "06 00 00 00 00",
        "media_url": "https://photos.example.org/lampadaire.jpg",
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value is not None}


# --- Discovery and services ------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_discovery_describes_the_endpoint(client, settings, fmt):
    settings.OPEN311_CONTACT = "open311@rennes.example.org"

    response = client.get(url("discovery", fmt))

    assert response.status_code == 200
    data = body(response, fmt, "discovery")
    if fmt == "json":
        endpoint = data["endpoints"][0]
        assert data["contact"] == "open311@rennes.example.org"
        assert data["key_service"]
        assert endpoint["url"] == "http://testserver/open311/v2/"
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert endpoint["formats"] == ["application/json", "text/xml"]
    else:
        assert data.tag == "discovery"
        assert data.findtext("contact") == "open311@rennes.example.org"
        endpoint = data.find("endpoints/endpoint")
        assert endpoint.findtext("url") == "http://testserver/open311/v2/"
        assert [f.text for f in endpoint.findall("formats/format")] == [
            "application/json",
            "text/xml",
        ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_services_list_the_active_categories(client, eclairage, voirie, fmt):
    CategoryFactory(code="ancienne", name="Ancienne", is_active=False)

    response = client.get(url("services", fmt))

    assert response.status_code == 200
    data = body(response, fmt, "services.json")
    if fmt == "xml":
        assert data.tag == "services"
        assert all(child.tag == "service" for child in data)
        data = [xml_children(service) for service in data]
        expected_eclairage = {
            "service_code": "eclairage-public",
            "service_name": "Éclairage public",
            "description": "Lampadaires éteints ou qui clignotent.",
            "metadata": "true",
            "type": "realtime",
            "keywords": "",
            "group": "Voirie",
        }
        expected_voirie = {"service_code": "voirie", "metadata": "false", "group": ""}
    else:
        expected_eclairage = {
            "service_code": "eclairage-public",
            "service_name": "Éclairage public",
            "description": "Lampadaires éteints ou qui clignotent.",
            "metadata": True,
            "type": "realtime",
            "keywords": None,
            "group": "Voirie",
        }
        expected_voirie = {"service_code": "voirie", "metadata": False, "group": None}
    by_code = {service["service_code"]: service for service in data}
    assert set(by_code) == {"eclairage-public", "voirie"}
    assert by_code["eclairage-public"] == expected_eclairage
    assert expected_voirie.items() <= by_code["voirie"].items()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_service_definition_lists_the_extra_fields_as_attributes(client, eclairage, fmt):
    response = client.get(url("service-definition", fmt, service_code="eclairage-public"))

    assert response.status_code == 200
    data = body(response, fmt, "service-definition.json")
    if fmt == "json":
        assert data["service_code"] == "eclairage-public"
        attributes = data["attributes"]
        assert [a["code"] for a in attributes] == [
            "lamp_state",
            "lamp_id",
            "height_m",
            "seen_at",
            "symptoms",
            "details",
        ]
        assert [a["order"] for a in attributes] == [1, 2, 3, 4, 5, 6]
        assert attributes[0] == {
            "variable": True,
            "code": "lamp_state",
            "datatype": "singlevaluelist",
            "required": True,
            "datatype_description": "Une clé parmi les valeurs.",  # French by default
            "order": 1,
            "description": "État du lampadaire",
            "values": [{"key": "off", "name": "Éteint"}, {"key": "blinking", "name": "Clignote"}],
        }
        assert attributes[1]["values"] == []
        assert attributes[5]["datatype_description"] == "Tout détail utile."
    else:
        assert data.tag == "service_definition"
        assert data.findtext("service_code") == "eclairage-public"
        attributes = data.findall("attributes/attribute")
        assert len(attributes) == 6
        first = attributes[0]
        assert first.findtext("variable") == "true"
        assert first.findtext("required") == "true"
        assert first.findtext("datatype") == "singlevaluelist"
        assert first.findtext("order") == "1"
        values = [(v.findtext("key"), v.findtext("name")) for v in first.findall("values/value")]
        assert values == [("off", "Éteint"), ("blinking", "Clignote")]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("code", ["inconnue", "ancienne"])
def test_an_unknown_or_inactive_service_definition_is_a_404(client, fmt, code):
    CategoryFactory(code="ancienne", is_active=False)

    response = client.get(url("service-definition", fmt, service_code=code))

    assert_error(response, fmt, 404)


# --- POST requests -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_city_system_creates_a_request_with_its_api_key(client, key, eclairage, fmt):
    api_key, raw_key = key
    form = valid_form(
        raw_key,
        **{
            "attribute[lamp_id]": "RN-04217",
            "attribute[height_m]": "4.5",
            "attribute[seen_at]": "2026-11-20T21:00:00+01:00",
            "attribute[symptoms][]": ["off", "blinking"],
            "device_id": "ignored",
        },
    )

    before = timezone.now()
    response = post_form(client, fmt, form)

    assert response.status_code == 200, response.content
    report = Signalement.objects.get()
    if fmt == "json":
        data = body(response, fmt, "created")
        assert data == [{"service_request_id": report.reference, "service_notice": None}]
    else:
        root = parse_xml(response)
        assert root.tag == "service_requests"
        assert xml_children(root.find("request")) == {
            "service_request_id": report.reference,
            "service_notice": "",
        }
    assert report.category == eclairage
    assert report.description == "Lampadaire éteint depuis trois soirs."
    assert (report.latitude, report.longitude) == (Decimal("48.114700"), Decimal("-1.680100"))
    assert report.address == "Place Sainte-Anne, 35000 Rennes"
    assert report.extra == {
        "lamp_state": "off",
        "lamp_id": "RN-04217",
        "height_m": 4.5,
        "seen_at": "2026-11-20T21:00:00+01:00",
        "symptoms": ["off", "blinking"],
    }
    assert (report.contact_name, report.contact_email, report.contact_phone) == (
        "Léa Robert",
        "lea.robert@example.org",
        "06 00 00 00 00",
    )
    assert report.media_url == "https://photos.example.org/lampadaire.jpg"
    assert report.reporter is None
    assert report.api_key == api_key
    assert report.status == "new" and report.is_public
    assert before <= report.date <= timezone.now()
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None and api_key.last_used_at >= before
    # The history records the key's account as the author of the creation.
    assert report.history.get().history_user == api_key.user


def test_the_service_notice_comes_from_the_settings(client, raw_key, eclairage, settings):
    settings.OPEN311_SERVICE_NOTICE = "Intervention sous 48 heures."

    response = post_form(client, "json", valid_form(raw_key))

    assert response.json()[0]["service_notice"] == "Intervention sous 48 heures."


def test_a_multipart_form_works_too(client, raw_key, eclairage):
    response = client.post(url("requests", "json"), valid_form(raw_key))

    assert response.status_code == 200, response.content
    assert Signalement.objects.count() == 1


def test_an_address_alone_is_a_location(client, raw_key, eclairage):
    response = post_form(client, "json", valid_form(raw_key, lat=None, long=None))

    assert response.status_code == 200, response.content
    report = Signalement.objects.get()
    assert (report.latitude, report.longitude) == (None, None)
    assert report.address == "Place Sainte-Anne, 35000 Rennes"


def test_whole_numbers_are_stored_as_integers_and_repeated_plain_names_make_a_list(
    client, raw_key, eclairage
):
    form = valid_form(raw_key, **{"attribute[height_m]": "12", "attribute[symptoms]": ["off"]})
    form = list(form.items()) + [("attribute[symptoms]", "blinking")]

    response = post_form(client, "json", form)

    assert response.status_code == 200, response.content
    extra = Signalement.objects.get().extra
    assert extra["height_m"] == 12 and isinstance(extra["height_m"], int)
    assert extra["symptoms"] == ["off", "blinking"]


def test_a_session_cookie_is_no_credential_and_csrf_does_not_block_keys(
    agent_user, raw_key, eclairage
):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(agent_user)

    without_key = post_form(browser, "json", valid_form(raw_key, api_key=None))
    with_key = post_form(browser, "json", valid_form(raw_key))

    assert_error(without_key, "json", 403, "api_key")
    assert with_key.status_code == 200, with_key.content
    assert Signalement.objects.get().reporter is None


def revoke(api_key):
    api_key.is_active = False
    api_key.revoked_at = timezone.now()
    api_key.save()


def deactivate_user(api_key):
    api_key.user.is_active = False
    api_key.user.save()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "change_form, change_key",
    [
        (lambda raw: {"api_key": None}, None),
        (lambda raw: {"api_key": ""}, None),
        (lambda raw: {"api_key": "not-a-key"}, None),
        (lambda raw: {"api_key": raw[:-1]}, None),
        (lambda raw: {"api_key": "\x00"}, None),
        (lambda raw: {}, revoke),
        (lambda raw: {}, deactivate_user),
    ],
    ids=["missing", "empty", "unknown", "truncated", "nul", "revoked", "inactive-user"],
)
def test_a_missing_invalid_or_revoked_key_is_a_403(
    client, key, eclairage, fmt, change_form, change_key
):
    api_key, raw_key = key
    if change_key:
        change_key(api_key)

    response = post_form(client, fmt, valid_form(raw_key, **change_form(raw_key)))

    assert_error(response, fmt, 403, "api_key")
    assert not Signalement.objects.exists()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "overrides, param",
    [
        ({"service_code": None}, "service_code"),
        ({"service_code": ""}, "service_code"),
        ({"service_code": "inconnue"}, "service_code"),
        ({"service_code": "ancienne"}, "service_code"),
        ({"service_code": "eclairage\x00"}, "service_code"),
        ({"description": None}, "description"),
        ({"description": "   "}, "description"),
        ({"description": "x" * 4001}, "description"),
        ({"description": "a\x00b"}, "description"),
        ({"lat": None, "long": None, "address_string": None}, "lat"),
        ({"lat": "", "long": "", "address_string": ""}, "lat"),
        ({"long": None}, "long"),
        ({"lat": None}, "lat"),
        ({"lat": "nan"}, "lat"),
        ({"lat": "inf"}, "lat"),
        ({"lat": "1e999"}, "lat"),
        ({"lat": "9" * 2000}, "lat"),
        ({"lat": "91"}, "lat"),
        ({"long": "-180.5"}, "long"),
        ({"lat": "48,11"}, "lat"),
        ({"lat": "\x00"}, "lat"),
        ({"address_string": "x" * 301}, "address_string"),
        ({"email": "pas-une-adresse"}, "email"),
        ({"first_name": "x" * 150, "last_name": "y" * 100}, "first_name/last_name"),
        ({"phone": "0" * 41}, "phone"),
        ({"media_url": "ftp://example.org/photo.jpg"}, "media_url"),
        ({"media_url": "javascript:alert(1)"}, "media_url"),
        ({"media_url": "https://" + "a" * 500 + ".org"}, "media_url"),
        ({"attribute[lamp_state]": None}, "attribute[lamp_state]"),
        ({"attribute[lamp_state]": ""}, "attribute[lamp_state]"),
        ({"attribute[lamp_state]": "broken"}, "attribute[lamp_state]"),
        ({"attribute[lamp_state]": ["off", "blinking"]}, "attribute[lamp_state]"),
        ({"attribute[unknown]": "x"}, "attribute[unknown]"),
        ({"attribute[height_m]": "abc"}, "attribute[height_m]"),
        ({"attribute[height_m]": "nan"}, "attribute[height_m]"),
        ({"attribute[height_m]": "1e999"}, "attribute[height_m]"),
        ({"attribute[height_m]": "9" * 5000}, "attribute[height_m]"),
        ({"attribute[seen_at]": "hier soir"}, "attribute[seen_at]"),
        ({"attribute[lamp_id]": "x" * 501}, "attribute[lamp_id]"),
        ({"attribute[lamp_id]": "a\x00b"}, "attribute[lamp_id]"),
        ({"attribute[symptoms][]": ["off", "off"]}, "attribute[symptoms]"),
        ({"attribute[symptoms][]": ["broken"]}, "attribute[symptoms]"),
        ({"attribute[a][b]": "x"}, "attribute[a][b]"),
        ({"description": ["un", "deux"]}, "description"),
        ({"lat": ["48.1", "48.2"]}, "lat"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter_and_writes_nothing(
    client, raw_key, eclairage, fmt, overrides, param
):
    CategoryFactory(code="ancienne", is_active=False)

    response = post_form(client, fmt, valid_form(raw_key, **overrides))

    assert_error(response, fmt, 400, param)
    assert not Signalement.objects.exists()


def test_a_tiny_coordinate_is_rounded_like_in_the_rest_api(client, raw_key, eclairage):
    response = post_form(client, "json", valid_form(raw_key, lat="1e-999999999999"))

    assert response.status_code == 200, response.content
    assert Signalement.objects.get().latitude == 0


def test_every_problem_with_the_fields_is_reported_at_once(client, raw_key, eclairage):
    form = valid_form(raw_key, lat="91", email="x", description="", media_url="ftp://a.b")

    response = post_form(client, "json", form)

    assert_error(response, "json", 400, "lat", "email", "description", "media_url")


@pytest.mark.parametrize("fmt", FORMATS)
def test_attribute_problems_are_reported_with_the_fields_problems(client, raw_key, eclairage, fmt):
    form = valid_form(raw_key, lat="91", **{"attribute[lamp_state]": "blue"})

    response = post_form(client, fmt, form)

    assert_error(response, fmt, 400, "lat", "attribute[lamp_state]")
    assert not Signalement.objects.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_json_body_is_a_415(client, raw_key, eclairage, fmt):
    response = client.post(
        url("requests", fmt), valid_form(raw_key), content_type="application/json"
    )

    assert_error(response, fmt, 415)


@pytest.mark.parametrize(
    "content",
    [
        b"api_key=%FF%FE&service_code=\xff\xfe",
        b"\xff\xfe\x00\x01",
        b"=&&=x&%",
    ],
)
def test_a_body_that_is_not_utf8_is_answered_not_crashed(client, raw_key, eclairage, content):
    response = client.post(
        url("requests", "json"), content, content_type="application/x-www-form-urlencoded"
    )

    assert_error(response, "json", 403, "api_key")


def test_a_body_that_is_not_utf8_with_a_key_is_a_400(client, raw_key, eclairage):
    content = urlencode(valid_form(raw_key, description=None)).encode() + b"&description=%FF"

    response = client.post(
        url("requests", "json"), content, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200  # read as U+FFFD, like any browser form
    assert Signalement.objects.get().description == "\ufffd"


def test_an_unknown_charset_is_answered_not_crashed(client, raw_key, eclairage):
    response = client.generic(
        "POST",
        url("requests", "json"),
        urlencode(valid_form(raw_key)).encode(),
        content_type="application/x-www-form-urlencoded; charset=nope",
    )

    assert response.status_code in (200, 400, 415), response.content
    assert response.status_code != 500


def test_too_many_fields_are_a_400(client, raw_key, eclairage, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 20
    form = [*valid_form(raw_key).items(), *((f"x{i}", "y") for i in range(30))]

    response = post_form(client, "xml", form)

    assert_error(response, "xml", 400)
    assert not Signalement.objects.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_posting_is_throttled_per_api_key(client, raw_key, eclairage, settings, fmt):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "open311_create": "2/minute",
        },
    }
    other_key = ApiKey.issue(name="Autre", user=UserFactory())[1]

    responses = [post_form(client, fmt, valid_form(raw_key)) for _ in range(3)]
    other = post_form(client, fmt, valid_form(other_key))

    assert [r.status_code for r in responses] == [200, 200, 429]
    assert_error(responses[2], fmt, 429)
    assert int(responses[2]["Retry-After"]) > 0
    assert other.status_code == 200


# --- GET requests ------------------------------------------------------------------------


def make_report(**kwargs):
    created_at = kwargs.pop("created_at", None)
    report = SignalementFactory(**kwargs)
    if created_at is not None:
        Signalement.objects.filter(pk=report.pk).update(created_at=created_at)
        report.refresh_from_db()
    return report


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_service_request_has_the_reports_public_data(client, eclairage, settings, fmt):
    settings.OPEN311_AGENCY_RESPONSIBLE = "Ville de Rennes"
    report = make_report(
        category=eclairage,
        description="Lampadaire éteint",
        extra={"lamp_state": "off"},
        media_url="https://photos.example.org/1.jpg",
    )

    response = client.get(url("request", fmt, service_request_id=report.reference))

    [request] = requests_of(response, fmt)
    report.refresh_from_db()
    created = timezone.localtime(report.created_at).isoformat(timespec="seconds")
    updated = timezone.localtime(report.updated_at).isoformat(timespec="seconds")
    if fmt == "json":
        assert request == {
            "service_request_id": report.reference,
            "status": "open",
            "status_notes": None,
            "service_name": "Éclairage public",
            "service_code": "eclairage-public",
            "description": "Lampadaire éteint",
            "agency_responsible": "Ville de Rennes",
            "service_notice": None,
            "requested_datetime": created,
            "updated_datetime": updated,
            "expected_datetime": None,
            "address": "Place Sainte-Anne, 35000 Rennes",
            "address_id": None,
            "zipcode": None,
            "lat": 48.111,
            "long": -1.68,
            "media_url": "https://photos.example.org/1.jpg",
        }
    else:
        assert request == {
            "service_request_id": report.reference,
            "status": "open",
            "status_notes": "",
            "service_name": "Éclairage public",
            "service_code": "eclairage-public",
            "description": "Lampadaire éteint",
            "agency_responsible": "Ville de Rennes",
            "service_notice": "",
            "requested_datetime": created,
            "updated_datetime": updated,
            "expected_datetime": "",
            "address": "Place Sainte-Anne, 35000 Rennes",
            "address_id": "",
            "zipcode": "",
            "lat": "48.111000",
            "long": "-1.680000",
            "media_url": "https://photos.example.org/1.jpg",
        }
        assert RFC3339.match(request["requested_datetime"])


def test_a_request_is_found_by_reference_or_id(client):
    report = make_report()

    for given in [report.reference, report.reference.lower(), str(report.pk)]:
        [request] = requests_of(
            client.get(url("request", "json", service_request_id=given)), "json"
        )
        assert request["service_request_id"] == report.reference


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("given", ["hidden", "SIG-2026-999999", "999999", "abc", "9" * 30])
def test_an_unknown_or_hidden_request_is_a_404(client, fmt, given):
    hidden = make_report(is_public=False)
    if given == "hidden":
        given = hidden.reference

    response = client.get(url("request", fmt, service_request_id=given))

    assert_error(response, fmt, 404)


def test_statuses_map_to_open_and_closed_with_the_latest_public_note(client, agent_user):
    reports = {status: make_report(status="new") for status in ["new", "ack", "resolved"]}
    services.transition(signalement=reports["ack"], to_status="acknowledged", by=agent_user)
    services.transition(
        signalement=reports["resolved"], to_status="acknowledged", by=agent_user, note="Vu."
    )
    services.transition(
        signalement=reports["resolved"], to_status="resolved", by=agent_user, note="Réparé."
    )
    services.add_comment(
        signalement=reports["resolved"],
        author=agent_user,
        body="Note interne",
        is_internal=True,
        as_agent=True,
    )
    Comment.objects.create(signalement=reports["resolved"], body="Merci !", author_role="reporter")

    requests = requests_of(client.get(url("requests", "json")), "json")

    by_id = {request["service_request_id"]: request for request in requests}
    assert by_id[reports["new"].reference]["status"] == "open"
    assert by_id[reports["ack"].reference]["status"] == "open"
    assert by_id[reports["ack"].reference]["status_notes"] is None
    assert by_id[reports["resolved"].reference]["status"] == "closed"
    assert by_id[reports["resolved"].reference]["status_notes"] == "Réparé."


@pytest.mark.parametrize("status", ["in_progress", "rejected"])
def test_every_workflow_status_maps(client, status):
    report = make_report(status=status)

    [request] = requests_of(
        client.get(url("request", "json", service_request_id=report.pk)), "json"
    )

    assert request["status"] == ("closed" if status == "rejected" else "open")


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_list_shows_public_reports_of_the_last_90_days_newest_first(client, fmt):
    now = timezone.now()
    recent = make_report(created_at=now - timedelta(days=1))
    newest = make_report(created_at=now - timedelta(hours=1))
    make_report(created_at=now - timedelta(days=91))
    make_report(is_public=False)

    requests = requests_of(client.get(url("requests", fmt)), fmt)

    assert [r["service_request_id"] for r in requests] == [newest.reference, recent.reference]


def test_a_report_without_category_has_an_empty_service_code(client):
    report = make_report(category=None, address="", latitude=None, longitude=None)

    [request] = requests_of(
        client.get(url("request", "json", service_request_id=report.pk)), "json"
    )

    assert (request["service_code"], request["service_name"]) == ("", None)
    assert (request["address"], request["lat"], request["long"]) == (None, None, None)


def test_the_list_filters_by_status_service_code_and_dates(client, eclairage, voirie):
    now = timezone.now()
    lamp_open = make_report(category=eclairage, created_at=now - timedelta(days=2))
    lamp_closed = make_report(
        category=eclairage, status="resolved", created_at=now - timedelta(days=3)
    )
    road_open = make_report(category=voirie, created_at=now - timedelta(days=40))
    old = make_report(category=voirie, created_at=now - timedelta(days=200))

    def ids(**params):
        response = client.get(url("requests", "json"), params)
        return {r["service_request_id"] for r in requests_of(response, "json")}

    assert ids() == {lamp_open.reference, lamp_closed.reference, road_open.reference}
    assert ids(status="open") == {lamp_open.reference, road_open.reference}
    assert ids(status="closed") == {lamp_closed.reference}
    assert ids(status="open,closed") == ids()
    assert ids(service_code="voirie") == {road_open.reference}
    assert ids(service_code="voirie,eclairage-public", status="closed") == {lamp_closed.reference}
    assert ids(service_code="inconnue") == set()
    day = timedelta(days=1)
    assert ids(start_date=(now - 5 * day).isoformat(), end_date=(now - day).isoformat()) == {
        lamp_open.reference,
        lamp_closed.reference,
    }
    assert ids(start_date=(now - 210 * day).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")) == {
        old.reference
    }
    assert ids(end_date=(now - 30 * day).isoformat()) == {road_open.reference}
    # service_request_id overrides the other filters (even the 90 days).
    assert ids(service_request_id=f"{old.reference},{lamp_open.pk}", status="closed") == {
        old.reference,
        lamp_open.reference,
    }


def test_an_unencoded_plus_in_an_offset_is_understood(client):
    report = make_report()
    start = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+01:00")

    response = client.get(f"{url('requests', 'json')}?start_date={start}")

    assert [r["service_request_id"] for r in requests_of(response, "json")] == [report.reference]


def test_the_list_pages(client):
    now = timezone.now()
    reports = [make_report(created_at=now - timedelta(minutes=i)) for i in range(5)]

    def page(**params):
        response = client.get(url("requests", "json"), params)
        return [r["service_request_id"] for r in requests_of(response, "json")]

    assert page(page_size=2) == [reports[0].reference, reports[1].reference]
    assert page(page_size=2, page=3) == [reports[4].reference]
    assert page(page_size=2, page=4) == []
    assert page(page_size=5000) == [report.reference for report in reports]


def test_the_list_is_capped_at_1000(client, eclairage):
    Signalement.objects.bulk_create(
        Signalement(description=f"n°{i}", date=timezone.now(), category=eclairage)
        for i in range(1001)
    )

    assert len(requests_of(client.get(url("requests", "json")), "json")) == 1000


def test_the_list_runs_a_fixed_number_of_queries(client, eclairage, django_assert_num_queries):
    for report in SignalementFactory.create_batch(10, category=eclairage):
        Comment.objects.create(signalement=report, body="Vu", author_role="agent", status="new")

    with django_assert_num_queries(2):  # the page, its photos (media_url)
        response = client.get(url("requests", "xml"))

    assert len(requests_of(response, "xml")) == 10


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "params, param",
    [
        ({"start_date": "2026-01-01T00:00:00"}, "start_date"),
        ({"start_date": "2026-01-01"}, "start_date"),
        ({"start_date": "hier"}, "start_date"),
        ({"start_date": "2026-13-01T00:00:00Z"}, "start_date"),
        ({"end_date": "2026-01-01T00:00:00+25:00"}, "end_date"),
        ({"end_date": "0001-01-01T00:00:00+05:00"}, "end_date"),
        ({"start_date": "2026-01-01T00:00:00Z\x00"}, "start_date"),
        ({"start_date": "2026-03-01T00:00:00Z", "end_date": "2026-02-01T00:00:00Z"}, "end_date"),
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-04-02T00:00:00Z"}, "end_date"),
        ({"start_date": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]}, "start_date"),
        ({"status": "pending"}, "status"),
        ({"status": "open,\x00"}, "status"),
        ({"service_code": "a b"}, "service_code"),
        ({"service_code": "\x00"}, "service_code"),
        ({"service_request_id": "SIG-abc"}, "service_request_id"),
        ({"service_request_id": "1,\x00"}, "service_request_id"),
        ({"service_request_id": ",".join(str(i) for i in range(1, 1002))}, "service_request_id"),
        ({"page": "0"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "9" * 30}, "page"),
        ({"page": "9" * 2000}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "1e3"}, "page_size"),
    ],
)
def test_bad_filters_are_a_400_naming_the_parameter(client, fmt, params, param):
    response = client.get(url("requests", fmt), params)

    assert_error(response, fmt, 400, param)


def test_edge_dates_are_answered(client):
    for params in [
        {"start_date": "9999-12-31T00:00:00Z"},
        {"end_date": "0001-01-02T00:00:00Z"},
        {"start_date": "2026-01-01T00:00:00+15:59"},
    ]:
        assert client.get(url("requests", "json"), params).status_code == 200, params


# --- Jurisdiction ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_another_jurisdiction_is_a_404(client, settings, raw_key, eclairage, fmt):
    settings.OPEN311_JURISDICTION_ID = "rennes.fr"

    for name in ["services", "requests", "discovery"]:
        assert client.get(url(name, fmt), {"jurisdiction_id": "rennes.fr"}).status_code == 200
        assert client.get(url(name, fmt)).status_code == 200
        response = client.get(url(name, fmt), {"jurisdiction_id": "nantes.fr"})
        assert_error(response, fmt, 404, "jurisdiction_id")
    response = post_form(client, fmt, valid_form(raw_key, jurisdiction_id="nantes.fr"))
    assert_error(response, fmt, 404, "jurisdiction_id")
    assert not Signalement.objects.exists()
    response = post_form(client, fmt, valid_form(raw_key, jurisdiction_id="rennes.fr"))
    assert response.status_code == 200


def test_any_jurisdiction_is_accepted_when_none_is_configured(client, raw_key, eclairage):
    response = post_form(client, "json", valid_form(raw_key, jurisdiction_id="rennes.fr"))

    assert response.status_code == 200


# --- Errors anywhere under /open311/ -----------------------------------------------------


@pytest.mark.parametrize(
    "path, fmt",
    [
        ("/open311/v2/services.yaml", "json"),
        ("/open311/v2/services", "json"),
        ("/open311/v2/nothing.xml", "xml"),
        ("/open311/v2/requests/SIG-2026-000001.yaml", "json"),
        ("/open311/v2/services/a.b.xml", "xml"),
        ("/open311/v2/", "json"),
        ("/open311/v3/services.xml", "xml"),
        ("/open311/v2/services/%FF.json", "json"),
    ],
)
def test_an_unknown_url_is_an_open311_404(client, path, fmt):
    response = client.get(path)

    assert_error(response, fmt, 404)
    assert client.post(path).status_code == 404


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "method, name, kwargs",
    [
        ("put", "requests", {}),
        ("delete", "requests", {}),
        ("patch", "requests", {}),
        ("options", "requests", {}),
        ("post", "services", {}),
        ("post", "discovery", {}),
        ("post", "service-definition", {"service_code": "voirie"}),
        ("post", "request", {"service_request_id": "1"}),
    ],
)
def test_an_unsupported_method_is_an_open311_405(client, voirie, fmt, method, name, kwargs):
    response = getattr(client, method)(url(name, fmt, **kwargs))

    assert_error(response, fmt, 405)
    assert "POST" not in response["Allow"] or name == "requests"


def test_head_works_like_get(client, voirie):
    response = client.head(url("services", "xml"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml; charset=utf-8"


def test_the_accept_header_and_format_parameter_do_not_change_the_format(client, voirie):
    response = client.get(
        url("services", "xml"), {"format": "json"}, HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 200
    assert parse_xml(response).tag == "services"
    assert "accept" not in [v.strip().lower() for v in response.get("Vary", "").split(",")]


def test_control_characters_are_kept_out_of_the_xml(client):
    report = make_report(description="Bip\x07 \x1b[31m rouge", address="Rue\x0b du Port")

    response = client.get(url("request", "xml", service_request_id=report.pk))

    [request] = requests_of(response, "xml")
    assert request["description"] == "Bip\ufffd \ufffd[31m rouge"
    assert request["address"] == "Rue\ufffd du Port"


def test_an_xml_error_description_with_control_characters_parses(client, raw_key, eclairage):
    response = post_form(client, "xml", valid_form(raw_key, **{"attribute[\x01]": "x"}))

    assert_error(response, "xml", 400)


def test_the_open311_views_stay_out_of_the_openapi_schema(client):
    schema = client.get("/api/schema/?format=json").json()

    assert not [path for path in schema["paths"] if "open311" in path]


# --- Privacy and the round trip with the REST API ------------------------------------


SECRETS = {
    "contact_name": "Zéphyrin Contactsecret",
    "contact_email": "zephyrin.secret@example.org",
    "contact_phone": "+33 6 99 88 77 66",
}


def all_open311_bodies(client, report) -> bytes:
    bodies = b""
    for fmt in FORMATS:
        for response in [
            client.get(url("requests", fmt)),
            client.get(url("requests", fmt), {"service_request_id": report.reference}),
            client.get(url("request", fmt, service_request_id=report.reference)),
            client.get(url("services", fmt)),
            client.get(url("service-definition", fmt, service_code=report.category.code)),
            client.get(url("discovery", fmt)),
        ]:
            assert response.status_code == 200
            bodies += response.content
    return bodies


def test_private_data_never_appears_in_open311(client, key, eclairage, agent_user):
    api_key, raw_key = key
    form = valid_form(
        raw_key,
        first_name="Zéphyrin",
        last_name="Contactsecret",
        email=SECRETS["contact_email"],
        phone=SECRETS["contact_phone"],
    )
    created = post_form(client, "xml", form)
    assert created.status_code == 200
    report = Signalement.objects.get()
    reporter = UserFactory(username="reporter-secret-login", email="reporter-secret@example.org")
    Signalement.objects.filter(pk=report.pk).update(reporter=reporter, assigned_to=agent_user)
    services.add_comment(
        signalement=report,
        author=agent_user,
        body="Note interne ultrasecrète",
        is_internal=True,
        as_agent=True,
    )
    services.transition(
        signalement=report, to_status="acknowledged", by=agent_user, note="Pris en compte."
    )
    assert SECRETS.items() <= {name: getattr(report, name) for name in SECRETS}.items()

    bodies = all_open311_bodies(client, report).decode()

    assert "Pris en compte." in bodies  # the public note is there, …
    for secret in [
        *SECRETS.values(),
        "Zéphyrin",
        "Contactsecret",
        "ultrasecrète",
        "reporter-secret",
        agent_user.username,
        api_key.name,
        api_key.prefix,
        raw_key,
        api_key.key_hash,
        api_key.user.username,
    ]:
        assert secret not in bodies, secret  # … no private data


def test_a_request_created_through_open311_reads_the_same_through_the_rest_api(
    client, raw_key, eclairage, agent_client, api_client
):
    form = valid_form(raw_key, **{"attribute[lamp_id]": "RN-04217", "attribute[height_m]": "4.5"})
    reference = post_form(client, "json", form).json()[0]["service_request_id"]
    report = Signalement.objects.get()
    assert reference == report.reference
    detail = reverse("signalement-detail", args=[report.pk])

    public = api_client.get(detail).json()
    full = agent_client.get(detail).json()

    expected = {
        "reference": reference,
        "description": "Lampadaire éteint depuis trois soirs.",
        "category": "eclairage-public",
        "latitude": 48.1147,
        "longitude": -1.6801,
        "address": "Place Sainte-Anne, 35000 Rennes",
        "media_url": "https://photos.example.org/lampadaire.jpg",
        "extra": {"lamp_state": "off", "lamp_id": "RN-04217", "height_m": 4.5},
        "status": "new",
        "is_public": True,
    }
    assert expected.items() <= public.items()
    assert not {"contact_name", "contact_email", "contact_phone"} & set(public)
    assert expected.items() <= full.items()
    assert (full["contact_name"], full["contact_email"], full["contact_phone"]) == (
        "Léa Robert",
        "lea.robert@example.org",
        "06 00 00 00 00",
    )
    # And back through Open311: the same report.
    [request] = requests_of(
        client.get(url("request", "json", service_request_id=reference)), "json"
    )
    assert (request["lat"], request["long"], request["description"]) == (
        public["latitude"],
        public["longitude"],
        public["description"],
    )
    assert datetime.fromisoformat(request["requested_datetime"]) == datetime.fromisoformat(
        public["created_at"]
    ).replace(microsecond=0)


def test_a_report_created_through_the_rest_api_reads_the_same_through_open311(
    client, api_client, eclairage
):
    created = api_client.post(
        reverse("signalement-list"),
        {
            "description": "Lampadaire qui clignote",
            "date": "2026-11-24T21:00:00+01:00",
            "category": "eclairage-public",
            "latitude": 48.1147,
            "longitude": -1.6801,
            "address": "Place Sainte-Anne, Rennes",
            "media_url": "https://photos.example.org/2.jpg",
            "extra": {"lamp_state": "blinking"},
            **SECRETS,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    rest = created.json()

    for fmt in FORMATS:
        requests = requests_of(client.get(url("requests", fmt)), fmt)
        assert [r["service_request_id"] for r in requests] == [rest["reference"]]
        [request] = requests
        if fmt == "json":
            assert (request["lat"], request["long"]) == (rest["latitude"], rest["longitude"])
        else:
            assert (Decimal(request["lat"]), Decimal(request["long"])) == (
                Decimal("48.1147"),
                Decimal("-1.6801"),
            )
        assert request["service_code"] == rest["category"]
        assert request["service_name"] == "Éclairage public"
        assert request["description"] == rest["description"]
        assert request["address"] == rest["address"]
        assert request["media_url"] == rest["media_url"]
        assert request["status"] == "open"
        assert datetime.fromisoformat(request["requested_datetime"]) == datetime.fromisoformat(
            rest["created_at"]
        ).replace(microsecond=0)
        assert not any(secret in str(requests) for secret in SECRETS.values())


def test_the_rest_api_takes_only_web_media_urls(api_client):
    response = api_client.post(
        reverse("signalement-list"),
        {"description": "x", "date": "2026-11-24T21:00:00+01:00", "media_url": "ftp://a.org/b"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "media_url"


# --- API keys ----------------------------------------------------------------------------


def test_a_key_is_stored_only_as_a_hash_and_a_prefix(key):
    api_key, raw_key = key

    stored = ApiKey.objects.values().get(pk=api_key.pk)

    assert len(raw_key) >= 43
    assert stored["key_hash"] == hashlib.sha256(raw_key.encode()).hexdigest()
    assert stored["prefix"] == raw_key[:8]
    assert raw_key not in json.dumps(stored, default=str)


def test_two_keys_differ(db):
    user = UserFactory()

    assert ApiKey.issue(name="a", user=user)[1] != ApiKey.issue(name="b", user=user)[1]


def test_without_a_media_url_a_request_shows_its_first_photo(
    client, api_client, agent_client, eclairage
):
    from .images import jpeg_with_gps
    from .test_attachments import upload

    created = api_client.post(
        reverse("signalement-list"),
        {"description": "Lampadaire cassé", "date": "2026-11-24T21:00:00+01:00"},
        format="json",
    ).json()
    for fmt in FORMATS:
        [request] = requests_of(client.get(url("requests", fmt)), fmt)
        assert request["media_url"] in (None, "")

    uploaded = upload(
        agent_client, created["id"], ("1.jpg", jpeg_with_gps()), ("2.jpg", jpeg_with_gps())
    )
    assert uploaded.status_code == 201

    first_photo = uploaded.json()[0]["url"]
    for fmt in FORMATS:
        [request] = requests_of(client.get(url("requests", fmt)), fmt)
        assert request["media_url"] == first_photo
        one = client.get(url("request", fmt, service_request_id=created["reference"]))
        [single] = requests_of(one, fmt)
        assert single["media_url"] == first_photo
