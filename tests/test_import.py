"""Bulk import and export of reports (`import_signalements`, `export_signalements`,
`signalements/bulk_import/`): both formats, bad rows with their lines, dry run,
idempotency, routing, history and data version, the API's errors, the fast checks
against the serializer, a failed write in the writer's thread, the round trip through
the export, and memory that stays flat on a 100 MB file (a real process). Runs on SQLite and PostgreSQL."""

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection
from django.urls import reverse
from django.utils import timezone, translation

from signalements import areas as area_lookup
from signalements import bulk_export, bulk_import, data_version, routing, service_levels
from signalements.models import RoutingRule, ServiceLevel, Signalement

from .factories import (
    AreaFactory,
    CategoryFactory,
    DepartmentFactory,
    ExtraFieldFactory,
    SignalementFactory,
    square,
)
from .live import ON_POSTGRES, live_database, server_environment

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
NOW = timezone.now()


@pytest.fixture
def city(db):
    """Two categories (one with extra fields and a department), a district, a rule
    sending road reports in it to another department at high priority, service levels
    in hours and in working days."""
    roads = DepartmentFactory(code="voirie", name="Voirie")
    north_roads = DepartmentFactory(code="voirie-nord", name="Voirie Nord")
    voirie = CategoryFactory(code="voirie", name="Voirie", department=roads)
    ExtraFieldFactory(category=voirie, code="profondeur_cm", datatype="number")
    ExtraFieldFactory(
        category=voirie,
        code="gene",
        datatype="singlevaluelist",
        choices=[{"key": "faible", "label": "Faible"}, {"key": "forte", "label": "Forte"}],
    )
    lights = CategoryFactory(code="eclairage", name="Éclairage public")
    north = AreaFactory(code="nord", name="Nord", geometry=square(-1.72, 48.10, -1.66, 48.15))
    rule = RoutingRule.objects.create(department=north_roads, order=1, priority="high")
    rule.categories.add(voirie)
    rule.areas.add(north)
    ServiceLevel.objects.create(category=voirie, amount=48, unit="hours")
    ServiceLevel.objects.create(category=lights, amount=3, unit="working_days")
    return {"voirie": voirie, "eclairage": lights, "north": north, "north_roads": north_roads}


