"""Routing: departments, areas and rules applied to reports through the REST API (on
create, on a change of category or place, kept by hand), the agent scope, the filters,
and the API of departments, areas, rules, service levels and reply templates. Runs on
SQLite and on PostgreSQL (`make test-postgres`)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone, translation
from rest_framework.test import APIClient

from signalements import routing
from signalements.models import AGENTS_GROUP, RoutingRule, ServiceLevel, Signalement

from .factories import (
    AreaFactory,
    CategoryFactory,
    DepartmentFactory,
    ExtraFieldFactory,
    SignalementFactory,
    UserFactory,
    square,
)

pytestmark = pytest.mark.django_db

# Two districts side by side, their shared edge at longitude -1.68; the north one a
# MultiPolygon with a hole (a park that belongs to no district).
NORTH = {
    "type": "MultiPolygon",
    "coordinates": [
        [
            square(-1.72, 48.12, -1.68, 48.15)["coordinates"][0],
            square(-1.71, 48.13, -1.70, 48.14)["coordinates"][0],  # the hole
        ],
        square(-1.60, 48.12, -1.58, 48.13)["coordinates"],
    ],
}
EAST = square(-1.68, 48.12, -1.64, 48.15)


@pytest.fixture
def city():
    roads = CategoryFactory(code="voirie", name="Voirie")
    lights = CategoryFactory(code="eclairage", name="Éclairage")
    roads_central = DepartmentFactory(code="voirie", name="Voirie")
    roads_north = DepartmentFactory(code="voirie-nord", name="Voirie Nord")
    lighting = DepartmentFactory(code="eclairage", name="Éclairage public")
    roads.department = roads_central
    roads.save()
    lights.department = lighting
    lights.save()
    north = AreaFactory(code="nord", name="Nord", geometry=NORTH)
    east = AreaFactory(code="est", name="Est", geometry=EAST)
    rule = RoutingRule.objects.create(order=3, department=roads_north, priority="high")
    rule.categories.add(roads)
    rule.areas.add(north)
    return {
        "roads": roads,
        "lights": lights,
        "roads_central": roads_central,
        "roads_north": roads_north,
        "lighting": lighting,
        "north": north,
        "east": east,
        "rule": rule,
    }


def create(client, **fields):
    body = {"description": "Nid de poule", "date": "2025-04-29T16:30:00", **fields}
    response = client.post("/api/signalements/", body, format="json")
    assert response.status_code == 201, response.json()
    return Signalement.objects.get(pk=response.json()["id"]), response.json()


def test_a_rule_routes_a_report_of_its_category_in_its_area(city, api_client):
    report, body = create(api_client, category="voirie", latitude=48.125, longitude=-1.715)
    assert report.department == city["roads_north"]
    assert report.priority == "high"
    assert body["department"] == "voirie-nord" and body["areas"] == ["nord"]
    assert "due_at" in body and "keep_routing" not in body  # agents only


def test_without_a_matching_rule_the_categorys_department(city, api_client):
    report, body = create(api_client, category="voirie", latitude=48.125, longitude=-1.66)
    assert (report.department, report.priority) == (city["roads_central"], "normal")
    assert body["areas"] == ["est"]
    report, _ = create(api_client, category="eclairage", latitude=48.125, longitude=-1.715)
    assert report.department == city["lighting"]
    report, body = create(api_client)  # no category, no place
    assert report.department is None and body["department"] is None and body["areas"] == []


def test_a_point_on_the_edge_between_two_areas_is_in_both(city, api_client):
    report, body = create(api_client, category="voirie", latitude=48.13, longitude=-1.68)
    assert body["areas"] == ["est", "nord"]
    assert report.department == city["roads_north"]  # the rule names one of them


def test_a_point_in_a_multipolygons_hole_is_not_in_it(city, api_client):
    report, body = create(api_client, category="voirie", latitude=48.135, longitude=-1.705)
    assert body["areas"] == []
    assert report.department == city["roads_central"]
    # The MultiPolygon's second part, away from the first.
    _, body = create(api_client, category="voirie", latitude=48.125, longitude=-1.59)
    assert body["areas"] == ["nord"]


def test_the_first_matching_rule_wins_and_inactive_ones_are_skipped(city, api_client):
    special = DepartmentFactory(code="nuit", name="Équipe de nuit")
    first = RoutingRule.objects.create(order=1, department=special, is_active=False)
    report, _ = create(api_client, category="voirie", latitude=48.125, longitude=-1.715)
    assert report.department == city["roads_north"]
    first.is_active = True
    first.save()
    report, _ = create(api_client, category="voirie", latitude=48.125, longitude=-1.715)
    assert report.department == special  # no category nor area: matches every report
    special.is_active = False
    special.save()
    report, _ = create(api_client, category="voirie", latitude=48.125, longitude=-1.715)
    assert report.department == city["roads_north"]  # a rule to an inactive department


def test_a_rule_on_an_extra_answer(city, api_client):
    ExtraFieldFactory(
        category=city["lights"],
        code="etat",
        datatype="singlevaluelist",
        choices=[{"key": "eteint", "label": "Éteint"}, {"key": "clignote", "label": "Clignote"}],
    )
    urgent = DepartmentFactory(code="astreinte", name="Astreinte")
    RoutingRule.objects.create(
        order=1, department=urgent, extra_field="etat", extra_value="clignote", priority="urgent"
    )
    report, _ = create(api_client, category="eclairage", extra={"etat": "clignote"})
    assert (report.department, report.priority) == (urgent, "urgent")
    report, _ = create(api_client, category="eclairage", extra={"etat": "eteint"})
    assert (report.department, report.priority) == (city["lighting"], "normal")


def test_the_reason_is_in_the_history(city, agent_client):
    report, _ = create(agent_client, category="voirie", latitude=48.125, longitude=-1.715)
    history = agent_client.get(f"/api/signalements/{report.pk}/history/").json()
    assert history[0]["note"].startswith(
        "zones\u00a0: Nord; règle 3\u00a0: Voirie dans Nord → Voirie Nord"
    )
    public = APIClient().get(f"/api/signalements/{report.pk}/history/").json()
    assert public[0]["kind"] == "created" and public[0]["note"] == ""


def test_a_new_category_or_place_routes_again(city, agent_client):
    report, _ = create(agent_client, category="eclairage", latitude=48.125, longitude=-1.715)
    assert report.department == city["lighting"]
    url = f"/api/signalements/{report.pk}/"
    response = agent_client.patch(url, {"category": "voirie"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["department"] == "voirie-nord"
    response = agent_client.patch(url, {"latitude": 48.125, "longitude": -1.66}, format="json")
    assert response.json()["areas"] == ["est"]
    assert response.json()["department"] == "voirie"
    with translation.override("en"):
        history = agent_client.get(f"{url}history/", HTTP_ACCEPT_LANGUAGE="en").json()
    notes = [entry["note"] for entry in history]
    assert any("rule 3" in note or "règle 3" in note for note in notes[1:2])
    assert "Voirie" in notes[-1]
    # A write that changes neither routes nothing.
    response = agent_client.patch(url, {"title": "Trou"}, format="json")
    assert response.json()["department"] == "voirie"


def test_an_agent_sets_the_department_by_hand_and_may_keep_it(city, agent_client):
    report, _ = create(agent_client, category="voirie", latitude=48.125, longitude=-1.715)
    url = f"/api/signalements/{report.pk}/"
    response = agent_client.patch(url, {"department": "eclairage"}, format="json")
    assert response.json()["department"] == "eclairage"
    # Moving it routes it again, unless it keeps its routing.
    agent_client.patch(url, {"keep_routing": True}, format="json")
    response = agent_client.patch(url, {"latitude": 48.125, "longitude": -1.66}, format="json")
    body = response.json()
    assert (body["department"], body["areas"], body["keep_routing"]) == ("eclairage", ["est"], True)
    # The same write that moves it may name its department.
    agent_client.patch(url, {"keep_routing": False}, format="json")
    response = agent_client.patch(
        url, {"latitude": 48.125, "longitude": -1.715, "department": "voirie"}, format="json"
    )
    assert response.json()["department"] == "voirie"


def test_the_public_cannot_choose_the_department(city, api_client):
    response = api_client.post(
        "/api/signalements/",
        {"description": "x", "date": "2025-04-29T16:30:00", "department": "eclairage"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["department"] is None


def test_an_unknown_department_is_a_400_naming_it(city, agent_client):
    report = SignalementFactory()
    for value in ("nope", "", 3, "a b"):
        response = agent_client.patch(
            f"/api/signalements/{report.pk}/", {"department": value}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["attr"] == "department"


def test_the_due_date_follows_the_service_level(city, api_client):
    ServiceLevel.objects.create(category=city["roads"], amount=4, unit="hours")
    before = timezone.now()
    report, body = create(api_client, category="voirie")
    assert report.due_at == report.created_at + dt.timedelta(hours=4)
    assert report.due_at >= before
    assert body["due_at"] is not None


@pytest.fixture
def scoped(city, settings):
    settings.SIGNALEMENT_AGENT_SCOPE = "department"
    agent = UserFactory(username="agent-nord", is_staff=True)
    agent.groups.add(Group.objects.get(name=AGENTS_GROUP))
    city["roads_north"].members.add(agent)
    client = APIClient()
    client.force_authenticate(agent)
    mine = SignalementFactory(
        category=city["roads"], latitude=Decimal("48.125"), longitude=Decimal("-1.715")
    )
    theirs = SignalementFactory(category=city["lights"], is_public=False)
    unrouted = SignalementFactory(category=None, latitude=None, longitude=None)
    assigned = SignalementFactory(category=city["lights"], assigned_to=agent)
    return {
        "client": client,
        "agent": agent,
        "mine": mine,
        "theirs": theirs,
        "unrouted": unrouted,
        "assigned": assigned,
    }


def test_agent_scope_department_limits_what_an_agent_sees(scoped):
    client = scoped["client"]
    assert scoped["mine"].department.code == "voirie-nord"
    listed = {item["id"] for item in client.get("/api/signalements/").json()["results"]}
    expected = {scoped[name].pk for name in ("mine", "unrouted", "assigned")}
    assert listed == expected
    assert client.get(f"/api/signalements/{scoped['theirs'].pk}/").status_code == 404
    response = client.post(
        f"/api/signalements/{scoped['theirs'].pk}/transition/",
        {"status": "acknowledged"},
        format="json",
    )
    assert response.status_code == 404
    assert client.get(f"/api/signalements/{scoped['mine'].pk}/").status_code == 200
    export = client.get("/api/signalements/export.csv")
    assert export.status_code == 200
    exported = b"".join(export.streaming_content).decode()
    assert scoped["mine"].reference in exported
    assert scoped["theirs"].reference not in exported
    stats = client.get("/api/signalements/stats/").json()
    assert stats["total"] == 3


def test_agent_scope_all_and_superusers_see_everything(scoped, superuser_client, settings):
    everything = Signalement.objects.count()
    response = superuser_client.get("/api/signalements/")
    assert response.json()["count"] == everything
    settings.SIGNALEMENT_AGENT_SCOPE = "all"
    client = APIClient()
    client.force_authenticate(UserFactory(username=scoped["agent"].username))
    assert client.get("/api/signalements/").json()["count"] == everything


def test_filters_by_department_area_and_due_date(city, agent_client, api_client):
    north, _ = create(api_client, category="voirie", latitude=48.125, longitude=-1.715)
    east, _ = create(api_client, category="voirie", latitude=48.125, longitude=-1.66)
    late, _ = create(api_client, category="eclairage")
    Signalement.objects.filter(pk=late.pk).update(due_at=timezone.now() - dt.timedelta(hours=1))

    def ids(query):
        response = api_client.get(f"/api/signalements/?{query}")
        assert response.status_code == 200, response.json()
        return {item["id"] for item in response.json()["results"]}

    assert ids("department=voirie-nord") == {north.pk}
    assert ids("department=voirie,eclairage") == {east.pk, late.pk}
    assert ids("area=nord") == {north.pk}
    assert ids("area=nord,est") == {north.pk, east.pk}
    assert ids("overdue=true") == {late.pk}
    assert ids("overdue=false") == {north.pk, east.pk}
    assert ids(f"due_before={timezone.now().isoformat().replace('+', '%2B')}") == {late.pk}
    ordered = api_client.get("/api/signalements/?ordering=due_at").json()["results"]
    assert ordered[0]["id"] == late.pk
    for bad in ("department=a%20b", "overdue=maybe", "due_before=yesterday", "area=%00"):
        response = api_client.get(f"/api/signalements/?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["errors"][0]["attr"] == bad.split("=")[0]
    # A closed report is never overdue.
    Signalement.objects.filter(pk=late.pk).update(status="resolved")
    assert ids("overdue=true") == set()


def test_departments_api(city, api_client, agent_client, superuser_client, agent_user):
    public = api_client.get("/api/departments/").json()
    assert {item["code"] for item in public["results"]} == {"voirie", "voirie-nord", "eclairage"}
    assert "members" not in public["results"][0] and "email" not in public["results"][0]
    assert api_client.post("/api/departments/", {"code": "x", "name": "X"}).status_code == 401
    assert agent_client.post("/api/departments/", {"code": "x", "name": "X"}).status_code == 403
    response = superuser_client.post(
        "/api/departments/",
        {"code": "proprete", "name": "Propreté", "members": ["agent"], "email": "p@example.org"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert agent_user.departments.get().code == "proprete"
    staff = agent_client.get("/api/departments/proprete/").json()
    assert staff["members"] == ["agent"] and staff["email"] == "p@example.org"
    response = superuser_client.post(
        "/api/departments/", {"code": "proprete", "name": "Bis"}, format="json"
    )
    assert response.status_code == 400 and response.json()["errors"][0]["attr"] == "code"
    # A department that rules name is not deleted (409); another one is.
    assert superuser_client.delete("/api/departments/voirie-nord/").status_code == 409
    assert superuser_client.delete("/api/departments/proprete/").status_code == 204
    # Its changes are kept in its history.
    assert city["roads_north"].history.count() >= 1


def test_areas_api(city, api_client, superuser_client):
    listed = api_client.get("/api/areas/?kind=district").json()["results"]
    assert {area["code"] for area in listed} == {"nord", "est"}
    east = api_client.get("/api/areas/est/").json()
    assert east["bbox"] == [-1.68, 48.12, -1.64, 48.15]
    response = superuser_client.post(
        "/api/areas/",
        {"code": "sud", "name": "Sud", "kind": "district", "geometry": {"type": "Point"}},
        format="json",
    )
    assert response.status_code == 400 and response.json()["errors"][0]["attr"] == "geometry"
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    response = superuser_client.post(
        "/api/areas/", {"code": "sud", "name": "Sud", "geometry": bowtie}, format="json"
    )
    assert response.status_code == 400 and response.json()["errors"][0]["attr"] == "geometry"
    response = superuser_client.post(
        "/api/areas/",
        {"code": "sud", "name": "Sud", "geometry": square(-1.7, 48.0, -1.6, 48.1)},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["bbox"] == [-1.7, 48.0, -1.6, 48.1]
    assert api_client.delete("/api/areas/sud/").status_code == 401


def test_an_area_drawn_through_the_api_takes_in_the_reports_inside(
    city, superuser_client, django_capture_on_commit_callbacks
):
    inside = SignalementFactory(latitude=Decimal("48.05"), longitude=Decimal("-1.65"))
    outside = SignalementFactory(latitude=Decimal("48.20"), longitude=Decimal("-1.65"))
    assert inside.area_codes == [] and outside.area_codes == []
    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(
            "/api/areas/",
            {"code": "sud", "name": "Sud", "geometry": square(-1.7, 48.0, -1.6, 48.1)},
            format="json",
        )
    assert response.status_code == 201
    assert inside.area_codes == ["sud"] and outside.area_codes == []
    # Moved north: the report inside is left, the other one taken in.
    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.patch(
            "/api/areas/sud/", {"geometry": square(-1.7, 48.15, -1.6, 48.25)}, format="json"
        )
    assert response.status_code == 200
    assert inside.area_codes == [] and outside.area_codes == ["sud"]


def test_routing_rules_api_and_dry_run(city, api_client, agent_client, superuser_client):
    assert api_client.get("/api/routing-rules/").status_code == 401
    rules = agent_client.get("/api/routing-rules/").json()["results"]
    assert rules[0]["description"] == "règle 3\u00a0: Voirie dans Nord → Voirie Nord"
    assert agent_client.post("/api/routing-rules/", {}, format="json").status_code == 403
    response = superuser_client.post(
        "/api/routing-rules/",
        {"order": 1, "categories": ["eclairage"], "areas": ["est"], "department": "voirie"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    response = superuser_client.post(
        "/api/routing-rules/",
        {"order": 2, "department": "voirie", "extra_field": "etat"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "extra_value"
    report = SignalementFactory(
        category=city["roads"], latitude=Decimal("48.125"), longitude=Decimal("-1.715")
    )
    response = agent_client.get(f"/api/routing-rules/dry-run/?signalement={report.pk}")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["department"], body["rule"], body["areas"]) == (
        "voirie-nord",
        city["rule"].pk,
        ["nord"],
    )
    assert [trial["matches"] for trial in body["rules"]] == [False, True]
    assert body["rules"][0]["why_not"]
    assert agent_client.get("/api/routing-rules/dry-run/?signalement=999999").status_code == 404
    assert agent_client.get("/api/routing-rules/dry-run/").status_code == 400
    assert api_client.get(f"/api/routing-rules/dry-run/?signalement={report.pk}").status_code == 401


def test_service_levels_and_reply_templates_api(city, api_client, agent_client, superuser_client):
    response = superuser_client.post(
        "/api/service-levels/",
        {"category": "voirie", "amount": 2, "unit": "working_days"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    again = superuser_client.post(
        "/api/service-levels/", {"category": "voirie", "amount": 3}, format="json"
    )
    assert again.status_code == 400 and again.json()["errors"][0]["attr"] == "priority"
    assert api_client.get("/api/service-levels/").json()["count"] == 1
    response = superuser_client.post(
        "/api/reply-templates/",
        {
            "code": "pris-en-charge",
            "name": "Pris en charge",
            "body": "{reference} est suivi.",
            "to_status": "acknowledged",
            "category": "voirie",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert api_client.get("/api/reply-templates/").status_code == 401
    found = agent_client.get("/api/reply-templates/?category=voirie&to_status=acknowledged")
    assert [item["code"] for item in found.json()["results"]] == ["pris-en-charge"]
    found = agent_client.get("/api/reply-templates/?to_status=resolved")
    assert found.json()["results"] == []


def test_explain_says_why_each_rule_does_not_match(city):
    report = SignalementFactory(
        category=city["lights"], latitude=Decimal("48.125"), longitude=Decimal("-1.715")
    )
    with translation.override("en"):
        dry_run = routing.explain(report)
    match, trials = dry_run.match, dry_run.trials
    assert match.department == city["lighting"] and match.rule is None
    assert trials[0].why_not == "another category"


def test_the_kept_rules_follow_every_change_of_a_rule_or_a_department(city, api_client):
    """The rules are read once and kept while their fingerprint holds: a change of a
    rule's categories or areas alone (no save of the rule), a new rule, a rule deleted, a
    department switched off, each shows at the next create."""
    where = {"category": "eclairage", "latitude": 48.125, "longitude": -1.715}
    report, _ = create(api_client, **where)
    assert report.department == city["lighting"]
    city["rule"].categories.add(city["lights"])  # the rule now takes street lighting too
    report, _ = create(api_client, **where)
    assert report.department == city["roads_north"]
    city["lights"].routing_rules.remove(city["rule"])  # from the other side
    report, _ = create(api_client, **where)
    assert report.department == city["lighting"]
    night = DepartmentFactory(code="nuit", name="Nuit")
    extra_rule = RoutingRule.objects.create(order=1, department=night)
    report, _ = create(api_client, **where)
    assert report.department == night
    night.is_active = False
    night.save()
    report, _ = create(api_client, **where)
    assert report.department == city["lighting"]
    extra_rule.delete()
    night.is_active = True
    night.save()
    report, _ = create(api_client, **where)
    assert report.department == city["lighting"]
