"""The back office of routing: departments and their members, the routing rules in their
order (edited in the list) and the dry run, categories' department, reopen policy and
service levels. Admins manage them; agents see them and run the dry run."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import translation

from signalements.models import (
    AGENTS_GROUP,
    Department,
    ReplyTemplate,
    RoutingRule,
    ServiceLevel,
)

from .factories import (
    AreaFactory,
    CategoryFactory,
    DepartmentFactory,
    SignalementFactory,
    UserFactory,
    square,
)

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
DRY_RUN = reverse("admin:signalements_routingrule_dry_run")


@pytest.fixture
def agent(client, agent_user):
    client.force_login(agent_user)
    return client


@pytest.fixture
def city():
    """Roads north and centre; a rule sending roads in the north to its own team (at a
    high priority), and a rule for another category."""
    north = AreaFactory(code="nord", name="Nord", geometry=square(-1.70, 48.12, -1.60, 48.20))
    centre = AreaFactory(code="centre", name="Centre", geometry=square(-1.70, 48.10, -1.66, 48.12))
    roads = DepartmentFactory(code="voirie", name="Voirie")
    roads_north = DepartmentFactory(code="voirie-nord", name="Voirie Nord")
    lighting = DepartmentFactory(code="eclairage", name="Éclairage")
    voirie = CategoryFactory(code="voirie", name="Voirie", department=roads)
    lamps = CategoryFactory(code="lampadaire", name="Lampadaire", department=lighting)
    lamp_rule = RoutingRule.objects.create(order=10, department=lighting)
    lamp_rule.categories.set([lamps])
    north_rule = RoutingRule.objects.create(order=20, department=roads_north, priority="high")
    north_rule.categories.set([voirie])
    north_rule.areas.set([north])
    return {
        "north": north,
        "centre": centre,
        "roads": roads,
        "roads_north": roads_north,
        "voirie": voirie,
        "lamp_rule": lamp_rule,
        "north_rule": north_rule,
    }


# Who may do what


def pages(department, rule, reply_template) -> dict[str, str]:
    return {
        "departments": reverse("admin:signalements_department_changelist"),
        "department": reverse("admin:signalements_department_change", args=[department.pk]),
        "department history": reverse(
            "admin:signalements_department_history", args=[department.pk]
        ),
        "add department": reverse("admin:signalements_department_add"),
        "rules": reverse("admin:signalements_routingrule_changelist"),
        "rule": reverse("admin:signalements_routingrule_change", args=[rule.pk]),
        "add rule": reverse("admin:signalements_routingrule_add"),
        "dry run": DRY_RUN,
        "templates": reverse("admin:signalements_replytemplate_changelist"),
        "template": reverse("admin:signalements_replytemplate_change", args=[reply_template.pk]),
        "add template": reverse("admin:signalements_replytemplate_add"),
    }


@pytest.mark.parametrize(
    "who, page, status",
    [
        ("admin", page, 200)
        for page in [
            "departments",
            "department",
            "department history",
            "add department",
            "rules",
            "rule",
            "add rule",
            "dry run",
            "templates",
            "template",
            "add template",
        ]
    ]
    + [
        ("agent", "departments", 200),
        ("agent", "department", 200),
        ("agent", "department history", 200),
        ("agent", "add department", 403),
        ("agent", "rules", 200),
        ("agent", "rule", 200),
        ("agent", "add rule", 403),
        ("agent", "dry run", 200),
        ("agent", "templates", 200),
        ("agent", "template", 200),
        ("agent", "add template", 403),
        ("staff without permission", "departments", 403),
        ("staff without permission", "dry run", 403),
    ],
)
def test_admin_pages_by_role(client, superuser, agent_user, city, who, page, status):
    user = {
        "admin": superuser,
        "agent": agent_user,
        "staff without permission": UserFactory(username="stagiaire", is_staff=True),
    }[who]
    client.force_login(user)
    reply_template = ReplyTemplate.objects.create(code="merci", name="Merci", body="Merci.")
    url = pages(city["roads"], city["north_rule"], reply_template)[page]

    response = client.get(url)

    assert response.status_code == status


def test_an_agent_sees_a_department_read_only_and_cannot_change_it(agent, city):
    url = reverse("admin:signalements_department_change", args=[city["roads"].pk])

    page = agent.get(url)
    response = agent.post(url, {"name": "Renamed", "code": "voirie", "is_active": "on"})

    assert 'name="name"' not in page.content.decode()
    assert response.status_code == 403
    city["roads"].refresh_from_db()
    assert city["roads"].name == "Voirie"


def test_an_agent_cannot_reorder_the_rules(agent, city):
    rule = city["lamp_rule"]

    agent.post(reverse("admin:signalements_routingrule_changelist"), reorder(rule, order=99))

    rule.refresh_from_db()
    assert rule.order == 10


# Departments


def test_the_departments_list_counts_members_and_searches(admin_client, agent_user):
    roads = DepartmentFactory(code="voirie", name="Voirie", email="voirie@example.org")
    roads.members.set([agent_user, UserFactory(username="second", is_staff=True)])
    DepartmentFactory(code="eclairage", name="Éclairage")

    response = admin_client.get(
        reverse("admin:signalements_department_changelist"), {"q": "voirie@"}
    )

    assert response.context["cl"].result_count == 1
    row = response.context["cl"].result_list[0]
    assert (row.code, row.member_count) == ("voirie", 2)


def test_only_agents_and_staff_may_be_chosen_as_members(admin_client, agent_user):
    reporter = UserFactory(username="citoyen")
    other_agent = UserFactory(username="agent2")
    other_agent.groups.add(Group.objects.get(name=AGENTS_GROUP))

    page = admin_client.get(reverse("admin:signalements_department_add"))
    choices = set(page.context["adminform"].form.fields["members"].queryset)
    response = admin_client.post(
        reverse("admin:signalements_department_add"),
        {
            "name": "Voirie",
            "code": "voirie",
            "email": "",
            "is_active": "on",
            "members": [agent_user.pk, other_agent.pk],
        },
    )
    refused = admin_client.post(
        reverse("admin:signalements_department_add"),
        {
            "name": "Parcs",
            "code": "parcs",
            "email": "",
            "is_active": "on",
            "members": [reporter.pk],
        },
    )

    assert agent_user in choices and other_agent in choices
    assert reporter not in choices
    assert response.status_code == 302
    assert set(Department.objects.get(code="voirie").members.all()) == {agent_user, other_agent}
    assert refused.status_code == 200
    assert "members" in refused.context["adminform"].form.errors
    assert not Department.objects.filter(code="parcs").exists()


def test_a_department_change_is_recorded_in_its_history(admin_client, admin_user):
    roads = DepartmentFactory(code="voirie", name="Voirie")

    admin_client.post(
        reverse("admin:signalements_department_change", args=[roads.pk]),
        {"name": "Voirie et trottoirs", "code": "voirie", "email": "", "is_active": "on"},
    )

    latest = roads.history.latest()
    assert (latest.name, latest.history_user) == ("Voirie et trottoirs", admin_user)


# Routing rules


def reorder(*rules, **changes) -> dict:
    """The rules' list as its editable form posts it; `changes` apply to the first."""
    data = {
        "form-TOTAL_FORMS": str(len(rules)),
        "form-INITIAL_FORMS": str(len(rules)),
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for index, rule in enumerate(rules):
        values = {"id": rule.pk, "order": rule.order, "is_active": rule.is_active}
        if index == 0:
            values.update(changes)
        data[f"form-{index}-id"] = str(values["id"])
        data[f"form-{index}-order"] = str(values["order"])
        if values["is_active"]:
            data[f"form-{index}-is_active"] = "on"
    return data


def test_the_rules_list_reads_each_rule_in_order(admin_client, city):
    with translation.override("en"):
        response = admin_client.get(reverse("admin:signalements_routingrule_changelist"), **EN)

    page = response.content.decode()
    assert [rule.pk for rule in response.context["cl"].result_list] == [
        city["lamp_rule"].pk,
        city["north_rule"].pk,
    ]
    assert "rule 20: Voirie in Nord → Voirie Nord, priority high" in page
    assert DRY_RUN in page


def test_changing_the_order_in_the_list_changes_which_rule_is_tried_first(admin_client, city):
    lamp_rule, north_rule = city["lamp_rule"], city["north_rule"]

    response = admin_client.post(
        reverse("admin:signalements_routingrule_changelist"),
        reorder(lamp_rule, north_rule, order=30),
    )

    assert response.status_code == 302
    assert list(RoutingRule.objects.values_list("pk", flat=True)) == [north_rule.pk, lamp_rule.pk]
    lamp_rule.refresh_from_db()
    assert lamp_rule.order == 30
    assert lamp_rule.history.latest().order == 30


def test_renumbering_spaces_the_rules_by_ten(admin_client, city):
    city["lamp_rule"].order, city["north_rule"].order = 1, 2
    city["lamp_rule"].save()
    city["north_rule"].save()

    admin_client.post(
        reverse("admin:signalements_routingrule_changelist"),
        {"action": "renumber", "_selected_action": [city["lamp_rule"].pk, city["north_rule"].pk]},
    )

    assert list(RoutingRule.objects.values_list("order", flat=True)) == [10, 20]


def test_a_rule_is_created_from_its_form(admin_client, city):
    response = admin_client.post(
        reverse("admin:signalements_routingrule_add"),
        {
            "name": "",
            "order": "5",
            "is_active": "on",
            "categories": [city["voirie"].pk],
            "areas": [city["centre"].pk],
            "extra_field": "",
            "extra_value": "",
            "department": city["roads"].pk,
            "priority": "",
        },
    )

    assert response.status_code == 302
    rule = RoutingRule.objects.get(order=5)
    assert list(rule.areas.all()) == [city["centre"]]


def test_a_rule_on_an_extra_field_its_categories_do_not_ask_is_refused(admin_client, city):
    with translation.override("en"):
        response = admin_client.post(
            reverse("admin:signalements_routingrule_add"),
            {
                "order": "5",
                "is_active": "on",
                "categories": [city["voirie"].pk],
                "extra_field": "numero_lampadaire",
                "extra_value": "42",
                "department": city["roads"].pk,
            },
            **EN,
        )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    with translation.override("en"):  # the message is read in the test's language
        assert str(errors["extra_field"][0]) == (
            "No extra field has this code in the rule's categories."
        )
    assert not RoutingRule.objects.filter(order=5).exists()


# The dry run


def dry_run(client, given) -> str:
    with translation.override("en"):
        response = client.get(DRY_RUN, {"report": given}, **EN)
    assert response.status_code == 200
    return response


def test_the_dry_run_shows_the_matching_rule_and_why_the_others_do_not(agent, city):
    report = SignalementFactory(
        category=city["voirie"], latitude=Decimal("48.150000"), longitude=Decimal("-1.650000")
    )

    response = dry_run(agent, report.reference)

    outcome = response.context["outcome"]
    verdicts = {row.rule.pk: (row.verdict, row.why) for row in outcome["rows"]}
    assert verdicts == {
        city["lamp_rule"].pk: ("no_match", "another category"),
        city["north_rule"].pk: ("chosen", "matches: this rule applies"),
    }
    assert outcome["match"].department == city["roads_north"]
    page = response.content.decode()
    assert "rule 20: Voirie in Nord → Voirie Nord" in page
    assert "another category" in page
    assert '<td id="report-areas">Nord</td>' in page
    assert '<td id="default-department">Voirie</td>' in page


def test_the_dry_run_outside_the_rules_areas_falls_back_to_the_category(admin_client, city):
    report = SignalementFactory(
        category=city["voirie"], latitude=Decimal("48.110000"), longitude=Decimal("-1.680000")
    )
    inactive = RoutingRule.objects.create(order=5, department=city["roads"], is_active=False)

    response = dry_run(admin_client, str(report.pk))

    outcome = response.context["outcome"]
    verdicts = {row.rule.pk: (row.verdict, row.why) for row in outcome["rows"]}
    assert verdicts[city["north_rule"].pk] == ("no_match", "outside its areas")
    assert verdicts[inactive.pk] == ("inactive", "the rule is not active")
    assert [row.rule.pk for row in outcome["rows"]][0] == inactive.pk
    assert outcome["match"].rule is None
    assert outcome["match"].department == city["roads"]
    assert "category Voirie → Voirie" in response.content.decode()
    assert [area.code for area in outcome["areas"]] == ["centre"]


def test_the_dry_run_says_when_a_report_keeps_its_routing(admin_client, city):
    report = SignalementFactory(
        category=city["voirie"], latitude=Decimal("48.150000"), longitude=Decimal("-1.650000")
    )
    report.keep_routing = True
    report.department = city["roads"]
    report.save()

    response = dry_run(admin_client, report.reference)

    page = response.content.decode()
    assert response.context["outcome"]["keeps_routing"] is True
    assert "yes: a change of category or place does not route it again" in page
    assert "differs from now" in page


@pytest.mark.parametrize("given", ["SIG-2025-999999", "999999", "n'importe quoi", "0" * 30])
def test_the_dry_run_of_an_unknown_report_says_so(admin_client, given):
    response = dry_run(admin_client, given)

    assert response.context["outcome"] is None
    with translation.override("en"):  # the message is read in the test's language
        assert [str(error) for error in response.context["form"].errors["report"]] == [
            "No report has this id or reference."
        ]


def test_the_dry_run_without_a_report_shows_the_form(admin_client):
    response = admin_client.get(DRY_RUN)

    assert response.status_code == 200
    assert response.context["outcome"] is None
    assert not response.context["form"].errors


def test_the_dry_run_keeps_an_agent_to_their_departments_reports(agent, agent_user, city, settings):
    settings.SIGNALEMENT_AGENT_SCOPE = "department"
    city["roads"].members.add(agent_user)
    theirs = SignalementFactory(
        category=city["voirie"], latitude=Decimal("48.110000"), longitude=Decimal("-1.680000")
    )
    others = SignalementFactory(
        category=city["voirie"], latitude=Decimal("48.150000"), longitude=Decimal("-1.650000")
    )
    assert (theirs.department, others.department) == (city["roads"], city["roads_north"])

    assert dry_run(agent, theirs.reference).context["outcome"] is not None
    assert dry_run(agent, others.reference).context["outcome"] is None


# Categories


def category_form(category, **fields) -> dict:
    data = {
        "name": category.name,
        "code": category.code,
        "group": category.group,
        "description": "",
        "is_active": "on",
        "department": "",
        "reopen_policy": "reopen",
        "service_levels-TOTAL_FORMS": "0",
        "service_levels-INITIAL_FORMS": "0",
        "service_levels-MIN_NUM_FORMS": "0",
        "service_levels-MAX_NUM_FORMS": "1000",
        "extra_fields-TOTAL_FORMS": "0",
        "extra_fields-INITIAL_FORMS": "0",
        "extra_fields-MIN_NUM_FORMS": "0",
        "extra_fields-MAX_NUM_FORMS": "1000",
    }
    data.update(fields)
    return data


def service_levels(*rows) -> dict:
    data = {"service_levels-TOTAL_FORMS": str(len(rows))}
    for index, (priority, amount, unit) in enumerate(rows):
        data[f"service_levels-{index}-priority"] = priority
        data[f"service_levels-{index}-amount"] = str(amount)
        data[f"service_levels-{index}-unit"] = unit
    return data


def test_a_categorys_department_reopen_policy_and_service_levels_are_saved(admin_client):
    category = CategoryFactory(code="voirie", name="Voirie")
    roads = DepartmentFactory(code="voirie", name="Voirie")

    response = admin_client.post(
        reverse("admin:signalements_category_change", args=[category.pk]),
        category_form(
            category,
            department=roads.pk,
            reopen_policy="request",
            **service_levels(("", 5, "working_days"), ("urgent", 4, "hours")),
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    category.refresh_from_db()
    assert (category.department, category.reopen_policy) == (roads, "request")
    assert set(ServiceLevel.objects.values_list("priority", "amount", "unit")) == {
        ("", 5, "working_days"),
        ("urgent", 4, "hours"),
    }


def test_two_service_levels_for_one_priority_are_refused_on_the_page(admin_client):
    category = CategoryFactory(code="voirie", name="Voirie")

    with translation.override("en"):
        response = admin_client.post(
            reverse("admin:signalements_category_change", args=[category.pk]),
            category_form(
                category, **service_levels(("high", 2, "working_days"), ("high", 8, "hours"))
            ),
            **EN,
        )

    assert response.status_code == 200
    formset = next(
        formset
        for formset in response.context["inline_admin_formsets"]
        if formset.formset.prefix == "service_levels"
    ).formset
    assert formset.non_form_errors() or any(formset.errors)
    assert "duplicate" in response.content.decode().lower()
    assert not ServiceLevel.objects.exists()


def test_a_service_level_that_exists_already_is_refused_on_the_page(admin_client):
    """(A row added meanwhile, e.g. in another tab: not one of the page's rows.)"""
    category = CategoryFactory(code="voirie", name="Voirie")
    ServiceLevel.objects.create(category=category, priority="", amount=5)

    with translation.override("en"):
        response = admin_client.post(
            reverse("admin:signalements_category_change", args=[category.pk]),
            category_form(category, **service_levels(("", 3, "hours"))),
            **EN,
        )

    assert response.status_code == 200
    assert "Service level with this Category and Priority already exists." in (
        response.content.decode()
    )
    assert ServiceLevel.objects.get().amount == 5


def test_a_reports_page_links_to_its_dry_run(agent, city):
    report = SignalementFactory(category=city["voirie"])

    page = agent.get(reverse("admin:signalements_signalement_change", args=[report.pk]))

    assert f'href="{DRY_RUN}?report={report.pk}"' in page.content.decode()


def test_the_rules_list_reads_the_rules_in_a_bounded_number_of_queries(
    admin_client, city, django_assert_max_num_queries
):
    for order in range(30, 60):
        rule = RoutingRule.objects.create(order=order, department=city["roads"])
        rule.categories.set([city["voirie"]])
        rule.areas.set([city["north"], city["centre"]])

    with django_assert_max_num_queries(16):
        response = admin_client.get(reverse("admin:signalements_routingrule_changelist"))

    assert response.context["cl"].result_count == 32
