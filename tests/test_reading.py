"""The lean read path (signalements/api/reading.py) answers the report list and detail
with exactly DRF's bytes: the same request is sent twice, once with the lean path and
once with `SignalementViewSet.lean_path` off (DRF's serializers and renderer), for
every role, several time zones, both formats, pages and filters, over reports that
exercise every field."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test.utils import override_settings
from knox.models import AuthToken
from rest_framework.test import APIClient

from signalements import reporter_tokens
from signalements.api import reading
from signalements.api.views import SignalementViewSet
from signalements.models import Signalement

from .factories import (
    AreaFactory,
    AttachmentFactory,
    CategoryFactory,
    DepartmentFactory,
    ExtraFieldFactory,
    SignalementFactory,
    UserFactory,
    square,
)
from .test_representation import reports  # noqa: F401  (the varied reports fixture)

pytestmark = pytest.mark.django_db
represent = reading.represent


@pytest.fixture
def more_reports(reports):  # noqa: F811
    """Beyond `reports`: a hidden original, a token holder's report, text with U+2028,
    coordinates near zero, and numbers that only Python's json writes as DRF does."""
    owner = UserFactory(username="owner")
    hidden = SignalementFactory(is_public=False, reporter=owner, title="Caché")
    SignalementFactory(duplicate_of=hidden, description="Ligne\u2028suivante\u2029fin")
    token, stored = reporter_tokens.issue()
    anonymous = SignalementFactory(is_public=False, reporter=None, **stored)
    SignalementFactory(latitude=Decimal("0.000010"), longitude=Decimal("-0.000001"))
    category = CategoryFactory(code="mesures")
    ExtraFieldFactory(category=category, code="value", datatype="number")
    SignalementFactory(category=category, extra={"value": 1e20})
    SignalementFactory(category=category, extra={"value": 3})
    SignalementFactory(
        date=dt.datetime(2025, 3, 30, 0, 59, 59, tzinfo=dt.UTC), title="Avant l'heure d'été"
    )
    # Nepal went from +05:30 to +05:45 at 18:30 UTC: within a UTC hour.
    SignalementFactory(
        date=dt.datetime(1985, 12, 31, 18, 45, tzinfo=dt.UTC), title="Changement d'heure"
    )
    # Routed: a department, two areas (their codes sorted), a due date, kept by hand.
    north = DepartmentFactory(code="voirie-nord", name="Voirie Nord")
    AreaFactory(code="nord", name="Nord", geometry=square(-1.70, 48.11, -1.60, 48.20))
    AreaFactory(code="centre-ville", name="Centre", geometry=square(-1.69, 48.10, -1.66, 48.13))
    routed = SignalementFactory(latitude=Decimal("48.12"), longitude=Decimal("-1.68"))
    assert routed.area_codes == ["centre-ville", "nord"]
    Signalement.objects.filter(pk=routed.pk).update(department=north, keep_routing=True)
    return {"owner": owner, "token": token, "anonymous_report": anonymous, "hidden": hidden}


def clients(more_reports):
    agent = UserFactory(is_superuser=True, username="admin-r")
    owner = more_reports["owner"]
    other = UserFactory(username="other-r")
    with_token = APIClient()
    with_token.credentials(HTTP_X_REPORTER_TOKEN=more_reports["token"])
    result = {"anonymous": APIClient(), "token holder": with_token}
    for name, user in (("agent", agent), ("owner", owner), ("other reporter", other)):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
        result[name] = client
    return result


def both_ways(client, path, monkeypatch, **extra):
    """The response of the lean path, which must have read the reports itself, and
    DRF's, which must not have."""
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        return represent(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(reading, "represent", spy)
        lean = client.get(path, **extra)
        lean_calls = len(calls)
        patch.setattr(SignalementViewSet, "lean_path", False)
        drf = client.get(path, **extra)
    if lean.status_code == 200:
        assert lean_calls == len(calls) == 1, path
    return lean, drf


PATHS = [
    "/api/signalements/",
    "/api/signalements/?page_size=3&page=2",
    "/api/signalements/?ordering=priority&page_size=100",
    "/api/signalements/?status=resolved,new&search=lampadaire",
    "/api/signalements/?format=geojson",
    "/api/signalements/?in_bbox=-2,48,0,49&format=geojson&page_size=2",
]


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "UTC", "Asia/Kathmandu"])
def test_lists_are_drfs_bytes_for_every_role(more_reports, monkeypatch, zone):
    with override_settings(TIME_ZONE=zone):
        for role, client in clients(more_reports).items():
            for path in PATHS:
                lean, drf = both_ways(client, path, monkeypatch)
                assert lean.status_code == drf.status_code == 200, (role, path)
                assert lean["Content-Type"] == drf["Content-Type"], (role, path)
                assert lean.content == drf.content, (role, path)


