"""Status changes through the API, the history they leave, comments, and the emails
sent to reporters."""

import pytest
from django.core import mail
from django.urls import reverse

from signalements.models import TRANSITIONS, Comment, Status

from .contact_addresses import confirmed
from .factories import SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db


def transition_url(report):
    return reverse("signalement-transition", args=[report.pk])


def history_url(report):
    return reverse("signalement-history", args=[report.pk])


def comments_url(report):
    return reverse("signalement-comments", args=[report.pk])


@pytest.mark.parametrize(
    "from_status, to_status",
    [(a, b) for a in Status for b in Status],
)
def test_every_transition_through_the_api_follows_the_table(
    agent_client, from_status, to_status, django_capture_on_commit_callbacks
):
    report = SignalementFactory(status=from_status)

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(transition_url(report), {"status": to_status}, format="json")

    report.refresh_from_db()
    if to_status in TRANSITIONS[from_status]:
        assert response.status_code == 200, response.json()
        assert response.json()["status"] == to_status
        assert report.status == to_status
        assert (report.resolved_at is not None) == (to_status == Status.RESOLVED)
    else:
        assert response.status_code == 409
        error = response.json()["errors"][0]
        assert error["code"] == "transition_not_allowed"
        for allowed in TRANSITIONS[from_status]:
            assert allowed in error["detail"]
        assert report.status == from_status


