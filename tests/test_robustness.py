"""Regressions found by fuzzing: each of these inputs once gave a 500 or a response
that broke the schema (most only on PostgreSQL)."""

import base64
import re

import pytest
from django.urls import reverse

from .factories import SignalementFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("signalement-list")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def test_a_date_before_standard_time_is_returned_as_valid_rfc3339(api_client):
    # Paris's local mean time before 1911 is +00:09:21, which RFC 3339 cannot write.
    response = api_client.post(
        LIST_URL, {"description": "Vieux", "date": "1900-01-01T00:00:00Z"}, format="json"
    )

    assert response.status_code == 201
    assert RFC3339.match(response.json()["date"]), response.json()["date"]
    listed = api_client.get(LIST_URL).json()["results"][0]["date"]
    assert RFC3339.match(listed), listed


def test_basic_credentials_with_a_nul_byte_are_refused_not_crashed(api_client):
    token = base64.b64encode(b"\x00admin:pw").decode()

    response = api_client.get(reverse("category-list"), HTTP_AUTHORIZATION=f"Basic {token}")

    assert response.status_code == 401


def test_a_session_cookie_with_a_nul_byte_is_no_session(client):
    client.cookies["sessionid"] = "abcdefgh\x00ijk"

    assert client.get(LIST_URL).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"created_after": "2020-01-01T00:00:00+16:00"},
        {"date_before": "2020-01-01T00:00:00-19:22"},
        {"ordering": "id,"},
        {"ordering": ","},
        {"in_bbox": "0,0,1e-100000,1"},
    ],
)
def test_edge_case_query_parameters_are_answered(api_client, params):
    SignalementFactory()

    assert api_client.get(LIST_URL, params).status_code == 200


def test_a_page_number_of_a_thousand_digits_is_a_documented_400(api_client):
    response = api_client.get(LIST_URL, {"page": "9" * 1001})

    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "code": "max_string_length",
        "detail": "Chaîne de caractères trop longue.",  # DRF's French
        "attr": "page",
    }
