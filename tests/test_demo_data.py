from io import StringIO
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from signalements.management.commands.load_demo_data import DEMO_OPEN311_KEY
from signalements.models import (
    ApiKey,
    Area,
    Category,
    Department,
    ExtraField,
    ReplyTemplate,
    RoutingRule,
    ServiceLevel,
    Signalement,
)
from signalements.roles import role_of

pytestmark = pytest.mark.django_db


def test_demo_data_loads_once_and_prints_the_logins(mailoutbox, django_capture_on_commit_callbacks):
    first, second = StringIO(), StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo_data", stdout=first)
    call_command("load_demo_data", stdout=second)

    assert Category.objects.count() == 7
    lamp_state = ExtraField.objects.get(category__code="eclairage-public", code="lamp_state")
    assert lamp_state.datatype == "singlevaluelist" and lamp_state.required
    for report in Signalement.objects.select_related("category"):
        report.full_clean()  # every demo report answers its category's questions
    assert Signalement.objects.count() == 50
    assert Signalement.objects.filter(latitude__isnull=False).count() == 50
    assert len(set(Signalement.objects.values_list("status", flat=True))) == 5
    users = get_user_model().objects
    admin, agent, reporter = (users.get(username=name) for name in ("admin", "agent", "habitant"))
    assert admin.is_superuser and admin.check_password("signalements")
    assert (
        role_of(agent) == "agent"
        and agent.is_staff
        and agent.has_perm("signalements.change_signalement")
    )
    assert role_of(reporter) == "reporter" and not reporter.is_staff
    assert Signalement.objects.filter(reporter=reporter).exists()
    for line in [
        "Demo admin: username=admin  password=signalements",
        "Demo agent: username=agent  password=signalements",
        "Demo reporter: username=habitant  password=signalements",
    ]:
        assert line in first.getvalue()
        assert line in second.getvalue()
    assert "none added" in second.getvalue()
    assert mailoutbox == []  # the demo's status changes email nobody
    assert all(
        email.isascii() for email in Signalement.objects.values_list("contact_email", flat=True)
    )


def demo_open311_create(client):
    return client.post(
        "/open311/v2/requests.json",
        urlencode(
            {
                "api_key": DEMO_OPEN311_KEY,
                "service_code": "voirie",
                "lat": "48.1147",
                "long": "-1.6801",
                "description": "Nid-de-poule devant l'arrêt de bus.",
            }
        ),
        content_type="application/x-www-form-urlencoded",
    )


def test_demo_data_has_one_open311_key_that_works_and_is_printed(client):
    first, second = StringIO(), StringIO()

    call_command("load_demo_data", stdout=first)
    call_command("load_demo_data", stdout=second)

    api_key = ApiKey.objects.get()  # one key, not one per run
    assert api_key.is_usable() and api_key.prefix == DEMO_OPEN311_KEY[: ApiKey.PREFIX_LENGTH]
    assert DEMO_OPEN311_KEY not in api_key.key_hash  # stored hashed, as any key
    for output in (first, second):
        assert f"Demo Open311 API key: {DEMO_OPEN311_KEY}" in output.getvalue()
    response = demo_open311_create(client)
    assert response.status_code == 200, response.content
    [created] = response.json()
    report = Signalement.objects.latest("id")
    assert created["service_request_id"] == report.reference
    assert report.api_key == api_key and report.category.code == "voirie"


def test_a_revoked_demo_key_stays_revoked(client):
    call_command("load_demo_data", stdout=StringIO())
    ApiKey.objects.update(is_active=False, revoked_at=timezone.now())
    output = StringIO()

    call_command("load_demo_data", stdout=output)

    assert ApiKey.objects.get().is_active is False
    assert "Demo Open311 API key: (revoked since the demo created it)" in output.getvalue()
    assert DEMO_OPEN311_KEY not in output.getvalue()
    assert demo_open311_create(client).status_code == 403


def test_demo_data_routes_its_reports_through_departments_districts_and_rules():
    first = StringIO()
    call_command("load_demo_data", stdout=first)
    tables = [Department, Area, RoutingRule, ServiceLevel, ReplyTemplate]
    counts = {model: model.objects.count() for model in tables}
    histories = {model: model.history.count() for model in tables}

    call_command("load_demo_data", stdout=StringIO())

    # Idempotent, and quietly so: nothing saved again, nothing new in the history.
    assert {model: model.objects.count() for model in tables} == counts
    assert {model: model.history.count() for model in tables} == histories
    assert set(Department.objects.values_list("code", flat=True)) == {
        "eclairage",
        "voirie-nord",
        "voirie-sud",
        "proprete",
    }
    districts = Area.objects.filter(kind="district", is_active=True)
    assert districts.count() == 8
    assert any(area.geometry["type"] == "MultiPolygon" for area in districts)
    assert counts[RoutingRule] == 2 and counts[ServiceLevel] == 6 and counts[ReplyTemplate] == 3
    assert ServiceLevel.objects.filter(unit="hours", priority="urgent").exists()
    assert ServiceLevel.objects.filter(unit="working_days", priority="").exists()
    for template in ReplyTemplate.objects.all():
        assert "{reference}" in template.body
    # The agents, each in their departments, and their logins printed.
    users = get_user_model().objects
    assert set(users.get(username="agent").departments.values_list("code", flat=True)) == {
        "eclairage",
        "voirie-nord",
    }
    south = users.get(username="agent-sud")
    assert role_of(south) == "agent"
    assert set(south.departments.values_list("code", flat=True)) == {"voirie-sud", "proprete"}
    assert "Demo agent: username=agent-sud  password=signalements" in first.getvalue()
    # Every demo place is in a district; roads in the north go to the northern team,
    # elsewhere to the southern one (the category's department); every report is due.
    north = {"nord-saint-martin", "maurepas-patton", "jeanne-darc-longs-champs"}
    roads = Signalement.objects.filter(category__code__in=["voirie", "signalisation"])
    assert roads.exists()
    for report in Signalement.objects.prefetch_related("areas").select_related("department"):
        report_areas = {area.code for area in report.areas.all()}
        assert len(report_areas) >= 1, report.address
        assert report.due_at is not None
        if report.category.code in ("voirie", "signalisation"):
            expected = "voirie-nord" if report_areas & north else "voirie-sud"
            assert report.department.code == expected, (report.address, report_areas)
    assert Signalement.objects.filter(department__code="voirie-nord").exists()
    assert Signalement.objects.filter(department__code="voirie-sud").exists()
    assert Signalement.objects.filter(areas__code="le-blosne").exists()


def test_demo_reports_loaded_before_the_districts_get_them_on_the_next_run():
    call_command("load_demo_data", stdout=StringIO())
    Area.objects.all().delete()  # as a database loaded before areas existed
    assert not Signalement.areas.through.objects.exists()

    call_command("load_demo_data", stdout=StringIO())

    assert Signalement.objects.count() == 50  # no new reports
    assert not Signalement.objects.filter(areas__isnull=True).exists()
