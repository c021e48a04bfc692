"""Areas: which areas a report lies in (boundary included, holes excluded), alike on
SQLite and PostgreSQL; their import from GeoJSON (`manage.py import_areas`), the
reports' areas recomputed when areas change, the admin's area screen, and the demo
file of Rennes districts."""

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone, translation
from shapely.geometry import shape

from signalements import areas
from signalements.models import Area, Department, Signalement

from .factories import CategoryFactory, SignalementFactory

pytestmark = pytest.mark.django_db

DEMO_FILE = (
    Path(__file__).resolve().parent.parent / "signalements" / "demo" / "rennes-districts.geojson"
)
LIST_URL = reverse("signalement-list")


def square(west, south, east, north) -> list:
    """A counterclockwise ring."""
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


WEST = {"type": "Polygon", "coordinates": [square(-1.70, 48.10, -1.66, 48.12)]}
EAST = {"type": "Polygon", "coordinates": [square(-1.66, 48.10, -1.62, 48.12)]}
# Two parts: a square with a square hole in its middle, and a smaller square apart.
HOLED = {
    "type": "MultiPolygon",
    "coordinates": [
        [square(-1.70, 48.08, -1.66, 48.095), square(-1.69, 48.085, -1.67, 48.09)[::-1]],
        [square(-1.65, 48.08, -1.64, 48.09)],
    ],
}
BOWTIE = {
    "type": "Polygon",
    "coordinates": [
        [[-1.70, 48.10], [-1.66, 48.12], [-1.66, 48.10], [-1.70, 48.12], [-1.70, 48.10]]
    ],
}