def test_details_are_drfs_bytes_for_every_role(more_reports, monkeypatch):
    ids = list(Signalement.objects.values_list("pk", flat=True)) + [999_999, "abc"]
    for role, client in clients(more_reports).items():
        for pk in ids:
            lean, drf = both_ways(client, f"/api/signalements/{pk}/", monkeypatch)
            assert lean.status_code == drf.status_code, (role, pk)
            assert lean["Content-Type"] == drf["Content-Type"], (role, pk)
            assert lean.content == drf.content, (role, pk)


def test_the_visibility_of_the_lean_detail(more_reports):
    """Spelled out, beyond "the same as DRF": who gets a hidden report and its contact."""
    hidden = more_reports["hidden"]
    mine = more_reports["anonymous_report"]
    everyone = clients(more_reports)
    expected = {
        "anonymous": (404, 404),
        "token holder": (404, 200),
        "agent": (200, 200),
        "owner": (200, 404),
        "other reporter": (404, 404),
    }
    for role, client in everyone.items():
        statuses = tuple(
            client.get(f"/api/signalements/{report.pk}/").status_code for report in (hidden, mine)
        )
        assert statuses == expected[role], role
    body = everyone["token holder"].get(f"/api/signalements/{mine.pk}/").json()
    assert body["contact_email"] == mine.contact_email


def test_numbers_json_alone_writes_right_take_drfs_renderer(more_reports):
    """1e20 is `1e+20` in Python's json and `1e20` in orjson (SQLite keeps it a float;
    PostgreSQL's jsonb gives back the integer 100000000000000000000, beyond orjson's 64
    bits); 0.00001 is `1e-05` and `0.00001`: the responses holding them are rendered by
    DRF (and are the same bytes, checked above)."""
    body = APIClient().get("/api/signalements/?page_size=100").content
    assert b'"value":1e+20' in body or b'"value":100000000000000000000' in body
    assert b'"latitude":1e-05' in body


def test_a_page_reads_its_reports_in_a_constant_number_of_queries(django_assert_num_queries):
    AreaFactory(code="centre")  # where the reports lie
    for number in range(30):
        report = SignalementFactory(title=f"Rapport {number}")
        AttachmentFactory(signalement=report)
    client = APIClient()
    for size in (5, 30):
        with django_assert_num_queries(4):  # the count, the page's reports, photos, areas
            assert len(client.get(f"/api/signalements/?page_size={size}").json()["results"]) == size
        # Filtered (on the reports' columns, or through their areas): the same four.
        for filters in ("status=new", "area=centre"):
            with django_assert_num_queries(4):
                path = f"/api/signalements/?page_size={size}&{filters}"
                assert len(client.get(path).json()["results"]) == size
    with django_assert_num_queries(3):  # the report, its photos, its areas
        assert client.get(f"/api/signalements/{report.pk}/").status_code == 200


def test_the_current_time_zone_is_used(more_reports):
    report = SignalementFactory(date=dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC))
    with override_settings(TIME_ZONE="Asia/Kathmandu"):
        body = APIClient().get(f"/api/signalements/{report.pk}/").json()
    assert body["date"] == "2025-01-01T17:45:00+05:45"


def test_who_sees_what_is_decided_by_get_queryset_alone(monkeypatch):
    """The lean path takes the viewset's scoping as it is (its WHERE clause), for the
    list and the detail: narrowing `get_queryset` narrows both."""
    kept, dropped = SignalementFactory(title="Gardé"), SignalementFactory(title="Écarté")
    original = SignalementViewSet.get_queryset
    monkeypatch.setattr(
        SignalementViewSet, "get_queryset", lambda self: original(self).filter(title="Gardé")
    )
    client = APIClient()
    assert [item["id"] for item in client.get("/api/signalements/").json()["results"]] == [kept.pk]
    assert client.get(f"/api/signalements/{kept.pk}/").status_code == 200
    assert client.get(f"/api/signalements/{dropped.pk}/").status_code == 404
    listed = client.get("/api/signalements/?status=new").json()["results"]
    assert [item["id"] for item in listed] == [kept.pk]


