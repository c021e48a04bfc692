"""Reply templates (signalements/reply_templates.py): which fit a report and a move, their
placeholders filled without evaluating anything, and their use for a transition's note
through the API (`?template=`) and from a report's admin page."""

import datetime as dt
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone, translation

from signalements import reply_templates
from signalements.models import Comment, ReplyTemplate, Status

from .factories import CategoryFactory, SignalementFactory

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def template(code="pris-en-compte", **fields) -> ReplyTemplate:
    fields.setdefault("name", code.replace("-", " ").capitalize())
    fields.setdefault("body", "Votre signalement {reference} ({category}) est pris en compte.")
    return ReplyTemplate.objects.create(code=code, **fields)


def transition_url(report, template_code=None) -> str:
    url = reverse("signalement-transition", args=[report.pk])
    return f"{url}?template={template_code}" if template_code is not None else url


@pytest.fixture
def report():
    category = CategoryFactory(code="eclairage", name="Éclairage public")
    found = SignalementFactory(category=category, status="new")
    found.due_at = timezone.make_aware(dt.datetime(2026, 12, 3, 14, 30))  # Europe/Paris
    return found


# Choosing


def test_the_templates_available_are_the_active_ones_for_the_category_and_status(report):
    other_category = CategoryFactory()
    for_any = template("any")
    for_the_category = template("category", category=report.category)
    for_the_move = template("move", to_status=Status.ACKNOWLEDGED)
    exact = template("exact", category=report.category, to_status=Status.ACKNOWLEDGED)
    template("other-category", category=other_category)
    template("other-status", to_status=Status.RESOLVED)
    template("inactive", is_active=False)

    found = set(reply_templates.available(report, Status.ACKNOWLEDGED))

    assert found == {for_any, for_the_category, for_the_move, exact}


def test_a_report_without_category_is_offered_the_templates_for_any_category():
    report = SignalementFactory(category=None)
    for_any = template("any")
    template("category", category=CategoryFactory())

    assert list(reply_templates.available(report, Status.ACKNOWLEDGED)) == [for_any]


# Filling


def test_the_placeholders_are_filled_for_the_report(report):
    saved = template(body="{reference} — {category} — avant le {due_at}.")

    with translation.override("fr"):
        french = reply_templates.render(saved, report)
    with translation.override("en"):
        english = reply_templates.render(saved, report)

    assert french == f"{report.reference} — Éclairage public — avant le 3 décembre 2026 14:30."
    assert english.startswith(f"{report.reference} — Éclairage public — avant le Dec. 3, 2026")


def test_a_report_without_due_date_or_category_fills_them_empty():
    report = SignalementFactory(category=None)
    report.due_at = None

    text = reply_templates.render(template(body="[{category}] [{due_at}]"), report)

    assert text == "[] []"


@pytest.mark.parametrize(
    "body",
    [
        "{reference.__class__}",
        "{reference.__class__.__mro__[1].__subclasses__}",
        "{reference[0]}",
        "{reference!r}",
        "{reference:>999999999}",
        "{category.__init__.__globals__}",
        "{0}",
        "{}",
        "{unknown}",
        "{ reference }",
        "un { seul",
        "une } seule",
    ],
)
def test_filling_evaluates_nothing_and_leaves_other_braces_as_written(report, body):
    text = reply_templates.render(template(body=body), report)

    assert text == body


def test_a_known_placeholder_beside_hostile_ones_is_still_filled(report):
    text = reply_templates.render(
        template(body="{reference} {reference.__class__} {{reference}}"), report
    )

    assert text == f"{report.reference} {{reference.__class__}} {{{report.reference}}}"


def test_placeholders_in_the_reports_own_text_are_not_filled_again(report):
    report.category.name = "{reference.__class__} {due_at}"

    text = reply_templates.render(template(body="{category}"), report)

    assert text == "{reference.__class__} {due_at}"


# Through the API


def test_a_transition_with_a_template_takes_its_text_as_the_note(agent_client, report):
    report.save()
    template("accuse", to_status=Status.ACKNOWLEDGED)

    response = agent_client.post(
        transition_url(report, "accuse"), {"status": "acknowledged"}, format="json"
    )

    assert response.status_code == 200, response.json()
    expected = f"Votre signalement {report.reference} (Éclairage public) est pris en compte."
    update = Comment.objects.get(signalement=report)
    assert (update.body, update.status, update.is_internal) == (expected, "acknowledged", False)
    assert report.history.latest().history_change_reason == expected