def create_report(client, latitude: str, longitude: str) -> Signalement:
    """A report filed through the REST API at this place."""
    response = client.post(
        LIST_URL,
        {
            "description": "Nid-de-poule au milieu de la chaussée.",
            "date": (timezone.now() - timedelta(hours=1)).isoformat(),
            "latitude": latitude,
            "longitude": longitude,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return Signalement.objects.get(pk=response.json()["id"])


def codes(report: Signalement) -> set[str]:
    return set(report.areas.values_list("code", flat=True))


@pytest.fixture
def districts(db):
    return {
        "west": Area.objects.create(code="west", name="Ouest", geometry=WEST),
        "east": Area.objects.create(code="east", name="Est", geometry=EAST),
        "holed": Area.objects.create(code="holed", name="Troué", geometry=HOLED),
    }


# Which areas a report lies in ------------------------------------------------------------


@pytest.mark.parametrize(
    "latitude, longitude, expected",
    [
        ("48.110000", "-1.680000", {"west"}),  # inside
        ("48.110000", "-1.660000", {"west", "east"}),  # on the shared edge: in both
        ("48.120000", "-1.660000", {"west", "east"}),  # on the shared corner
        ("48.100000", "-1.690000", {"west"}),  # on the outer edge
        ("48.087500", "-1.680000", set()),  # in the MultiPolygon's hole
        ("48.085000", "-1.680000", {"holed"}),  # on the hole's edge: boundary, so in
        ("48.082000", "-1.680000", {"holed"}),  # in the first part, around the hole
        ("48.085000", "-1.645000", {"holed"}),  # in the second part
        ("48.085000", "-1.655000", set()),  # between the two parts
        ("48.130000", "-1.680000", set()),  # north of everything
    ],
)
def test_a_report_filed_through_the_api_gets_the_areas_that_cover_its_place(
    api_client, districts, latitude, longitude, expected
):
    report = create_report(api_client, latitude, longitude)

    assert codes(report) == expected


def test_a_report_without_a_place_has_no_area(api_client, districts):
    response = api_client.post(
        LIST_URL,
        {"description": "Panne électrique", "date": "2025-04-29T16:30:00"},
        format="json",
    )

    assert response.status_code == 201
    assert not Signalement.objects.get(pk=response.json()["id"]).areas.exists()


def test_an_inactive_area_contains_nothing(api_client, districts):
    districts["west"].is_active = False
    districts["west"].save()

    report = create_report(api_client, "48.110000", "-1.660000")

    assert codes(report) == {"east"}


def test_moving_a_report_recomputes_its_areas(districts):
    report = SignalementFactory(latitude=Decimal("48.110000"), longitude=Decimal("-1.680000"))
    assert codes(report) == {"west"}
    report = Signalement.objects.get(pk=report.pk)

    report.longitude = Decimal("-1.645000")
    report.save()

    assert codes(report) == {"east"}


def test_containing_is_one_query_once_the_shapes_are_prepared(districts, django_assert_num_queries):
    areas.containing(48.11, -1.66)  # the shapes prepared, now or by an earlier test

    with django_assert_num_queries(1):
        found = areas.containing(Decimal("48.110000"), Decimal("-1.660000"))

    assert [area.code for area in found] == ["east", "west"]  # by kind, then name
    assert areas.containing(None, -1.66) == []


def test_containing_reads_the_geometries_it_has_not_prepared_in_one_query(
    districts, django_assert_num_queries
):
    areas._shapes.clear()

    with django_assert_num_queries(2):
        found = areas.containing(48.11, -1.66)

    assert {area.code for area in found} == {"west", "east"}


def test_a_reshaped_area_is_not_read_from_the_old_prepared_shape(districts):
    assert {area.code for area in areas.containing(48.11, -1.68)} == {"west"}
    west = districts["west"]

    west.geometry = {"type": "Polygon", "coordinates": [square(-1.70, 48.10, -1.69, 48.12)]}
    west.save()

    assert areas.containing(48.11, -1.68) == []


# reassign ----------------------------------------------------------------------------------


def test_reassign_links_and_unlinks_the_reports_of_changed_areas_only(districts):
    inside = SignalementFactory(latitude=Decimal("48.110000"), longitude=Decimal("-1.650000"))
    elsewhere = SignalementFactory(latitude=Decimal("48.110000"), longitude=Decimal("-1.680000"))
    nowhere = SignalementFactory(latitude=None, longitude=None)
    assert codes(inside) == {"east"} and codes(elsewhere) == {"west"}
    department = Department.objects.create(code="voirie-nord", name="Voirie Nord")
    Signalement.objects.filter(pk=inside.pk).update(department=department)
    version = Signalement.objects.get(pk=inside.pk).version
    east = districts["east"]

    # East now also covers the west square; it no longer covers its own.
    east.geometry = {"type": "Polygon", "coordinates": [square(-1.70, 48.10, -1.66, 48.12)]}
    east.save()
    changed = areas.reassign([east], batch_size=1)

    assert changed == 2
    assert codes(inside) == set()
    assert codes(elsewhere) == {"west", "east"}  # west kept: only east's links change
    assert codes(nowhere) == set()
    inside.refresh_from_db()
    assert inside.department == department  # not routed again
    assert inside.version > version  # its representation changed: a new ETag
    assert areas.reassign([east]) == 0  # nothing left to do


def test_reassign_unlinks_the_reports_of_a_deactivated_area(districts):
    report = SignalementFactory(latitude=Decimal("48.110000"), longitude=Decimal("-1.660000"))
    west = districts["west"]
    west.is_active = False
    west.save()

    assert areas.reassign([west]) == 1
    assert codes(report) == {"east"}


# manage.py import_areas ------------------------------------------------------------------


def feature(code, name, geometry, **properties) -> dict:
    return {
        "type": "Feature",
        "properties": {"code": code, "name": name, **properties},
        "geometry": geometry,
    }


def collection(*features) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def import_areas(tmp_path, data, *args, err=None) -> tuple[str, str]:
    """Run the command on `data` written to a file; (stdout, stderr)."""
    path = tmp_path / "areas.geojson"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    out, err = StringIO(), err or StringIO()
    with translation.override("en"):
        call_command("import_areas", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_creates_then_changes_nothing_when_run_again(tmp_path):
    data = collection(feature("west", "Ouest", WEST), feature("holed", "Troué", HOLED))

    first, _ = import_areas(tmp_path, data, "--kind", "district")
    history = Area.history.count()
    second, _ = import_areas(tmp_path, data, "--kind", "district")

    assert "2 created, 0 updated, 0 unchanged, 0 deactivated, 0 left out" in first
    assert "0 created, 0 updated, 2 unchanged, 0 deactivated, 0 left out" in second
    assert Area.history.count() == history  # nothing saved the second time
    holed = Area.objects.get(code="holed")
    assert holed.kind == "district" and holed.name == "Troué" and holed.is_active
    assert holed.geometry == HOLED  # the MultiPolygon as it was given
    assert (holed.min_longitude, holed.min_latitude, holed.max_longitude, holed.max_latitude) == (
        -1.70,
        48.08,
        -1.64,
        48.095,
    )


def test_import_updates_by_code_and_records_it(tmp_path):
    import_areas(tmp_path, collection(feature("west", "Ouest", WEST)), "--kind", "district")

    out, _ = import_areas(
        tmp_path, collection(feature("west", "Quartier ouest", EAST)), "--kind", "district"
    )

    assert "0 created, 1 updated, 0 unchanged" in out
    west = Area.objects.get(code="west")
    assert west.name == "Quartier ouest" and west.geometry == EAST
    assert west.min_longitude == -1.66
    assert west.history.latest().history_change_reason == "import_areas areas.geojson"


def test_import_leaves_out_bad_features_imports_the_others_and_fails(tmp_path):
    data = collection(
        feature("west", "Ouest", WEST),
        feature("bowtie", "Nœud", BOWTIE),
        feature("point", "Point", {"type": "Point", "coordinates": [-1.68, 48.11]}),
        {"type": "Feature", "properties": {}, "geometry": EAST},
        feature("west", "Ouest encore", EAST),
        feature(
            "lambert",
            "Lambert 93",
            {"type": "Polygon", "coordinates": [square(351000, 6788000, 352000, 6789000)]},
        ),
        feature("has space", "Espace", EAST),
        "not a feature",
        feature("east", "Est", EAST),
    )

    err = StringIO()

    with pytest.raises(CommandError) as failed:
        import_areas(tmp_path, data, "--kind", "district", err=err)

    assert failed.value.returncode == 1  # the exit status
    assert set(Area.objects.values_list("code", flat=True)) == {"west", "east"}
    assert Area.objects.get(code="west").name == "Ouest"  # the first of the two "west"
    # The reasons, on stderr, by the feature's index in the file.
    lines = err.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        f"Feature {index} left out" for index in (1, 2, 3, 4, 5, 6, 7)
    ]
    assert "Self-intersection" in lines[0]
    assert "Polygon or MultiPolygon" in lines[1]
    assert "no code" in lines[2]
    assert "also that of feature 0" in lines[3]
    assert "WGS84" in lines[4]
    assert "has space" in lines[5]
    assert "not a GeoJSON Feature" in lines[6]


def test_import_refuses_a_file_that_is_not_geojson(tmp_path):
    for data in ["{not json", json.dumps({"type": "Polygon", "coordinates": []}), "[]"]:
        with pytest.raises(CommandError):
            import_areas(tmp_path, data, "--kind", "district")
    with pytest.raises(CommandError):
        call_command("import_areas", str(tmp_path / "missing.geojson"), "--kind", "district")
    assert not Area.objects.exists()


def test_import_reads_a_single_feature_and_other_property_names(tmp_path):
    data = {
        "type": "Feature",
        "properties": {"NOM": "Bréquigny Sud", "ID": 12},
        "geometry": WEST,
    }

    import_areas(
        tmp_path, data, "--kind", "quartier", "--name-property", "NOM", "--code-property", "ID"
    )
    import_areas(tmp_path, data, "--kind", "quartier", "--name-property", "NOM")

    by_id, by_name = Area.objects.order_by("code")
    assert (by_id.code, by_id.name, by_id.kind) == ("12", "Bréquigny Sud", "quartier")
    assert (by_name.code, by_name.name) == ("brequigny-sud", "Bréquigny Sud")  # slugified


def test_import_keeps_kinds_apart(tmp_path):
    Area.objects.create(code="centre", name="Centre", kind="neighbourhood", geometry=WEST)
    Area.objects.create(code="old", name="Ancien", kind="neighbourhood", geometry=EAST)
    Area.objects.create(code="gone", name="Disparu", kind="district", geometry=EAST)

    with pytest.raises(CommandError):
        import_areas(
            tmp_path,
            collection(feature("centre", "Centre", WEST), feature("sud", "Sud", HOLED)),
            "--kind",
            "district",
            "--deactivate-missing",
        )
    # "centre" is a neighbourhood: not taken over by the districts; and since a feature
    # was left out, no district was deactivated.
    assert Area.objects.get(code="centre").kind == "neighbourhood"
    assert Area.objects.get(code="gone").is_active

    out, _ = import_areas(
        tmp_path,
        collection(feature("sud", "Sud", HOLED)),
        "--kind",
        "district",
        "--deactivate-missing",
    )

    assert "0 created, 0 updated, 1 unchanged, 1 deactivated" in out
    assert not Area.objects.get(code="gone").is_active
    assert Area.objects.get(code="old").is_active  # another kind: left alone
    # Back in the file, an area is active again.
    import_areas(tmp_path, collection(feature("gone", "Disparu", EAST)), "--kind", "district")
    assert Area.objects.get(code="gone").is_active


def test_a_dry_run_saves_nothing(tmp_path):
    out, _ = import_areas(
        tmp_path, collection(feature("west", "Ouest", WEST)), "--kind", "district", "--dry-run"
    )

    assert "Dry run" in out and "1 created" in out
    assert not Area.objects.exists()


def test_import_with_reassign_updates_the_reports_areas_without_routing_them(tmp_path):
    report = SignalementFactory(latitude=Decimal("48.110000"), longitude=Decimal("-1.680000"))
    assert codes(report) == set()  # no area yet
    department = report.department

    out, _ = import_areas(
        tmp_path, collection(feature("west", "Ouest", WEST)), "--kind", "district", "--reassign"
    )

    assert "1 report changed areas." in out
    assert codes(report) == {"west"}
    report.refresh_from_db()
    assert report.department == department
    out, _ = import_areas(
        tmp_path, collection(feature("west", "Ouest", WEST)), "--kind", "district", "--reassign"
    )
    assert "changed areas" not in out  # no area changed: nothing to recompute


# The admin ---------------------------------------------------------------------------------


def area_form(**fields) -> dict:
    return {
        "name": "Ouest",
        "code": "west",
        "kind": "district",
        "is_active": "on",
        "geometry": json.dumps(WEST),
        **fields,
    }


def test_the_area_list_searches_and_filters_by_kind(admin_client, districts):
    Area.objects.create(code="sainte-anne", name="Sainte-Anne", kind="neighbourhood", geometry=WEST)
    changelist = reverse("admin:signalements_area_changelist")

    listed = admin_client.get(changelist).content.decode()
    by_kind = admin_client.get(changelist, {"kind": "neighbourhood"}).content.decode()
    searched = admin_client.get(changelist, {"q": "troué"}).content.decode()

    assert "Ouest" in listed and "Sainte-Anne" in listed
    assert "Sainte-Anne" in by_kind and "Ouest" not in by_kind
    assert "Troué" in searched and "Ouest" not in searched


def test_the_area_page_shows_its_shape_on_a_map(admin_client, districts):
    response = admin_client.get(
        reverse("admin:signalements_area_change", args=[districts["west"].pk])
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="area-map"' in page
    assert "signalements/admin/area-map.js" in page
    assert "signalements/vendor/leaflet/leaflet.js" in page
    assert "-1.66, 48.1" in page  # the geometry's text, which the map draws
    assert "Troué" in page  # a neighbour of the same kind, drawn behind it
    assert admin_client.get(reverse("admin:signalements_area_add")).status_code == 200


def test_the_admin_refuses_a_bad_shape_on_its_field(admin_client, districts):
    west = districts["west"]
    url = reverse("admin:signalements_area_change", args=[west.pk])

    response = admin_client.post(
        url, area_form(geometry=json.dumps(BOWTIE)), HTTP_ACCEPT_LANGUAGE="en"
    )
    not_json = admin_client.post(url, area_form(geometry="[-1.7, 48.1"), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["geometry"] and "Self-intersection" in errors["geometry"][0]
    assert not_json.context["adminform"].form.errors == {"geometry": ["Enter a valid JSON."]}
    west.refresh_from_db()
    assert west.geometry == WEST


def test_the_admin_takes_a_pasted_feature_and_recomputes_the_reports_areas(
    admin_client, districts, django_capture_on_commit_callbacks
):
    report = SignalementFactory(latitude=Decimal("48.110000"), longitude=Decimal("-1.650000"))
    assert codes(report) == {"east"}
    add = reverse("admin:signalements_area_add")
    pasted = collection(feature("ignored", "ignored", EAST))

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            add, area_form(code="east-2", name="Est bis", geometry=json.dumps(pasted))
        )

    assert response.status_code == 302, response.context["adminform"].form.errors
    created = Area.objects.get(code="east-2")
    assert created.geometry == EAST and created.max_longitude == -1.62
    assert codes(report) == {"east", "east-2"}


# The demo file -----------------------------------------------------------------------------


def test_the_demo_districts_are_valid_apart_and_in_rennes():
    data = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
    features = areas.features_of(data)
    shapes = {item["properties"]["code"]: shape(item["geometry"]) for item in features}

    assert 6 <= len(features) <= 10
    assert "not copied" in data["description"].lower()
    assert [areas.geometry_problem(item["geometry"]) for item in features] == [None] * len(features)
    assert any(item["geometry"]["type"] == "MultiPolygon" for item in features)
    for code, one in shapes.items():
        west, south, east, north = one.bounds
        assert -1.73 <= west and east <= -1.61 and 48.07 <= south and north <= 48.15, code
        for other_code, other in shapes.items():
            if other_code != code:
                assert one.intersection(other).area < 1e-12, (code, other_code)


def test_demo_categories_route_by_district_through_the_api(api_client):
    """The demo's districts imported: a report filed at Place Sainte-Anne is in the
    Centre, one at Boulevard de Vitré in Maurepas-Patton."""
    call_command("import_areas", str(DEMO_FILE), "--kind", "district", stdout=StringIO())
    CategoryFactory(code="voirie")

    assert codes(create_report(api_client, "48.114700", "-1.680100")) == {"centre"}
    assert codes(create_report(api_client, "48.120000", "-1.653300")) == {"maurepas-patton"}