def _comparable(response, before: int):
    """A create's answer without what differs from one report to the next (and without
    the reports created by the test itself among the possible duplicates)."""
    body = dict(response.json())
    for name in ("id", "uuid", "reference", "created_at", "updated_at", "due_at", "reporter_token"):
        body.pop(name)
    body.pop("reporter_token_expires_at")
    body["possible_duplicates"] = [
        item for item in body["possible_duplicates"] if item["id"] <= before
    ]
    return list(body.items())


def test_the_lean_create_answers_as_drf(more_reports, monkeypatch):
    category = CategoryFactory(code="voirie-x")
    ExtraFieldFactory(category=category, code="depth", datatype="number")
    nearby = SignalementFactory(
        category=category, latitude=Decimal("48.1"), longitude=Decimal("-1.6")
    )
    payloads = [
        {"description": "Panne électrique", "date": "2025-04-29T16:30:00"},
        {
            "description": "Nid-de-poule\u2028profond",
            "date": "2025-04-29T16:30:00+02:00",
            "title": "Trou",
            "category": "voirie-x",
            "extra": {"depth": 12.5},
            "latitude": 48.1000001,
            "longitude": -1.6,
            "contact_email": "moi@example.org",
            "priority": "urgent",
        },
    ]
    for role, client in clients(more_reports).items():
        for payload in payloads:
            lean = client.post("/api/signalements/", payload, format="json")
            with monkeypatch.context() as patch:
                patch.setattr(SignalementViewSet, "lean_path", False)
                drf = client.post("/api/signalements/", payload, format="json")
            assert lean.status_code == drf.status_code == 201, (role, lean.json())
            assert lean["Content-Type"] == drf["Content-Type"]
            assert lean.get("Cache-Control") == drf.get("Cache-Control")
            assert _comparable(lean, nearby.pk) == _comparable(drf, nearby.pk), role
            if "category" in payload:  # the nearby report is found both ways
                assert [item["id"] for item in lean.json()["possible_duplicates"]] == [nearby.pk]
            # The next comparison starts from the same reports.
            Signalement.objects.filter(pk__in=[lean.json()["id"], drf.json()["id"]]).delete()


def test_a_create_writes_the_report_and_its_history_in_one_transaction(
    django_assert_num_queries,
):
    """Anonymous, the contract's payload: the report and its history row in one
    transaction (here a savepoint, in the test's transaction; BEGIN … COMMIT in
    production), the data version bumped by the database's trigger within it, then the
    report read back for the answer (no photos looked for): no query twice. Routing checks
    that the routing rules it keeps are current (a report without category nor place may
    match a rule that names neither); the webhooks' outbox asks, in the transaction, which
    endpoints listen (none here)."""
    body = {"description": "Panne électrique", "date": "2025-04-29T16:30:00"}
    APIClient().post("/api/signalements/", body, format="json")  # the rules read once
    with django_assert_num_queries(7) as captured:
        response = APIClient().post(
            "/api/signalements/",
            {"description": "Panne électrique", "date": "2025-04-29T16:30:00"},
            format="json",
        )
    assert response.status_code == 201
    statements = [query["sql"] for query in captured.captured_queries]
    assert len(set(statements)) == len(statements)
    assert statements[0].startswith("SAVEPOINT") and statements[5].startswith("RELEASE")
    assert '"signalements_routingrule"' in statements[1]
    assert '"signalements_webhookendpoint"' in statements[4]
    assert [sql.split()[2] for sql in statements[2:4]] == [
        '"signalements_signalement"',
        '"signalements_historicalsignalement"',
    ]


def test_local_offsets_are_taken_by_the_hour_only_when_constant_in_it():
    from zoneinfo import ZoneInfo

    paris, kathmandu = ZoneInfo("Europe/Paris"), ZoneInfo("Asia/Kathmandu")
    assert reading._local_hour(paris, "2025-03-30 00")[1] == (dt.timedelta(hours=1), "+01:00")
    assert reading._local_hour(paris, "2025-03-30 01")[1] == (dt.timedelta(hours=2), "+02:00")
    assert reading._local_hour(ZoneInfo("UTC"), "2025-03-30 01")[1] == (dt.timedelta(0), "Z")
    # Paris before 1911 (+00:09:21): DateTimeField writes the offset, the storable field UTC.
    storable, plain = reading._local_hour(paris, "1900-06-01 12")
    assert plain[1] == "+00:09:21" and storable == (dt.timedelta(0), "Z")
    assert reading._local_hour(kathmandu, "1985-12-31 18") is None  # changes at 18:30