def row(n: int, **values) -> dict:
    """A valid row of the import, in JSON."""
    created = NOW - dt.timedelta(days=400, minutes=n)
    return {
        "external_id": f"ancien-{n}",
        "title": "Lampadaire éteint",
        "description": f"Le lampadaire n°{n} de la place Sainte-Anne est éteint, « urgent ».",
        "date": (created - dt.timedelta(hours=3)).isoformat(),
        "created_at": created.isoformat(),
        "category": "eclairage",
        "latitude": "48.111000",
        "longitude": "-1.680000",
        "address": "Place Sainte-Anne, 35000 Rennes",
        "contact_name": "Hélène Lefèvre",
        "contact_email": "helene@example.org",
        "contact_phone": "06 12 34 56 78",
        **values,
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def write_csv(path: Path, rows: list[dict], *, bom: bool = False) -> Path:
    columns = list(dict.fromkeys(name for r in rows for name in r))
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        for r in rows:
            cells = [r.get(name, "") for name in columns]
            writer.writerow([json.dumps(c) if isinstance(c, dict) else c for c in cells])
    return path


def run(path: Path, *args) -> tuple[str, str]:
    """The command's output and errors, in English (what scripts read)."""
    out, err = io.StringIO(), io.StringIO()
    with translation.override("en"):
        call_command("import_signalements", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# Formats ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_both_formats_import_french_text_and_extra_answers(city, tmp_path, fmt):
    rows = [
        row(1),
        row(2, category="voirie", extra={"profondeur_cm": 12, "gene": "forte"}),
        row(3, title="Œuvre dégradée à l’église", latitude="", longitude=""),
    ]
    if fmt == "jsonl":
        del rows[2]["latitude"], rows[2]["longitude"]
        path = write_jsonl(tmp_path / "reports.jsonl", rows)
    else:
        path = write_csv(tmp_path / "reports.csv", rows)

    out, err = run(path)

    assert "imported 3, skipped 0 already imported, rejected 0" in out, err
    first = Signalement.objects.get(external_id="ancien-1")
    assert first.contact_name == "Hélène Lefèvre"
    assert first.description.endswith("« urgent ».")
    assert first.latitude == Decimal("48.111000")
    assert first.created_at == NOW - dt.timedelta(days=400, minutes=1)
    assert Signalement.objects.get(external_id="ancien-2").extra == {
        "profondeur_cm": 12,
        "gene": "forte",
    }
    third = Signalement.objects.get(external_id="ancien-3")
    assert third.title == "Œuvre dégradée à l’église"
    assert third.latitude is None


def test_a_csv_file_saved_by_excel_with_a_bom_is_read(city, tmp_path):
    path = write_csv(tmp_path / "excel.csv", [row(1)], bom=True)
    out, _ = run(path)
    assert "imported 1," in out
    assert Signalement.objects.get().external_id == "ancien-1"  # not "\ufeffexternal_id"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_unknown_column_stops_the_import_before_it_starts(city, tmp_path, fmt):
    rows = [row(1, couleur="rouge"), row(2)]
    writer = write_csv if fmt == "csv" else write_jsonl
    path = writer(tmp_path / f"reports.{fmt}", rows)
    with pytest.raises(CommandError, match="couleur"):
        run(path)
    assert not Signalement.objects.exists()


def test_a_file_that_cannot_be_read_is_an_error(city, tmp_path):
    with pytest.raises(CommandError, match="missing.csv"):
        run(tmp_path / "missing.csv")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("description,date\nÉclairage en panne,2024-01-01T10:00\n".encode("latin-1"))
    with pytest.raises(CommandError, match="(?i)utf-8"):
        run(latin1)
    assert not Signalement.objects.exists()


# Bad rows -----------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [[], ["--batch-size", "2"]], ids=["one batch", "batches of 2"])
def test_bad_rows_are_reported_with_their_line_and_left_out(city, tmp_path, batch):
    """Also in batches of two rows: the bad rows go to the serializer, which reads the
    database while the writer's thread writes the batches before."""
    rows = [
        row(1),
        row(2, description=""),
        row(3, date=(NOW + dt.timedelta(days=2)).isoformat(), category="inconnue"),
        row(4, category="voirie", extra={"gene": "moyenne"}),
        row(5, latitude="48.1"),
        row(6, status="resolved"),
        row(7, status="closed"),
    ]
    del rows[4]["longitude"]
    path = write_csv(tmp_path / "reports.csv", rows)
    errors = tmp_path / "errors.csv"

    out, err = run(path, "--errors", str(errors), *batch)

    assert "imported 1, skipped 0 already imported, rejected 6" in out
    lines = err.splitlines()
    assert "line 3: description: This field is required." in lines
    assert any(line.startswith("line 4: date: ") for line in lines)
    assert any(line.startswith("line 4: category: ") and "inconnue" in line for line in lines)
    assert any(line.startswith("line 5: extra.gene: ") for line in lines)
    assert any(line.startswith("line 6: longitude: ") for line in lines)
    assert any(line.startswith("line 7: resolved_at: ") for line in lines)
    assert any(line.startswith("line 8: status: ") for line in lines)
    with errors.open(encoding="utf-8-sig", newline="") as file:
        written = list(csv.reader(file))
    assert written[0] == ["line", "field", "message"]
    assert ["3", "description", "This field is required."] in written
    assert {line for line, _, _ in written[1:]} == {"3", "4", "5", "6", "7", "8"}
    assert list(Signalement.objects.values_list("external_id", flat=True)) == ["ancien-1"]


def test_a_line_of_a_jsonl_file_that_is_not_an_object_is_a_bad_row(city, tmp_path):
    path = tmp_path / "reports.jsonl"
    path.write_text(json.dumps(row(1)) + "\n\n[1, 2]\n{not json\n" + json.dumps(row(2)) + "\n")
    out, err = run(path)
    assert "imported 2, skipped 0 already imported, rejected 2" in out
    assert "line 3: " in err and "line 4: " in err


def test_a_file_of_bad_rows_only_exits_with_an_error(city, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [row(1, description="")])
    with pytest.raises(CommandError) as raised:
        run(path)
    assert raised.value.returncode == 1


def test_a_dates_resolution_follows_the_workflow(city, tmp_path):
    created = NOW - dt.timedelta(days=10)
    rows = [
        row(1, status="resolved", resolved_at=(created + dt.timedelta(days=1)).isoformat()),
        row(2, status="resolved", resolved_at=(created - dt.timedelta(days=30)).isoformat()),
        row(3, status="in_progress", resolved_at=created.isoformat()),
        row(4, created_at=(NOW + dt.timedelta(days=1)).isoformat()),
    ]
    rows[0]["created_at"] = rows[1]["created_at"] = created.isoformat()
    out, err = run(write_jsonl(tmp_path / "reports.jsonl", rows))
    assert "imported 1, skipped 0 already imported, rejected 3" in out
    assert "line 2: resolved_at: " in err
    assert "line 3: resolved_at: " in err
    assert "line 4: created_at: " in err
    report = Signalement.objects.get()
    assert (report.status, report.resolved_at) == ("resolved", created + dt.timedelta(days=1))


# Dry run and idempotency --------------------------------------------------------------


def test_a_dry_run_checks_everything_and_writes_nothing(city, tmp_path):
    path = write_jsonl(tmp_path / "reports.jsonl", [row(1), row(2, description=""), row(1)])
    version = data_version.current()
    history = Signalement.history.count()

    out, err = run(path, "--dry-run")

    assert "Dry run" in out
    assert "imported 1, skipped 1 already imported, rejected 1" in out
    assert "line 2: description: " in err
    assert not Signalement.objects.exists()
    assert Signalement.history.count() == history
    assert data_version.current() == version


def test_importing_the_same_file_twice_imports_nothing_twice(city, tmp_path):
    rows = [row(1), row(2), row(1, title="Doublon dans le fichier"), row(3, external_id="")]
    path = write_csv(tmp_path / "reports.csv", rows)

    first, _ = run(path, "--batch-size", "2")
    second, _ = run(path, "--batch-size", "2")

    assert "imported 3, skipped 1 already imported, rejected 0" in first
    # A row without external_id cannot be recognised: it is imported each time.
    assert "imported 1, skipped 3 already imported, rejected 0" in second
    assert Signalement.objects.filter(external_id="ancien-1").get().title == "Lampadaire éteint"
    assert Signalement.objects.filter(external_id=None).count() == 2


# Routing, history, data version ------------------------------------------------------


def test_imported_reports_are_routed_as_a_create_through_the_api(city, tmp_path):
    rows = [
        row(1, category="voirie"),  # in the north district: the rule
        row(2, category="voirie", latitude="48.000000"),  # outside: the category's
        row(3, category="eclairage"),  # no department; 3 working days
        row(4, category="voirie", department="voirie", priority="low"),  # named: kept
    ]
    run(write_jsonl(tmp_path / "reports.jsonl", rows))

    for report in Signalement.objects.select_related("category", "department"):
        dry_run = routing.explain(report)
        assert [a.pk for a in dry_run.areas] == [a.pk for a in report.areas.all()]
        due = service_levels.due_at(report.category_id, report.priority, report.created_at)
        assert report.due_at == due
        if report.external_id != "ancien-4":
            assert report.department == dry_run.match.department
    routed = {r.external_id: r for r in Signalement.objects.select_related("department")}
    assert (routed["ancien-1"].department.code, routed["ancien-1"].priority) == (
        "voirie-nord",
        "high",
    )
    assert routed["ancien-1"].area_codes == ["nord"]
    assert (routed["ancien-2"].department.code, routed["ancien-2"].priority) == ("voirie", "normal")
    assert routed["ancien-3"].department is None
    assert (routed["ancien-4"].department.code, routed["ancien-4"].priority) == ("voirie", "low")


def test_the_bulk_due_dates_are_those_of_the_service_levels(city, settings):
    ServiceLevel.objects.create(category=city["voirie"], priority="urgent", amount=4)
    router = bulk_import.BulkRouter("note")
    starts = [
        dt.datetime(2026, 12, 24, 14, 0, tzinfo=dt.UTC),  # Christmas, then a weekend
        dt.datetime(2027, 3, 27, 23, 30, tzinfo=dt.UTC),  # the night clocks change
        dt.datetime(2016, 2, 29, 8, 15, 30, 123456, tzinfo=dt.UTC),
    ]
    for category in [city["voirie"], city["eclairage"], CategoryFactory(code="sans-delai")]:
        for priority in ["normal", "urgent"]:
            for start in starts:
                expected = service_levels.due_at(category.pk, priority, start)
                assert router.due_at(category.pk, priority, start) == expected
    settings.SIGNALEMENT_OVERDUE_DAYS = 0
    assert bulk_import.BulkRouter("note").due_at(None, "normal", starts[0]) is None


def test_the_area_index_finds_the_areas_that_containing_finds(city):
    """`areas.AreaIndex.containing_many()` (the import's) against `areas.containing()`
    (a create's): inside, on the boundary, in a hole, outside, without coordinates; an
    overlapping area and an inactive one."""
    ring = square(-1.70, 48.11, -1.60, 48.20)["coordinates"][0]
    hole = square(-1.66, 48.14, -1.64, 48.16)["coordinates"][0]
    AreaFactory(
        code="anneau", name="Anneau", geometry={"type": "Polygon", "coordinates": [ring, hole]}
    )
    AreaFactory(
        code="fermee", name="Fermée", geometry=square(-1.8, 48.0, -1.5, 48.3), is_active=False
    )
    points = [
        (Decimal("48.120000"), Decimal("-1.690000")),  # in both
        (Decimal("48.150000"), Decimal("-1.650000")),  # in the hole: in neither
        (Decimal("48.160000"), Decimal("-1.660000")),  # on the hole's corner: in the ring
        (Decimal("48.110000"), Decimal("-1.700000")),  # on a corner of both
        (Decimal("47.000000"), Decimal("-1.690000")),  # nowhere
        (None, None),
    ]
    found = area_lookup.AreaIndex().containing_many(points)
    expected = [area_lookup.containing(lat, lon) for lat, lon in points]
    assert [[a.code for a in areas] for areas in found] == [
        [a.code for a in areas] for areas in expected
    ]
    assert [len(areas) for areas in found] == [2, 0, 1, 2, 0, 0]


def test_batches_end_at_their_row_count_or_their_share_of_the_file(city, tmp_path):
    """A batch of long rows ends before its row count, so that memory does not depend
    on the rows' length."""
    path = write_jsonl(
        tmp_path / "reports.jsonl", [row(n, description="x" * 3000) for n in range(1000)]
    )
    by_rows = [len(b) for b in bulk_import.batches(bulk_import.open_source(path), 300)]
    assert by_rows == [300, 300, 300, 100]
    by_bytes = [len(b) for b in bulk_import.batches(bulk_import.open_source(path), 300, 500_000)]
    assert by_bytes == [256] * 3 + [232]
    assert sum(by_bytes) == 1000


def refuse_the_title(title: str) -> None:
    """A trigger of the database's own refusing reports of this title (as a constraint
    a database administrator added would): rolled back with the test. The title is
    written into the SQL (triggers take no parameters): a constant of the test."""
    table = Signalement._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN NEW.title = '{title}' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.title = '{title}' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse()"
            )


def test_a_failed_write_stops_the_import_and_keeps_the_batches_before(city, tmp_path):
    """The writer's thread fails on the second batch: the error reaches the caller, the
    first batch stays imported, nothing after it is."""
    refuse_the_title("Refusé")
    rows = [row(n) for n in range(1, 9)]
    rows[3]["title"] = "Refusé"
    path = write_jsonl(tmp_path / "reports.jsonl", rows)

    with pytest.raises(DatabaseError, match="refused"):
        bulk_import.import_file(path, batch_size=2)

    assert sorted(Signalement.objects.values_list("external_id", flat=True)) == [
        "ancien-1",
        "ancien-2",
    ]
    assert Signalement.history.count() == 2


def test_the_creation_is_in_the_history_and_the_data_version_grew(
    city, tmp_path, api_client, agent_client
):
    before = data_version.current()
    run(write_jsonl(tmp_path / "reports.jsonl", [row(1, category="voirie")]))
    report = Signalement.objects.get()

    record = report.history.get()
    assert (record.history_type, record.history_date) == ("+", report.created_at)
    assert "reports.jsonl" in record.history_change_reason
    assert data_version.current() > before

    url = reverse("signalement-history", args=[report.pk])
    public = api_client.get(url).json()
    assert [entry["kind"] for entry in public] == ["created"]
    agents = agent_client.get(url).json()
    assert agents[0]["kind"] == "created"
    assert "Voirie Nord" in agents[0]["note"]


# The API's rules ----------------------------------------------------------------------

BAD_REPORTS = [
    {"description": "", "date": "hier"},
    {"description": "x" * 4001, "date": "2024-01-01T10:00:00", "title": 12},
    {"description": "Trou", "date": "2024-01-01", "latitude": "91", "longitude": "abc"},
    {"description": "Trou", "date": "2024-01-01T10:00", "latitude": "48.1"},
    {"description": "Trou\x00", "date": "2024-01-01T10:00", "contact_email": "pas-un-courriel"},
    {"description": "Trou", "date": "2024-01-01T10:00", "category": "voirie", "extra": {"x": 1}},
    {"description": "Trou", "date": "2024-01-01T10:00", "category": "voirie", "extra": []},
    {"description": "Trou", "date": "2024-01-01T10:00", "media_url": "ftp://example.org/a.jpg"},
    {"date": "2999-01-01T10:00", "category": "fermée", "extra": {"gene": "forte"}},
]


@pytest.mark.parametrize("body", BAD_REPORTS)
def test_a_bad_row_gets_the_errors_the_api_gives(city, tmp_path, api_client, body):
    answer = api_client.post(reverse("signalement-list"), body, format="json")
    assert answer.status_code == 400
    api = sorted((error["attr"], error["detail"]) for error in answer.json()["errors"])

    problems = []
    path = write_jsonl(tmp_path / "bad.jsonl", [body])
    bulk_import.import_file(path, on_problem=problems.append)

    assert sorted((p.field, p.message) for p in problems) == api
    assert {p.line for p in problems} == {1}
    assert not Signalement.objects.exists()


def reference(data: dict) -> dict | None:
    serializer = bulk_import.ImportSerializer(data=data, context={"now": timezone.now()})
    return dict(serializer.validated_data) if serializer.is_valid() else None


VALUES = {
    "title": ["", "  Titre  ", "é" * 200, "é" * 201, 12, None, "a\x00b", "\ud800", "\t"],
    "description": ["x", " x ", "x" * 4000, "x" * 4001, "", "   ", 1.5, True, ["x"]],
    "date": [
        "2024-03-31T02:30:00",  # skipped by the change of clock in Paris
        "2024-10-27T02:30:00",  # twice
        "2024-01-01T10:00:00.123456Z",
        "2024-01-01 10:00",
        "1905-06-01T12:00:00",
        "0001-01-01T00:00:00",
        "2024-02-30T10:00:00",
        "20240101T100000",
        "2024-01-01",
        (NOW + dt.timedelta(seconds=100)).isoformat(),
        (NOW + dt.timedelta(days=1)).isoformat(),
        "",
        1700000000,
    ],
    "latitude": ["48.1", "48.1234567", "-90", "90.000001", "1e1", " 48.1 ", 48.25, 48, True, ""],
    "contact_email": [
        "a@b.fr",
        "a.b+c@d-e.example.org",
        "a..b@example.org",
        "a@localhost",
        "é@example.org",
        "a@-b.org",
        "A@B.CO",
        "",
    ],
    "status": ["new", "resolved", "New", "", 1, ["new"]],
    "is_public": ["true", "false", "1", "0", "yes", "oui", True, 0, 2],
    "category": ["voirie", "eclairage", "fermée", "VOIRIE", "", 3],
    "department": ["voirie", "voirie-nord", "aucun", None],
    "extra": [{}, {"gene": "forte"}, {"gene": "x"}, {"profondeur_cm": "3"}, [], "{}"],
    "external_id": ["A-1", " A-1 ", "", "x" * 101, 7],
}


def test_the_fast_checks_accept_only_what_the_serializer_accepts_and_alike(city):
    CategoryFactory(code="fermee", is_active=False)
    validator = bulk_import.RowValidator()
    base = {"description": "Trou", "date": "2024-01-01T10:00:00", "category": "voirie"}
    for name, values in VALUES.items():
        for value in values:
            data = {**base, name: value}
            if name in ("latitude",):
                data["longitude"] = "-1.5"
            fast = validator.fast(data)
            expected = reference(data)
            if fast is not None:
                assert expected is not None, (name, value)
                assert fast == expected, (name, value)
            verdict, errors = validator.validate(data)
            assert (verdict is None) == (expected is None), (name, value)
            assert bool(errors) == (expected is None), (name, value)


def test_the_usual_rows_take_the_fast_checks(city):
    validator = bulk_import.RowValidator()
    data = row(1, category="voirie", extra={"gene": "forte"}, status="acknowledged")
    data.update(is_public="false", department="voirie", priority="high")
    assert validator.fast(data) == reference(data)
    assert validator.fast(data) is not None


# Export and round trip ----------------------------------------------------------------


def test_the_export_imported_into_an_empty_database_gives_the_same_reports(city, tmp_path):
    resolved_at = NOW - dt.timedelta(days=3, microseconds=7)
    SignalementFactory(category=city["voirie"], extra={"gene": "faible", "profondeur_cm": 2.5})
    SignalementFactory(category=city["eclairage"], latitude=None, longitude=None, title="")
    SignalementFactory(
        category=None,
        status="resolved",
        created_at=resolved_at - dt.timedelta(days=5),
        resolved_at=resolved_at,
        is_public=False,
        priority="urgent",
        contact_email="",
        media_url="https://example.org/photo.jpg",
    )
    routed = SignalementFactory(category=city["voirie"], external_id="ancien-9")
    assert routed.department == city["north_roads"]
    # Every column of the file (but the id of the other system), and what routing sets.
    fields = [
        Signalement._meta.get_field(name).attname
        for name in bulk_import.COLUMNS
        if name != "external_id"
    ] + ["due_at"]

    def snapshot():
        return {
            bulk_export.external_id_of(r.external_id, r.uuid): (
                [getattr(r, name) for name in fields],
                r.area_codes,
            )
            for r in Signalement.objects.prefetch_related("areas")
        }

    before = snapshot()
    path = tmp_path / "all.jsonl"
    call_command("export_signalements", str(path), stderr=io.StringIO())
    Signalement.objects.all().delete()

    out, err = run(path)
    again, _ = run(path)

    assert "imported 4, skipped 0 already imported, rejected 0" in out, err
    assert "imported 0, skipped 4 already imported, rejected 0" in again
    assert snapshot() == before
    exported = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [list(r) for r in exported] == [list(bulk_import.COLUMNS)] * 4


def test_the_export_writes_to_stdout_and_says_it_holds_personal_data(city, capsysbinary):
    SignalementFactory(category=city["voirie"], contact_name="Zoé")
    call_command("export_signalements", "-")
    line = capsysbinary.readouterr().out.decode()
    assert json.loads(line)["contact_name"] == "Zoé"
    help_text = subprocess.run(
        [sys.executable, "manage.py", "export_signalements", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=server_environment("sqlite:///unused.sqlite3"),
        check=True,
    ).stdout
    assert "PERSONAL DATA" in help_text


# Memory -------------------------------------------------------------------------------


def generate(path: Path, megabytes: int) -> int:
    """A JSONL file of about `megabytes` MB: rows with long descriptions (so that the
    file is large while the import stays within the test's time). Returns its rows."""
    filler = "La chaussée est déformée sur toute la largeur de la rue. " * 30
    count = 0
    with path.open("w", encoding="utf-8") as file:
        while file.tell() < megabytes * 1_000_000:
            data = row(count, description=f"{count} {filler}")
            del data["category"]  # the process's database has none
            file.write(json.dumps(data, ensure_ascii=False))
            file.write("\n")
            count += 1
    return count


def peak_rss_kib(database_url: str, path: Path, tmp_path: Path) -> int:
    """The import run as a process of its own; its peak resident memory (KiB)."""
    with (tmp_path / "out.txt").open("w+") as out, (tmp_path / "err.txt").open("w+") as err:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "import_signalements", str(path)],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            env=server_environment(database_url, LANGUAGE_CODE="en"),  # what scripts read
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        assert "rejected 0" in out.read(), err.read()[-2000:]
    return usage.ru_maxrss


def test_memory_stays_flat_on_a_100_mb_file(tmp_path):
    """A 100 MB file against one of 25 MB, each imported by a process of its own into a
    database of its own (SQLite's page cache of the import, 32 MiB at most, is filled
    by both)."""
    kind = "postgresql" if ON_POSTGRES else "sqlite"
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    rows = generate(small, 25), generate(large, 100)
    peaks = []
    for path in (small, large):
        with live_database(kind, tmp_path) as url:
            peaks.append(peak_rss_kib(url, path, tmp_path))
        if kind == "sqlite":
            (tmp_path / "live.sqlite3").unlink()
    assert rows[1] > 3.5 * rows[0]
    assert peaks[1] < 1.2 * peaks[0], peaks
