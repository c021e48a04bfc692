"""The back office staff use all day: from a report's page, move it along the workflow
with a public note, take it, add notes; its extra answers as fields; the category's
choices as rows; the dashboard as the home page; the list's colours, order, map and
bulk transitions with a note."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from signalements.models import Comment, ExtraField, Signalement

from .factories import CategoryFactory, ExtraFieldFactory, SignalementFactory, UserFactory
from .test_admin import CHANGELIST, NO_INLINES, change_form

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def page_url(report) -> str:
    return reverse("admin:signalements_signalement_change", args=[report.pk])


def action_url(report, action: str) -> str:
    return reverse(f"admin:signalements_signalement_{action}", args=[report.pk])


@pytest.fixture
def agent(client, agent_user):
    client.force_login(agent_user)
    return client


# The report's page


def test_the_page_offers_the_workflows_next_statuses_as_buttons(agent):
    report = SignalementFactory(status="new")

    page = agent.get(page_url(report)).content.decode()

    buttons = {
        status
        for status in ("acknowledged", "rejected", "in_progress", "resolved", "new")
        if f'name="to_status" value="{status}"' in page
    }
    assert buttons == {"acknowledged", "rejected"}
    assert 'id="assign-to-me"' in page
    assert 'id="add-note-button"' in page


def test_acknowledging_with_a_note_from_the_page(
    agent, agent_user, django_capture_on_commit_callbacks
):
    report = SignalementFactory(status="new")

    with django_capture_on_commit_callbacks(execute=True):
        response = agent.post(
            action_url(report, "transition"),
            {"to_status": "acknowledged", "note": "  Une équipe passe demain.  "},
            **EN,
        )

    assert response.status_code == 302
    assert response["Location"] == page_url(report)
    report.refresh_from_db()
    assert report.status == "acknowledged"
    update = report.comments.get()
    assert (update.body, update.is_internal, update.author, update.status) == (
        "Une équipe passe demain.",
        False,
        agent_user,
        "acknowledged",
    )
    latest = report.history.latest()
    assert (latest.history_user, latest.status) == (agent_user, "acknowledged")
    shown = agent.get(page_url(report), **EN).content.decode()
    assert "moved to “Acknowledged”, with a public note" in shown


def test_a_status_the_workflow_does_not_allow_changes_nothing(agent):
    report = SignalementFactory(status="new")

    response = agent.post(
        action_url(report, "transition"),
        {"to_status": "resolved", "note": "Fini"},
        follow=True,
        **EN,
    )

    report.refresh_from_db()
    assert report.status == "new"
    assert not report.comments.exists()
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        "The report is now “New”: it cannot move to “Resolved”. Nothing was changed."
    ]


def test_an_unknown_status_changes_nothing(agent):
    report = SignalementFactory(status="new")
    agent.post(action_url(report, "transition"), {"to_status": "gone"})
    report.refresh_from_db()
    assert report.status == "new"


def test_the_page_actions_need_a_post_and_the_change_permission(client):
    report = SignalementFactory(status="new")
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_signalement"))
    client.force_login(viewer)

    page = client.get(page_url(report))
    assert page.status_code == 200
    assert 'name="to_status"' not in page.content.decode()
    for action, data in [
        ("transition", {"to_status": "acknowledged"}),
        ("assign_to_me", {}),
        ("comment", {"body": "x"}),
    ]:
        assert client.post(action_url(report, action), data).status_code == 403
    assert client.get(action_url(report, "transition")).status_code == 405
    report.refresh_from_db()
    assert (report.status, report.assigned_to, report.comments.count()) == ("new", None, 0)


def test_assign_to_me(agent, agent_user):
    report = SignalementFactory()

    agent.post(action_url(report, "assign_to_me"))

    report.refresh_from_db()
    assert report.assigned_to == agent_user
    assert 'id="assign-to-me"' not in agent.get(page_url(report)).content.decode()


@pytest.mark.parametrize("visibility,internal", [("internal", True), ("public", False)])
def test_a_note_from_the_page(agent, agent_user, visibility, internal):
    report = SignalementFactory()

    agent.post(action_url(report, "comment"), {"body": "Vu sur place.", "visibility": visibility})

    note = report.comments.get()
    assert (note.body, note.is_internal, note.author, note.author_role) == (
        "Vu sur place.",
        internal,
        agent_user,
        "agent",
    )


def test_an_empty_or_too_long_note_is_refused(agent):
    report = SignalementFactory()
    agent.post(action_url(report, "comment"), {"body": "   "})
    agent.post(action_url(report, "comment"), {"body": "x" * 5000})
    agent.post(action_url(report, "transition"), {"to_status": "acknowledged", "note": "x" * 5000})
    report.refresh_from_db()
    assert (report.status, report.comments.count()) == ("new", 0)


def test_the_page_shows_the_map_the_history_and_the_coordinates(agent):
    report = SignalementFactory(status="new")
    report.status = "acknowledged"
    report.save()

    page = agent.get(page_url(report), **EN).content.decode()

    assert 'id="report-map"' in page
    assert "signalements/vendor/leaflet/leaflet.js" in page
    assert "48.111, -1.68" in page
    assert 'id="report-history"' in page
    assert page.count("<td>Acknowledged</td>") == 1 and "<td>New</td>" in page


def test_a_report_without_location_says_so(agent):
    report = SignalementFactory(latitude=None, longitude=None)
    page = agent.get(page_url(report), **EN).content.decode()
    assert 'id="report-map"' not in page
    assert "No location given." in page


# Extra answers as fields


@pytest.fixture
def lamp_category():
    category = CategoryFactory(code="eclairage")
    ExtraFieldFactory(
        category=category,
        code="lamp_state",
        label="État de la lampe",
        datatype="singlevaluelist",
        required=True,
        choices=[{"key": "off", "label": "Éteinte"}, {"key": "blinking", "label": "Clignote"}],
    )
    ExtraFieldFactory(category=category, code="lamp_id", label="Numéro", datatype="number")
    ExtraFieldFactory(
        category=category,
        code="seen",
        label="Constaté",
        datatype="multivaluelist",
        choices=[{"key": "day", "label": "Le jour"}, {"key": "night", "label": "La nuit"}],
    )
    return category


def test_the_extra_answers_are_fields_with_the_categorys_labels(agent, lamp_category):
    report = SignalementFactory(category=lamp_category, extra={"lamp_state": "off", "lamp_id": 12})

    page = agent.get(page_url(report))

    form = page.context["adminform"].form
    assert "extra" not in form.fields
    assert form.fields["extra__lamp_state"].label == "État de la lampe"
    assert form["extra__lamp_state"].value() == "off"
    assert form["extra__lamp_id"].value() == 12
    html = page.content.decode()
    assert "Éteinte" in html and "Clignote" in html
    assert "{&quot;lamp_state" not in html  # no JSON


def test_saving_the_extra_answers_from_their_fields(agent, lamp_category):
    report = SignalementFactory(category=lamp_category, extra={"lamp_state": "off"})

    response = agent.post(
        page_url(report),
        change_form(
            report,
            category=lamp_category.pk,
            extra__lamp_state="blinking",
            extra__lamp_id="42",
            extra__seen=["night", "day"],
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    report.refresh_from_db()
    assert report.extra == {"lamp_state": "blinking", "lamp_id": 42, "seen": ["night", "day"]}


def test_a_wrong_answer_is_an_error_on_its_field(agent, lamp_category):
    report = SignalementFactory(category=lamp_category, extra={"lamp_state": "off"})

    response = agent.post(
        page_url(report),
        change_form(report, category=lamp_category.pk, extra__lamp_state="", extra__lamp_id="x"),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"extra__lamp_state", "extra__lamp_id"}
    report.refresh_from_db()
    assert report.extra == {"lamp_state": "off"}


def test_changing_the_category_asks_its_questions(agent, lamp_category):
    report = SignalementFactory(extra={})

    response = agent.post(page_url(report), change_form(report, category=lamp_category.pk))

    # The new category's required question is asked, on its own field.
    assert response.status_code == 200
    assert "extra__lamp_state" in response.context["adminform"].form.errors
    response = agent.post(
        page_url(report), change_form(report, category=lamp_category.pk, extra__lamp_state="off")
    )
    assert response.status_code == 302
    report.refresh_from_db()
    assert (report.category, report.extra) == (lamp_category, {"lamp_state": "off"})


def test_a_viewer_reads_the_answers_as_text(client, lamp_category):
    report = SignalementFactory(category=lamp_category, extra={"lamp_state": "off"})
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_signalement"))
    client.force_login(viewer)

    page = client.get(page_url(report)).content.decode()

    assert "<strong>État de la lampe</strong> Éteinte" in page


# The category's choices as rows


def test_a_categorys_choices_are_edited_as_rows(admin_client):
    category = CategoryFactory(code="bacs", name="Bacs")
    question = ExtraFieldFactory(
        category=category,
        code="bin",
        datatype="singlevaluelist",
        choices=[{"key": "grey", "label": "Gris"}],
    )
    url = reverse("admin:signalements_category_change", args=[category.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="extra_fields-0-choices-key" value="grey"' in page
    assert "[{&quot;key" not in page

    form = {
        "code": "bacs",
        "name": "Bacs",
        "group": "",
        "description": "",
        "is_active": "on",
        "reopen_policy": "reopen",
        **{f"service_levels-{name}": "0" for name in ("TOTAL_FORMS", "INITIAL_FORMS")},
        "extra_fields-TOTAL_FORMS": "1",
        "extra_fields-INITIAL_FORMS": "1",
        "extra_fields-MIN_NUM_FORMS": "0",
        "extra_fields-MAX_NUM_FORMS": "1000",
        "extra_fields-0-id": str(question.pk),
        "extra_fields-0-category": str(category.pk),
        "extra_fields-0-code": "bin",
        "extra_fields-0-label": "Bac",
        "extra_fields-0-datatype": "singlevaluelist",
        "extra_fields-0-order": "0",
        "extra_fields-0-description": "",
        "extra_fields-0-choices-key": ["grey", "", "yellow", ""],
        "extra_fields-0-choices-label": ["Gris", "", "Jaune", ""],
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.context["inline_admin_formsets"][0].formset.errors
    question.refresh_from_db()
    assert question.choices == [
        {"key": "grey", "label": "Gris"},
        {"key": "yellow", "label": "Jaune"},
    ]

    form["extra_fields-0-choices-key"] = ["grey", "grey", "blue"]
    form["extra_fields-0-choices-label"] = ["Gris", "Gris 2", ""]
    response = admin_client.post(url, form)
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors[0]["choices"]
    assert len(errors) == 1  # the incomplete row
    form["extra_fields-0-choices-label"] = ["Gris", "Gris 2", "Bleu"]
    response = admin_client.post(url, form)
    assert response.status_code == 200  # keys repeat: the model's rule
    question.refresh_from_db()
    assert len(question.choices) == 2


# The dashboard


def test_the_dashboard_shows_the_figures(agent, django_assert_max_num_queries):
    roads = CategoryFactory(code="voirie", name="Voirie")
    SignalementFactory.create_batch(3, status="new", category=roads)
    SignalementFactory(status="resolved", category=roads)
    old = SignalementFactory(status="acknowledged")
    # Overdue: open and past its due date (no longer: open for more than OVERDUE_DAYS).
    Signalement.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=100),
        due_at=timezone.now() - timedelta(days=93),
    )

    with django_assert_max_num_queries(16):
        page = agent.get(reverse("admin:index"), **EN)

    dashboard = page.context["dashboard"]
    assert dashboard["total"] == 5
    assert {item["status"]: item["count"] for item in dashboard["by_status"]}["new"] == 3
    assert dashboard["by_category"][0]["name"] == "Voirie"
    assert dashboard["by_category"][0]["count"] == 4
    assert dashboard["backlog"] == {"open": 4, "unassigned": 4, "overdue": 1}
    assert (
        sum(bar["count"] for bar in dashboard["weeks"]["bars"]) == 4
    )  # the old one is before the 12 weeks
    html = page.content.decode()
    assert 'id="dashboard"' in html and "<svg" in html
    for figure in ("open", "unassigned", "overdue"):
        link = dashboard[f"{figure}_url"]
        listed = agent.get(link)
        assert listed.status_code == 200, link
        assert listed.context["cl"].result_count == dashboard["backlog"][figure], link
    for item in dashboard["by_category"] + dashboard["by_status"]:
        assert agent.get(item["url"]).context["cl"].result_count == item["count"], item["url"]


def test_the_dashboard_is_not_shown_to_who_may_not_see_reports(client):
    user = UserFactory(username="nobody", is_staff=True)
    client.force_login(user)
    page = client.get(reverse("admin:index"))
    assert page.status_code == 200
    assert 'id="dashboard"' not in page.content.decode()


# The list


def test_the_list_is_newest_first_with_statuses_in_colour(agent):
    older = SignalementFactory(status="new")
    newer = SignalementFactory(status="resolved")
    same_time = SignalementFactory(status="new")
    Signalement.objects.filter(pk=same_time.pk).update(created_at=newer.created_at)

    page = agent.get(CHANGELIST)

    listed = list(page.context["cl"].result_list)
    assert listed == [same_time, newer, older]
    html = page.content.decode()
    assert '<span class="sig-status sig-status-resolved">' in html


def test_the_lists_map_has_the_filters_located_reports(agent):
    located = SignalementFactory(status="new")
    SignalementFactory(status="new", latitude=None, longitude=None)
    SignalementFactory(status="resolved")

    page = agent.get(CHANGELIST, {"status__exact": "new"})

    html = page.content.decode()
    start = html.index('<script id="changelist-points" type="application/json">') + len(
        '<script id="changelist-points" type="application/json">'
    )
    points = json.loads(html[start : html.index("</script>", start)])
    assert [point["reference"] for point in points] == [located.reference]
    assert points[0]["url"] == page_url(located)


def test_a_bulk_transition_carries_a_public_note(agent, agent_user):
    reports = SignalementFactory.create_batch(2, status="new")

    agent.post(
        CHANGELIST,
        {
            "action": "mark_acknowledged",
            "_selected_action": [r.pk for r in reports],
            "note": "Pris en charge par l'équipe nord.",
        },
    )

    for report in reports:
        report.refresh_from_db()
        assert report.status == "acknowledged"
        assert report.comments.get().body == "Pris en charge par l'équipe nord."
    assert Comment.objects.filter(is_internal=False, author=agent_user).count() == 2


def test_the_form_has_no_json_for_the_extra_answers_on_add(admin_client, lamp_category):
    page = admin_client.get(reverse("admin:signalements_signalement_add"))
    assert "extra" not in page.context["adminform"].form.fields
    response = admin_client.post(
        reverse("admin:signalements_signalement_add"),
        {
            "description": "Lampe éteinte",
            "date_0": "2025-01-01",
            "date_1": "08:00:00",
            "category": lamp_category.pk,
            "priority": "normal",
            "latitude": "",
            "longitude": "",
            "extra__lamp_state": "off",
            **NO_INLINES,
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Signalement.objects.get().extra == {"lamp_state": "off"}
    assert ExtraField.objects.count() == 3


# Languages


def test_the_admin_speaks_french_by_default_and_english_on_request(agent):
    french = agent.get(reverse("admin:index")).content.decode()
    assert "Tableau de bord" in french and "Par statut" in french
    assert 'lang="fr"' in french

    english = agent.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Dashboard" in english and "By status" in english

    report = SignalementFactory(status="new")
    page = agent.get(page_url(report)).content.decode()
    # French typography: non-breaking spaces inside the quotes.
    assert "Passer au statut « Pris en compte »" in page.replace("\u00a0", " ").replace(
        "\u202f", " "
    )
    assert "Move to “Acknowledged”" in agent.get(page_url(report), **EN).content.decode()


def test_the_language_chosen_in_the_admin_stays(agent):
    response = agent.post(
        reverse("set_language"), {"language": "en", "next": reverse("admin:index")}
    )
    assert response.status_code == 302
    page = agent.get(reverse("admin:index")).content.decode()
    assert "Dashboard" in page and 'lang="en"' in page
    assert 'name="language" value="fr"' in page  # the way back