def test_an_unknown_status_is_a_400(agent_client):
    report = SignalementFactory()

    response = agent_client.post(transition_url(report), {"status": "closed"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "status"


def test_reopening_clears_resolved_at(agent_client):
    report = SignalementFactory(status="acknowledged")
    agent_client.post(transition_url(report), {"status": "resolved"}, format="json")

    agent_client.post(transition_url(report), {"status": "in_progress"}, format="json")

    report.refresh_from_db()
    assert report.resolved_at is None


def test_a_transition_note_becomes_a_public_update(agent_client, api_client):
    report = SignalementFactory()

    agent_client.post(
        transition_url(report),
        {"status": "acknowledged", "note": "Une équipe passera demain."},
        format="json",
    )

    comments = api_client.get(comments_url(report)).json()
    assert [(c["body"], c["status"], c["author_role"]) for c in comments] == [
        ("Une équipe passera demain.", "acknowledged", "agent")
    ]


def test_the_reporter_is_emailed_in_french_after_a_status_change(
    agent_client, django_capture_on_commit_callbacks
):
    reporter = UserFactory(username="lea", email="lea@example.org")
    report = SignalementFactory(reporter=reporter, contact_email="autre@example.org")

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(
            transition_url(report), {"status": "acknowledged", "note": "Merci !"}, format="json"
        )

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["lea@example.org"]
    assert report.reference in message.subject
    assert "pris en compte" in message.body
    assert "Merci !" in message.body


def test_an_anonymous_report_is_notified_at_its_contact_email(
    agent_client, django_capture_on_commit_callbacks
):
    report = confirmed(SignalementFactory(reporter=None, contact_email="camille@example.org"))

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(transition_url(report), {"status": "rejected"}, format="json")

    assert [m.to for m in mail.outbox] == [["camille@example.org"]]
    assert "rejeté" in mail.outbox[0].body


def test_no_email_is_sent_before_the_transaction_commits(
    agent_client, django_capture_on_commit_callbacks
):
    report = confirmed(SignalementFactory(contact_email="camille@example.org"))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        agent_client.post(transition_url(report), {"status": "acknowledged"}, format="json")

    assert mail.outbox == []
    for callback in callbacks:  # the commit: the email goes then, once
        callback()
    assert len(mail.outbox) == 1


def test_a_mail_failure_is_logged_and_does_not_undo_the_change(
    agent_client, settings, caplog, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "tests.failing_email.FailingBackend"
    report = confirmed(SignalementFactory(contact_email="camille@example.org"))

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(
            transition_url(report), {"status": "acknowledged"}, format="json"
        )

    assert response.status_code == 200
    report.refresh_from_db()
    assert report.status == "acknowledged"
    assert "Could not send the status email" in caplog.text


def test_the_history_records_who_changed_what(agent_client, agent_user):
    report = SignalementFactory(priority="normal")
    agent_client.patch(
        reverse("signalement-detail", args=[report.pk]), {"priority": "high"}, format="json"
    )
    agent_client.post(
        transition_url(report), {"status": "acknowledged", "note": "Vu"}, format="json"
    )

    entries = agent_client.get(history_url(report)).json()

    assert [e["kind"] for e in entries] == ["created", "changed", "changed"]
    assert {"field": "priority", "old": "normal", "new": "high"} in entries[1]["changes"]
    assert entries[1]["by"] == agent_user.username
    assert entries[2]["changes"] == [{"field": "status", "old": "new", "new": "acknowledged"}]
    assert entries[2]["note"] == "Vu"
    assert any(c["field"] == "contact_email" for c in entries[0]["changes"])


def test_the_public_history_shows_status_changes_only_without_names(agent_client, api_client):
    report = SignalementFactory()
    agent_client.patch(
        reverse("signalement-detail", args=[report.pk]),
        {"priority": "urgent", "contact_email": "x@example.org"},
        format="json",
    )
    agent_client.post(
        transition_url(report), {"status": "acknowledged", "note": "Vu"}, format="json"
    )

    entries = api_client.get(history_url(report)).json()

    assert entries == [
        {
            "at": entries[0]["at"],
            "kind": "created",
            "by": None,
            "note": "",
            "changes": [{"field": "status", "old": None, "new": "new"}],
        },
        {
            "at": entries[1]["at"],
            "kind": "changed",
            "by": None,
            "note": "Vu",
            "changes": [{"field": "status", "old": "new", "new": "acknowledged"}],
        },
    ]
    assert "x@example.org" not in api_client.get(history_url(report)).content.decode()


def test_admin_bulk_actions_are_recorded_in_the_history(admin_client, admin_user):
    report = SignalementFactory(status="new")

    admin_client.post(
        reverse("admin:signalements_signalement_changelist"),
        {"action": "mark_acknowledged", "_selected_action": [report.pk]},
    )

    latest = report.history.first()
    assert latest.status == "acknowledged"
    assert latest.history_user == admin_user


def test_an_agent_writes_an_internal_note_that_only_agents_read(
    agent_client, api_client, user_client, reporter
):
    report = SignalementFactory(reporter=reporter)

    created = agent_client.post(
        comments_url(report), {"body": "Voir avec la voirie", "is_internal": True}, format="json"
    )
    agent_client.post(comments_url(report), {"body": "Intervention prévue"}, format="json")

    assert created.status_code == 201
    assert created.json()["is_internal"] is True
    assert [c["body"] for c in agent_client.get(comments_url(report)).json()] == [
        "Voir avec la voirie",
        "Intervention prévue",
    ]
    for client in (api_client, user_client):
        assert [c["body"] for c in client.get(comments_url(report)).json()] == [
            "Intervention prévue"
        ]


def test_a_reporter_comments_on_their_own_report(user_client, reporter):
    report = SignalementFactory(reporter=reporter)

    response = user_client.post(
        comments_url(report), {"body": "C'est toujours cassé."}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["author_role"] == "reporter"
    assert Comment.objects.get().author == reporter


def test_a_reporter_cannot_write_an_internal_note(user_client, reporter):
    report = SignalementFactory(reporter=reporter)

    response = user_client.post(
        comments_url(report), {"body": "x", "is_internal": True}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "is_internal"
    assert not Comment.objects.exists()


@pytest.mark.parametrize("body", ["", "   ", "x" * 4001, "a\x00b"])
def test_an_invalid_comment_is_a_400(agent_client, body):
    report = SignalementFactory()

    response = agent_client.post(comments_url(report), {"body": body}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "body"
    assert not Comment.objects.exists()
