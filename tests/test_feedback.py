"""The reporter's verdict after a resolution (`signalements/feedback.py`): "not fixed"
reopens the report (status, history with who and why, public note) or, per category,
files a reopen request that agents accept or refuse (API and admin); "fixed" leaves it
resolved; one verdict per resolution, within FEEDBACK_DAYS; the signed link of the
"resolved" email works without a login, shows before it records, and answers only its
own resolution; nobody else answers."""

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.test import APIClient

from signalements import feedback, notifications, services
from signalements.models import AGENTS_GROUP, Comment, Department, Feedback, Signalement

from .contact_addresses import confirmed
from .factories import CategoryFactory, SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE = "https://signalements.example.org"
CONTACT = "camille@example.org"


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = BASE


def feedback_url(report) -> str:
    return reverse("signalement-feedback", args=[report.pk])


def resolved(*, by=None, policy="reopen", **fields) -> Signalement:
    """A report moved through the workflow to `resolved` (no email: no on-commit run)."""
    category = CategoryFactory(code=f"cat-{policy}", reopen_policy=policy)
    report = SignalementFactory(category=category, **fields)
    for status in ("acknowledged", "resolved"):
        report = services.transition(signalement=report, to_status=status, by=by)
    return report


def link_path(report, answer: str = "not_fixed") -> str:
    """The local path of the report's verdict link, as the email gives it."""
    return feedback.feedback_urls(report)[answer].removeprefix(BASE)


def error_code(response) -> str:
    return response.json()["errors"][0]["code"]


def answer(client, report, **body):
    return client.post(feedback_url(report), body, format="json")


# --- The logged-in reporter ---------------------------------------------------------------


def test_the_reporters_not_fixed_reopens_the_report_with_who_and_why(user_client, reporter):
    report = resolved(reporter=reporter)

    response = answer(user_client, report, is_fixed=False, comment="Toujours éteint ce soir.")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["is_fixed"], body["comment"], body["reopen"]) == (
        False,
        "Toujours éteint ce soir.",
        "reopened",
    )
    assert (body["signalement"], body["reference"]) == (report.pk, report.reference)
    report.refresh_from_db()
    assert (report.status, report.resolved_at) == ("in_progress", None)
    # The history: the reporter reopened it, and the reason quotes them.
    latest = report.history.first()
    assert latest.status == "in_progress"
    assert latest.history_user == reporter
    assert "Toujours éteint ce soir." in latest.history_change_reason
    assert (
        "not fixed" in latest.history_change_reason or "pas réglé" in latest.history_change_reason
    )
    # A public update in the reporter's name, without their contact data.
    [note] = Comment.objects.filter(signalement=report)
    assert (note.is_internal, note.author, note.author_role, note.status) == (
        False,
        reporter,
        "reporter",
        "in_progress",
    )
    assert "Toujours éteint ce soir." in note.body and CONTACT not in note.body
    public = APIClient().get(reverse("signalement-comments", args=[report.pk])).json()
    assert [comment["body"] for comment in public] == [note.body]
    verdict = Feedback.objects.get()
    assert (verdict.author, verdict.is_fixed, verdict.reopen) == (reporter, False, "reopened")


def test_fixed_leaves_the_report_resolved(user_client, reporter):
    report = resolved(reporter=reporter)

    response = answer(user_client, report, is_fixed=True)

    assert response.status_code == 201, response.content
    assert (response.json()["reopen"], response.json()["comment"]) == ("", "")
    report.refresh_from_db()
    assert report.status == "resolved"
    assert not Comment.objects.filter(signalement=report).exists()
    assert Feedback.objects.get().is_fixed is True


def test_a_second_verdict_on_the_same_resolution_is_a_409(user_client, reporter):
    report = resolved(reporter=reporter)
    assert answer(user_client, report, is_fixed=True).status_code == 201

    again = answer(user_client, report, is_fixed=False)

    assert again.status_code == 409
    assert error_code(again) == "already_answered"
    assert Feedback.objects.count() == 1
    report.refresh_from_db()
    assert report.status == "resolved"