def test_the_bodys_note_follows_the_templates_text_on_a_new_line(agent_client, report):
    template("accuse")

    response = agent_client.post(
        transition_url(report, "accuse"),
        {"status": "acknowledged", "note": "  Passage prévu jeudi.  "},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert Comment.objects.get(signalement=report).body == (
        f"Votre signalement {report.reference} (Éclairage public) est pris en compte.\n"
        "Passage prévu jeudi."
    )


@pytest.mark.parametrize(
    "code, fields, error_code",
    [
        ("absent", None, "unknown_template"),
        ("inactive", {"is_active": False}, "unknown_template"),
        ("for-roads", {"category": "other"}, "template_not_applicable"),
        ("for-resolved", {"to_status": Status.RESOLVED}, "template_not_applicable"),
        ("not a slug", None, "invalid"),
        ("x" * 65, None, "max_length"),
    ],
)
def test_a_template_that_does_not_fit_is_a_400_naming_template_and_nothing_changes(
    agent_client, report, code, fields, error_code
):
    if fields is not None:
        if fields.get("category") == "other":
            fields["category"] = CategoryFactory()
        template(code, **fields)

    with translation.override("en"):
        response = agent_client.post(
            transition_url(report, code), {"status": "acknowledged"}, format="json", **EN
        )

    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["attr"], error["code"]) == ("template", error_code)
    report.refresh_from_db()
    assert report.status == "new"
    assert not Comment.objects.filter(signalement=report).exists()


def test_a_template_with_the_note_too_long_together_is_a_400_on_note(agent_client, report):
    template("long", body="x" * 3000)

    response = agent_client.post(
        transition_url(report, "long"),
        {"status": "acknowledged", "note": "y" * 1500},
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["attr"], error["code"]) == ("note", "max_length")
    report.refresh_from_db()
    assert report.status == "new"


def test_an_empty_template_parameter_is_no_template(agent_client, report):
    response = agent_client.post(
        transition_url(report, ""), {"status": "acknowledged", "note": "Vu."}, format="json"
    )

    assert response.status_code == 200
    assert Comment.objects.get(signalement=report).body == "Vu."


def test_a_reporter_cannot_use_a_template(user_client, report):
    template("accuse")

    response = user_client.post(
        transition_url(report, "accuse"), {"status": "acknowledged"}, format="json"
    )

    assert response.status_code in (403, 404)
    report.refresh_from_db()
    assert report.status == "new"


def test_a_retry_with_another_template_is_not_the_same_request(agent_client, report):
    template("accuse")
    template("autre", body="Autre texte.")
    key = {"Idempotency-Key": "8d7c2f4e-retry-template"}

    first = agent_client.post(
        transition_url(report, "accuse"), {"status": "acknowledged"}, format="json", headers=key
    )
    other = agent_client.post(
        transition_url(report, "autre"), {"status": "acknowledged"}, format="json", headers=key
    )

    assert first.status_code == 200
    assert other.status_code == 422
    assert Comment.objects.filter(signalement=report).count() == 1


# From the report's admin page


def page_url(report) -> str:
    return reverse("admin:signalements_signalement_change", args=[report.pk])


@pytest.fixture
def agent(client, agent_user):
    client.force_login(agent_user)
    return client


def test_the_page_offers_the_templates_of_each_next_status_filled_for_the_report(agent, report):
    report.save()
    template("accuse", to_status=Status.ACKNOWLEDGED, body="{reference} accusé.")
    template("rejet", to_status=Status.REJECTED, name="Rejet")
    template("general", name="Général", body="Merci.")
    template("resolu", to_status=Status.RESOLVED)  # not a next status of a new report
    template("autre-categorie", category=CategoryFactory())

    response = agent.get(page_url(report), **EN)

    panel = response.context["sig_panel"]["templates"]
    assert [
        (str(group["label"]), [t.code for t in group["templates"]]) for group in panel["groups"]
    ] == [
        ("Move to “Acknowledged”", ["accuse"]),
        ("Move to “Rejected”", ["rejet"]),
        ("Any move", ["general"]),
    ]
    page = response.content.decode()
    assert 'name="template"' in page
    assert '<option value="resolu">' not in page
    assert "reply_templates.js" in page
    texts = json.loads(
        page.split('id="reply-template-texts" type="application/json">')[1].split("<")[0]
    )
    assert texts["accuse"] == f"{report.reference} accusé."
    assert texts["general"] == "Merci."


