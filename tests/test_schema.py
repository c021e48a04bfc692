"""The OpenAPI schema is valid, documents errors, and the committed copy is current."""

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.yml"


@pytest.fixture(scope="module")
def generated_schema(tmp_path_factory, django_db_blocker):
    path = tmp_path_factory.mktemp("schema") / "schema.yml"
    with django_db_blocker.unblock():
        # As `make schema` writes it: in English, whatever LANGUAGE_CODE says.
        call_command(
            "spectacular", "--lang", "en", "--validate", "--fail-on-warn", "--file", str(path)
        )
    return path.read_text()


def test_the_schema_is_valid_without_warnings(generated_schema):
    assert yaml.safe_load(generated_schema)["openapi"].startswith("3.")


def test_the_committed_schema_matches_the_code(generated_schema):
    assert SCHEMA_FILE.read_text() == generated_schema, (
        "schema.yml is out of date: run `make schema` and commit it."
    )


def test_every_operation_has_exactly_one_request_content_type(generated_schema):
    schema = yaml.safe_load(generated_schema)
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody")
            if body:
                expected = (
                    "multipart/form-data"  # file uploads
                    if path == "/api/signalements/{id}/attachments/"
                    else "application/json"
                )
                assert list(body["content"]) == [expected], (path, method)


def test_errors_are_documented_with_the_common_shape(generated_schema):
    schema = yaml.safe_load(generated_schema)
    create = schema["paths"]["/api/signalements/"]["post"]["responses"]
    assert {"201", "400", "415", "429"} <= set(create)
    detail = schema["paths"]["/api/signalements/{id}/"]
    assert {"401", "403", "404"} <= set(detail["patch"]["responses"])
    assert "409" in schema["paths"]["/api/categories/{code}/"]["delete"]["responses"]


def test_the_docs_pages_render_with_local_assets(client):
    for url in ["/api/docs/", "/api/redoc/"]:
        response = client.get(url)
        assert response.status_code == 200
        page = response.content.decode()
        assert "/static/drf_spectacular_sidecar/" in page
        assert "cdn." not in page and "unpkg" not in page


def test_the_schema_is_served_as_yaml_and_json(client):
    assert client.get("/api/schema/").status_code == 200
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Signalements API"


def test_the_committed_schema_is_in_english(generated_schema):
    assert "* `acknowledged` - Acknowledged" in generated_schema
    assert "Pris en compte" not in generated_schema


def test_the_served_schema_follows_the_language(client):
    def status_enum(response) -> str:
        return response.json()["components"]["schemas"]["StatusEnum"]["description"]

    french = client.get("/api/schema/?format=json")
    english = client.get("/api/schema/?format=json", HTTP_ACCEPT_LANGUAGE="en")
    asked = client.get("/api/schema/?format=json&lang=en")

    assert "* `acknowledged` - Pris en compte" in status_enum(french)
    assert "* `acknowledged` - Acknowledged" in status_enum(english)
    assert "* `acknowledged` - Acknowledged" in status_enum(asked)


def test_operations_open_to_anonymous_clients_say_so(generated_schema):
    schema = yaml.safe_load(generated_schema)
    open_to_all = {
        (path, method)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if {} in operation.get("security", [])
    }
    assert open_to_all == {
        ("/api/signalements/", "get"),
        ("/api/signalements/", "post"),
        ("/api/signalements/{id}/", "get"),
        ("/api/categories/", "get"),
        ("/api/categories/{code}/", "get"),
        ("/api/signalements/{id}/history/", "get"),
        ("/api/signalements/{id}/comments/", "get"),
        ("/api/signalements/{id}/similar/", "get"),
        ("/api/signalements/{id}/attachments/", "get"),
        ("/api/signalements/stats/", "get"),
        ("/api/auth/token/", "post"),
        ("/api/signalements/{id}/follow/", "post"),
        ("/api/alerts/", "post"),
        ("/api/subscriptions/confirm/{token}/", "get"),
        ("/api/subscriptions/confirm/{token}/", "post"),
        ("/api/subscriptions/unsubscribe/{token}/", "get"),
        ("/api/subscriptions/unsubscribe/{token}/", "post"),
        ("/api/contact/confirm/{token}/", "get"),
        ("/api/contact/confirm/{token}/", "post"),
        ("/api/feedback/{token}/", "get"),
        ("/api/feedback/{token}/", "post"),
        ("/api/departments/", "get"),
        ("/api/departments/{code}/", "get"),
        ("/api/areas/", "get"),
        ("/api/areas/{code}/", "get"),
        ("/api/service-levels/", "get"),
        ("/api/service-levels/{id}/", "get"),
    }


def test_the_api_index_is_open_to_everyone(client):
    response = client.get("/api/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert set(response.json()) == {
        "signalements",
        "categories",
        "webhooks",
        "feedback",
        "departments",
        "areas",
        "service-levels",
        "routing-rules",
        "reply-templates",
    }