def test_a_new_resolution_may_be_answered_again(user_client, reporter, agent_user):
    report = resolved(reporter=reporter)
    assert answer(user_client, report, is_fixed=False).status_code == 201
    services.transition(signalement=report, to_status="resolved", by=agent_user)

    assert answer(user_client, report, is_fixed=True).status_code == 201
    assert list(Feedback.objects.order_by("id").values_list("is_fixed", flat=True)) == [
        False,
        True,
    ]


def test_a_report_that_is_not_resolved_takes_no_verdict(user_client, reporter):
    report = SignalementFactory(reporter=reporter)

    response = answer(user_client, report, is_fixed=True)

    assert response.status_code == 409
    assert error_code(response) == "not_resolved"
    assert not Feedback.objects.exists()


def test_too_late_after_feedback_days(user_client, reporter, settings):
    settings.SIGNALEMENT_FEEDBACK_DAYS = 14
    report = resolved(reporter=reporter)
    Signalement.objects.filter(pk=report.pk).update(
        resolved_at=timezone.now() - timedelta(days=14, minutes=1)
    )

    response = answer(user_client, report, is_fixed=False)

    assert response.status_code == 409
    assert error_code(response) == "too_late"
    report.refresh_from_db()
    assert report.status == "resolved" and not Feedback.objects.exists()