def test_the_page_offers_no_template_choice_when_there_is_none(agent, report):
    report.save()

    page = agent.get(page_url(report)).content.decode()

    assert 'id="transition-template"' not in page


def test_choosing_a_template_on_the_page_without_javascript(
    agent, agent_user, report, django_capture_on_commit_callbacks
):
    report.save()
    template("accuse", to_status=Status.ACKNOWLEDGED)

    with django_capture_on_commit_callbacks(execute=True):
        response = agent.post(
            reverse("admin:signalements_signalement_transition", args=[report.pk]),
            {"to_status": "acknowledged", "template": "accuse", "note": "Merci !"},
            **EN,
        )

    assert response.status_code == 302
    report.refresh_from_db()
    assert report.status == "acknowledged"
    update = Comment.objects.get(signalement=report)
    assert update.body == (
        f"Votre signalement {report.reference} (Éclairage public) est pris en compte.\nMerci !"
    )
    assert update.author == agent_user


def test_a_template_for_another_status_is_refused_on_the_page(agent, report):
    report.save()
    template("rejet", to_status=Status.REJECTED)

    response = agent.post(
        reverse("admin:signalements_signalement_transition", args=[report.pk]),
        {"to_status": "acknowledged", "template": "rejet"},
        follow=True,
        **EN,
    )

    messages = [str(message) for message in response.context["messages"]]
    assert any("“rejet” is not offered" in message for message in messages), messages
    report.refresh_from_db()
    assert report.status == "new"
    assert not Comment.objects.filter(signalement=report).exists()


# The templates' admin


def test_the_templates_admin_lists_and_searches_them(admin_client):
    template("accuse", name="Accusé de réception", to_status=Status.ACKNOWLEDGED)
    template("cloture", name="Clôture")

    response = admin_client.get(
        reverse("admin:signalements_replytemplate_changelist"), {"q": "accus"}
    )

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert "Accusé de réception" in response.content.decode()


def test_the_templates_admin_refuses_an_unknown_placeholder(admin_client):
    with translation.override("en"):
        response = admin_client.post(
            reverse("admin:signalements_replytemplate_add"),
            {
                "name": "Accusé",
                "code": "accuse",
                "to_status": "",
                "is_active": "on",
                "body": "Signalement {refrence} bien reçu, {reference}.",
            },
            **EN,
        )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "{refrence}" in errors["body"][0]
    assert not ReplyTemplate.objects.exists()


def test_agents_see_the_templates_but_cannot_add_them(agent):
    saved = template("accuse")

    listing = agent.get(reverse("admin:signalements_replytemplate_changelist"))
    page = agent.get(reverse("admin:signalements_replytemplate_change", args=[saved.pk]))
    add = agent.get(reverse("admin:signalements_replytemplate_add"))

    assert (listing.status_code, page.status_code, add.status_code) == (200, 200, 403)


def test_choosing_a_template_in_a_browser_fills_the_note_and_posts_no_code(agent, report):
    """The page's script (static/signalements/admin/reply_templates.js), in Chromium: the
    choice writes the template's text before what the agent typed, another choice
    replaces it, and the form then posts the note alone."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    report.save()
    template("accuse", to_status=Status.ACKNOWLEDGED, body="{reference} accusé.")
    template("general", name="Général", body="Merci.")
    url = "http://testserver" + page_url(report)
    html = agent.get(page_url(report)).content.decode()

    def serve(route):
        path = urlsplit(route.request.url).path
        if route.request.url == url:
            route.fulfill(body=html, content_type="text/html; charset=utf-8")
        elif path.startswith(settings.STATIC_URL) and finders.find(
            path.removeprefix(settings.STATIC_URL)
        ):
            route.fulfill(path=finders.find(path.removeprefix(settings.STATIC_URL)))
        else:
            route.abort()

    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.route("**/*", serve)
            page.goto(url)
            page.wait_for_selector("#transition-template[data-ready='1']")
            page.fill("#transition-note", "Passage jeudi.")
            page.select_option("#transition-template", "accuse")
            first = page.input_value("#transition-note")
            page.select_option("#transition-template", "general")
            second = page.input_value("#transition-note")
            posted = page.evaluate(
                "() => [...new FormData(document.getElementById('transition-note').form).keys()]"
            )
            page.select_option("#transition-template", "")
            none = page.input_value("#transition-note")
        finally:
            browser.close()

    assert first == f"{report.reference} accusé.\nPassage jeudi."
    assert second == "Merci.\nPassage jeudi."
    assert "template" not in posted and "note" in posted
    assert none == "Passage jeudi."