@pytest.mark.parametrize(
    "body, field, code",
    [
        ({}, "is_fixed", "required"),
        ({"is_fixed": "peut-être"}, "is_fixed", "invalid"),
        ({"is_fixed": False, "comment": "x" * 4001}, "comment", "max_length"),
        ({"is_fixed": False, "comment": "a\x00b"}, "comment", "null_characters_not_allowed"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    user_client, reporter, body, field, code
):
    report = resolved(reporter=reporter)

    response = user_client.post(feedback_url(report), body, format="json")

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["attr"], error["code"]) == (field, code)
    assert not Feedback.objects.exists()
    report.refresh_from_db()
    assert report.status == "resolved"


@pytest.mark.parametrize(
    "who, is_public, status_code",
    [
        ("anonymous", True, 401),
        ("other", True, 403),
        ("other", False, 404),
        ("agent", True, 403),
    ],
)
def test_nobody_but_the_reporter_answers(reporter, agent_user, who, is_public, status_code):
    report = resolved(reporter=reporter, is_public=is_public)
    client = APIClient()
    if who == "other":
        client.force_authenticate(UserFactory(username="voisin"))
    elif who == "agent":
        client.force_authenticate(agent_user)

    response = answer(client, report, is_fixed=False)

    assert response.status_code == status_code, response.content
    assert not Feedback.objects.exists()
    report.refresh_from_db()
    assert report.status == "resolved"


def test_a_retry_with_the_same_idempotency_key_records_once(user_client, reporter):
    report = resolved(reporter=reporter)

    first = user_client.post(
        feedback_url(report), {"is_fixed": False}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    retry = user_client.post(
        feedback_url(report), {"is_fixed": False}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )

    assert first.status_code == retry.status_code == 201
    assert retry["Idempotent-Replayed"] == "true"
    assert Feedback.objects.count() == 1


# --- Reopen requests (Category.reopen_policy = "request") ---------------------------------


@pytest.fixture
def pending(reporter, user_client):
    """A "not fixed" on a report whose category asks agents to decide."""
    report = resolved(reporter=reporter, policy="request")
    response = answer(user_client, report, is_fixed=False, comment="Le trou est revenu.")
    assert response.status_code == 201, response.content
    assert response.json()["reopen"] == "pending"
    return Feedback.objects.get()


def test_a_request_policy_files_a_pending_request_that_agents_see(pending, agent_client):
    report = pending.signalement
    report.refresh_from_db()
    assert report.status == "resolved"
    # Agents see it on the report (an internal note), nobody else does.
    [note] = Comment.objects.filter(signalement=report)
    assert note.is_internal and "Le trou est revenu." in note.body
    assert APIClient().get(reverse("signalement-comments", args=[report.pk])).json() == []

    listed = agent_client.get(reverse("feedback-list"), {"reopen": "pending"})

    assert listed.status_code == 200
    [row] = listed.json()["results"]
    assert row["id"] == pending.pk and row["reference"] == report.reference
    assert (row["is_fixed"], row["comment"], row["reopen"]) == (
        False,
        "Le trou est revenu.",
        "pending",
    )
    assert CONTACT not in listed.content.decode() and "citizen" not in listed.content.decode()
    assert agent_client.get(reverse("feedback-list"), {"reopen": "refused"}).json()["count"] == 0


def test_an_agent_accepts_a_reopen_request(pending, agent_client, agent_user):
    url = reverse("feedback-accept", args=[pending.pk])

    response = agent_client.post(url, {"note": "On repasse cette semaine."}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["reopen"], body["decided_by"], body["decision_note"]) == (
        "accepted",
        "agent",
        "On repasse cette semaine.",
    )
    assert body["decided_at"] is not None
    report = Signalement.objects.get(pk=pending.signalement_id)
    assert report.status == "in_progress"
    latest = report.history.first()
    assert (latest.history_user, latest.history_change_reason) == (
        agent_user,
        "On repasse cette semaine.",
    )
    # Decided once: a second decision is a conflict.
    again = agent_client.post(reverse("feedback-refuse", args=[pending.pk]), {}, format="json")
    assert again.status_code == 409 and error_code(again) == "not_pending"
    assert Feedback.objects.get().reopen == "accepted"


def test_an_agent_refuses_a_reopen_request_and_the_report_stays_resolved(
    pending, agent_client, agent_user
):
    response = agent_client.post(
        reverse("feedback-refuse", args=[pending.pk]),
        {"note": "Réparé le 3 : c'est un autre trou."},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["reopen"] == "refused"
    report = Signalement.objects.get(pk=pending.signalement_id)
    assert report.status == "resolved"
    # The note tells the reporter why: a public update.
    update = Comment.objects.get(signalement=report, is_internal=False)
    assert (update.body, update.author, update.author_role) == (
        "Réparé le 3 : c'est un autre trou.",
        agent_user,
        "agent",
    )
    verdict = Feedback.objects.get()
    assert (verdict.decided_by, verdict.reopen) == (agent_user, "refused")


def test_only_agents_list_and_decide(pending, user_client):
    assert user_client.get(reverse("feedback-list")).status_code == 403
    refused = user_client.post(reverse("feedback-accept", args=[pending.pk]), {}, format="json")
    assert refused.status_code == 403
    assert APIClient().get(reverse("feedback-list")).status_code == 401
    assert Feedback.objects.get().reopen == "pending"


def test_a_verdict_that_asked_nothing_takes_no_decision(user_client, reporter, agent_client):
    report = resolved(reporter=reporter)
    answer(user_client, report, is_fixed=True)

    response = agent_client.post(
        reverse("feedback-accept", args=[Feedback.objects.get().pk]), {}, format="json"
    )

    assert response.status_code == 409 and error_code(response) == "not_pending"
    report.refresh_from_db()
    assert report.status == "resolved"


def test_agents_see_the_verdicts_of_their_scope_only(pending, agent_user, settings):
    settings.SIGNALEMENT_AGENT_SCOPE = "department"
    roads = Department.objects.create(code="voirie", name="Voirie")
    lights = Department.objects.create(code="eclairage", name="Éclairage")
    lights.members.add(agent_user)
    Signalement.objects.filter(pk=pending.signalement_id).update(department=roads)
    client = APIClient()
    client.force_authenticate(agent_user)

    assert client.get(reverse("feedback-list")).json()["count"] == 0
    response = client.post(reverse("feedback-accept", args=[pending.pk]), {}, format="json")
    assert response.status_code == 404
    assert Feedback.objects.get().reopen == "pending"


def test_the_list_takes_a_fixed_number_of_queries(
    agent_client, agent_user, django_assert_max_num_queries
):
    for index in range(5):
        reporter = UserFactory(username=f"habitant{index}")
        report = resolved(reporter=reporter, policy="request")
        feedback.record(report, False, "Non.", reporter)

    with django_assert_max_num_queries(4):
        response = agent_client.get(reverse("feedback-list"))

    assert response.json()["count"] == 5


# --- The signed link -----------------------------------------------------------------------


def test_the_link_shows_then_records_without_a_login(api_client):
    report = resolved(contact_email=CONTACT)
    path = link_path(report, "not_fixed")

    shown = api_client.get(path)

    assert shown.status_code == 200, shown.content
    body = shown.json()
    assert (body["reference"], body["answer"], body["answered"], body["is_fixed"]) == (
        report.reference,
        "not_fixed",
        False,
        None,
    )
    assert CONTACT not in shown.content.decode()
    # Opening the link (as a mail filter does) changes nothing.
    report.refresh_from_db()
    assert report.status == "resolved" and not Feedback.objects.exists()

    recorded = api_client.post(
        path, {"is_fixed": False, "comment": "Rien n'a changé."}, format="json"
    )

    assert recorded.status_code == 201, recorded.content
    assert (recorded.json()["answered"], recorded.json()["reopen"]) == (True, "reopened")
    verdict = Feedback.objects.get()
    assert (verdict.author, verdict.comment) == (None, "Rien n'a changé.")
    report.refresh_from_db()
    assert report.status == "in_progress"
    latest = report.history.first()
    assert latest.history_user is None and "Rien n'a changé." in latest.history_change_reason
    # The link still shows the verdict given; it records no second one.
    assert api_client.get(path).json()["is_fixed"] is False
    again = api_client.post(path, {"is_fixed": True}, format="json")
    assert again.status_code == 409 and error_code(again) == "already_answered"


def test_a_browser_gets_the_page_and_its_form_records(api_client):
    report = resolved(contact_email=CONTACT, title="Lampadaire rue Saint-Malo")
    path = link_path(report, "fixed")

    with translation.override("en"):
        page = api_client.get(path, HTTP_ACCEPT="text/html", HTTP_ACCEPT_LANGUAGE="en")

    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert report.reference in html and "Lampadaire rue Saint-Malo" in html
    assert re.search(r'value="true" required checked', html)
    assert '<form method="post"' in html and 'name="comment"' in html

    sent = api_client.post(
        path,
        "is_fixed=true&comment=Merci+%21",
        content_type="application/x-www-form-urlencoded",
        HTTP_ACCEPT="text/html",
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert sent.status_code == 201, sent.content
    assert "Thank you: your answer is recorded." in sent.content.decode()
    verdict = Feedback.objects.get()
    assert (verdict.is_fixed, verdict.comment) == (True, "Merci !")
    report.refresh_from_db()
    assert report.status == "resolved"


def test_the_link_needs_no_csrf_token_in_a_browser_session(reporter):
    """A browser logged in to the back office posts the page's form like anyone."""
    report = resolved(reporter=reporter)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(reporter)

    sent = browser.post(
        link_path(report),
        "is_fixed=false",
        content_type="application/x-www-form-urlencoded",
        HTTP_ACCEPT="text/html",
    )

    assert sent.status_code == 201, sent.content
    assert Feedback.objects.get().author is None  # the link, not the session, answered


def test_a_forged_or_expired_link_is_a_404(api_client, settings):
    report = resolved(contact_email=CONTACT)
    path = link_path(report)
    token = path.split("/")[-2]
    altered = path.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    forged = reverse("feedback-link", args=["eyJyIjoxLCJ0IjoxfQ:1tZ:abc"]) + "?answer=not_fixed"

    for bad in (altered, forged):
        assert api_client.get(bad).status_code == 404
        response = api_client.post(bad, {"is_fixed": False}, format="json")
        assert response.status_code == 404 and error_code(response) == "not_found"

    later = time.time() + (settings.SIGNALEMENT_FEEDBACK_DAYS * 86400 + 60)
    with mock.patch("django.core.signing.time.time", return_value=later):
        expired = api_client.post(
            path, {"is_fixed": False}, format="json", HTTP_ACCEPT_LANGUAGE="en"
        )
    assert expired.status_code == 404
    assert "expired" in expired.json()["errors"][0]["detail"]
    assert not Feedback.objects.exists()
    report.refresh_from_db()
    assert report.status == "resolved"


def test_a_link_answers_only_its_own_resolution(api_client, agent_user):
    report = resolved(contact_email=CONTACT)
    first = link_path(report)
    services.transition(signalement=report, to_status="in_progress", by=agent_user)
    report = services.transition(signalement=report, to_status="resolved", by=agent_user)
    second = link_path(report)

    # Reopened and resolved again: the first link answers nothing.
    assert api_client.get(first).status_code == 404
    refused = api_client.post(first, {"is_fixed": False}, format="json")
    assert refused.status_code == 404
    assert not Feedback.objects.exists()

    recorded = api_client.post(second, {"is_fixed": True}, format="json")
    assert recorded.status_code == 201
    assert Feedback.objects.get().resolved_at == report.resolved_at


def test_a_bad_answer_parameter_is_a_400(api_client):
    report = resolved(contact_email=CONTACT)
    path = link_path(report).split("?")[0]

    response = api_client.get(path, {"answer": "maybe"})

    assert response.status_code == 400 and response.json()["errors"][0]["attr"] == "answer"


# --- The "resolved" email ------------------------------------------------------------------


def test_the_resolved_email_asks_the_reporter_with_two_links_that_work(
    agent_client, api_client, django_capture_on_commit_callbacks
):
    report = confirmed(SignalementFactory(contact_email=CONTACT, language="en"))
    services.transition(signalement=report, to_status="acknowledged")
    transition = reverse("signalement-transition", args=[report.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(transition, {"status": "resolved"}, format="json")

    assert response.status_code == 200, response.content
    [message] = mail.outbox
    assert message.to == [CONTACT]
    urls = re.findall(rf"{re.escape(BASE)}/api/feedback/\S+", message.body)
    assert [url.rsplit("=", 1)[1] for url in urls] == ["fixed", "not_fixed"]
    assert "Is the problem fixed?" in message.body
    [(html, _mimetype)] = message.alternatives
    for url in urls:
        assert f'href="{url}"' in html
    # The "not fixed" link opens the page, then its form reopens the report.
    path = urls[1].removeprefix(BASE)
    assert api_client.get(path).json()["answer"] == "not_fixed"
    assert api_client.post(path, {"is_fixed": False}, format="json").status_code == 201
    report.refresh_from_db()
    assert report.status == "in_progress"


def test_other_status_emails_ask_nothing(agent_client, django_capture_on_commit_callbacks):
    report = confirmed(SignalementFactory(contact_email=CONTACT))
    transition = reverse("signalement-transition", args=[report.pk])

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(transition, {"status": "acknowledged"}, format="json")

    [message] = mail.outbox
    assert "/api/feedback/" not in message.body


def test_a_resolved_email_sent_after_the_reopening_asks_nothing(agent_user):
    report = confirmed(resolved(contact_email=CONTACT, by=agent_user))
    services.transition(signalement=report, to_status="in_progress", by=agent_user)

    notifications.send_status_email.enqueue(report.pk, "acknowledged", "resolved")

    [message] = mail.outbox
    assert "/api/feedback/" not in message.body


# --- The admin ----------------------------------------------------------------------------


@pytest.fixture
def admin_agent(client, agent_user):
    client.force_login(agent_user)
    return client


CHANGELIST = "admin:signalements_feedback_changelist"


def test_agents_decide_reopen_requests_in_the_admin(admin_agent, user_client, reporter):
    accepted = resolved(reporter=reporter, policy="request", title="À rouvrir")
    refused = SignalementFactory(reporter=reporter, category=accepted.category)
    for status in ("acknowledged", "resolved"):
        refused = services.transition(signalement=refused, to_status=status)
    fixed = resolved(reporter=reporter)
    for report, is_fixed in ((accepted, False), (refused, False), (fixed, True)):
        assert answer(user_client, report, is_fixed=is_fixed).status_code == 201
    verdicts = {v.signalement_id: v for v in Feedback.objects.all()}

    listing = admin_agent.get(reverse(CHANGELIST), {"reopen__exact": "pending"})
    assert listing.status_code == 200
    assert accepted.reference in listing.content.decode()
    assert fixed.reference not in listing.content.decode()

    response = admin_agent.post(
        reverse(CHANGELIST),
        {
            "action": "accept_reopen_requests",
            "_selected_action": [verdicts[accepted.pk].pk, verdicts[fixed.pk].pk],
            "note": "On y retourne.",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert fixed.reference in response.content.decode()  # listed as left unchanged
    admin_agent.post(
        reverse(CHANGELIST),
        {"action": "refuse_reopen_requests", "_selected_action": [verdicts[refused.pk].pk]},
    )

    states = dict(Feedback.objects.values_list("signalement_id", "reopen"))
    assert states == {accepted.pk: "accepted", refused.pk: "refused", fixed.pk: ""}
    statuses = dict(Signalement.objects.values_list("pk", "status"))
    assert (statuses[accepted.pk], statuses[refused.pk], statuses[fixed.pk]) == (
        "in_progress",
        "resolved",
        "resolved",
    )
    assert Signalement.objects.get(pk=accepted.pk).history.first().history_change_reason == (
        "On y retourne."
    )


def test_a_verdict_is_read_only_in_the_admin(admin_agent, user_client, reporter):
    report = resolved(reporter=reporter)
    answer(user_client, report, is_fixed=False, comment="Toujours là.")
    verdict = Feedback.objects.get()
    page = reverse("admin:signalements_feedback_change", args=[verdict.pk])

    shown = admin_agent.get(page)
    assert shown.status_code == 200 and "Toujours là." in shown.content.decode()
    assert admin_agent.post(page, {"comment": "changé"}).status_code == 403
    assert admin_agent.get(reverse("admin:signalements_feedback_add")).status_code == 403
    assert Feedback.objects.get().comment == "Toujours là."


def test_a_user_without_the_permission_sees_no_verdicts(client):
    staff = UserFactory(username="stagiaire", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert (
        Group.objects.get(name=AGENTS_GROUP)
        .permissions.filter(codename__in=["view_feedback", "change_feedback"])
        .count()
        == 2
    )


def test_the_inline_shows_a_reports_verdicts_on_its_page(
    admin_agent, user_client, reporter, monkeypatch
):
    from django.contrib import admin

    from signalements.admin.feedback import FeedbackInline

    report_admin = admin.site._registry[Signalement]
    if FeedbackInline not in report_admin.inlines:
        monkeypatch.setattr(report_admin, "inlines", [*report_admin.inlines, FeedbackInline])
    report = resolved(reporter=reporter)
    answer(user_client, report, is_fixed=True, comment="Réparé, merci.")  # no note: only here

    page = admin_agent.get(reverse("admin:signalements_signalement_change", args=[report.pk]))

    assert page.status_code == 200
    assert "Réparé, merci." in page.content.decode()


# --- Concurrency (PostgreSQL's row locks; SQLite runs one writer at a time) ----------------


def at_once(calls) -> list:
    """Run the calls together, each in a thread with its own connection: what each
    returned, or the `feedback.Refused` code it raised."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait(timeout=30)
            return call()
        except feedback.Refused as refused:
            return refused.code
        finally:
            connection.close()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result(timeout=60) for future in [pool.submit(run, c) for c in calls]]


on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks: PostgreSQL (SQLite serializes writers)"
)


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_answers_sent_at_once_record_one_verdict_and_reopen_once(reporter):
    report = resolved(reporter=reporter)

    outcomes = at_once([lambda: feedback.record(report, False, "Non.", reporter)] * 4)

    # The first one reopened the report; the others, let through one at a time, find
    # it answered (or no longer resolved).
    assert len([outcome for outcome in outcomes if isinstance(outcome, Feedback)]) == 1
    assert {o for o in outcomes if isinstance(o, str)} <= {"already_answered", "not_resolved"}
    assert Feedback.objects.count() == 1
    assert Signalement.objects.get(pk=report.pk).status == "in_progress"
    assert Comment.objects.filter(signalement=report).count() == 1


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_an_acceptance_and_a_refusal_at_once_only_one_wins(reporter):
    agent_user = UserFactory(username="agent-on-call")  # the domain leaves roles to doors
    report = resolved(reporter=reporter, policy="request")
    verdict = feedback.record(report, False, "Non.", reporter)

    outcomes = at_once(
        [
            lambda: feedback.accept(verdict, agent_user, "Oui."),
            lambda: feedback.refuse(verdict, agent_user, "Non."),
        ]
    )

    assert len([outcome for outcome in outcomes if outcome == "not_pending"]) == 1
    decided = Feedback.objects.get()
    assert decided.reopen in ("accepted", "refused")
    status = Signalement.objects.get(pk=report.pk).status
    assert status == ("in_progress" if decided.reopen == "accepted" else "resolved")
