"""The emails to reporters, through Django's locmem backend (`mail.outbox`): each one in
the report's language, with a text and an HTML part, the public links (PUBLIC_BASE_URL)
that work when followed, and, for notifications, the one-click unsubscribe of RFC 8058
(`List-Unsubscribe`, `List-Unsubscribe-Post`). Subjects hold a reference and fixed
words, never what people wrote."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from signalements import emails
from signalements.models import ReporterOptOut, Signalement

from .contact_addresses import confirmed
from .factories import SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE = "https://signalements.example.org"


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = BASE


def transition_url(report):
    return reverse("signalement-transition", args=[report.pk])


def comments_url(report):
    return reverse("signalement-comments", args=[report.pk])


def html_of(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def local_path(url: str) -> str:
    """A link of an email, as the test client follows it."""
    assert url.startswith(BASE + "/"), url
    return url.removeprefix(BASE)


def unsubscribe_link(message) -> str:
    header = message.extra_headers["List-Unsubscribe"]
    assert header.startswith("<") and header.endswith(">")
    return header[1:-1]


def create(client, django_capture_on_commit_callbacks, **headers):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("signalement-list"),
            {
                "title": "Nid-de-poule",
                "description": "Un trou profond devant le n°3.",
                "date": "2025-04-29T16:30:00+02:00",
                "contact_email": "lea@example.org",
                "contact_phone": "06 00 00 00 00",
            },
            format="json",
            **headers,
        )
    assert response.status_code == 201, response.content
    return Signalement.objects.get(pk=response.json()["id"])


# --- The confirmation of a new report -------------------------------------------------------


@pytest.mark.parametrize(
    "language, subject, received, progress",
    [
        (
            "fr",
            "[{ref}] Votre signalement a bien été reçu",
            "Votre signalement a bien été reçu",
            "Suivre",
        ),
        ("en", "[{ref}] Your report was received", "Your report was received", "Follow its"),
    ],
)
def test_a_new_report_is_confirmed_to_its_reporter_in_their_language_with_its_link(
    api_client, django_capture_on_commit_callbacks, language, subject, received, progress
):
    report = create(api_client, django_capture_on_commit_callbacks, HTTP_ACCEPT_LANGUAGE=language)

    [message] = mail.outbox
    assert message.to == ["lea@example.org"]
    assert message.subject == subject.format(ref=report.reference)
    assert received in message.body and report.reference in message.body
    assert progress in message.body
    link = f"{BASE}/api/signalements/{report.pk}/"
    assert link in message.body and f'href="{link}"' in html_of(message)
    assert received in html_of(message)
    # A receipt, not a notification: no one-click header (its text has a link to stop).
    assert "List-Unsubscribe" not in message.extra_headers
    # Its link works: the report as the public reads it.
    assert api_client.get(local_path(link)).json()["reference"] == report.reference


def test_a_report_without_an_address_gets_no_email(api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            reverse("signalement-list"),
            {"description": "Panne", "date": "2025-04-29T16:30:00+02:00"},
            format="json",
        )
    assert response.status_code == 201
    assert mail.outbox == []


def test_a_logged_in_reporter_is_written_to_at_their_accounts_address(
    user_client, reporter, django_capture_on_commit_callbacks
):
    create(user_client, django_capture_on_commit_callbacks)

    assert [message.to for message in mail.outbox] == [[reporter.email]]


# --- Status changes ---------------------------------------------------------------------------


def test_the_status_email_has_both_parts_and_a_one_click_unsubscribe_that_works(
    agent_client, api_client, django_capture_on_commit_callbacks
):
    report = confirmed(SignalementFactory(contact_email="lea@example.org", title="Lampadaire"))

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(
            transition_url(report),
            {"status": "acknowledged", "note": "Une équipe passe <demain>."},
            format="json",
        )

    [message] = mail.outbox
    assert message.subject == f"[{report.reference}] Votre signalement est pris en compte"
    assert "Une équipe passe <demain>." in message.body
    html = html_of(message)
    assert "Une équipe passe &lt;demain&gt;." in html  # escaped in HTML
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = unsubscribe_link(message)
    assert re.fullmatch(rf"{BASE}/api/subscriptions/unsubscribe/[A-Za-z0-9_.:-]+/", link)
    assert link in message.body and f'href="{link}"' in html

    # GET says what it stops, and stops nothing (a link previewer may open it).
    shown = api_client.get(local_path(link))
    assert shown.status_code == 200
    assert shown.json() == {
        "kind": "report",
        "reference": report.reference,
        "description": f"Les e-mails sur le signalement {report.reference} à cette adresse.",
        "subscribed": True,
    }
    assert not ReporterOptOut.objects.exists()
    # The mail client's one-click POST (RFC 8058: a form body, no cookie).
    done = api_client.post(
        local_path(link),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert done.status_code == 200, done.content
    assert done.json()["subscribed"] is False
    assert ReporterOptOut.objects.filter(signalement=report).exists()

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(transition_url(report), {"status": "in_progress"}, format="json")
        agent_client.post(comments_url(report), {"body": "Travaux lundi."}, format="json")
    assert mail.outbox == []
    # Again: the same answer, nothing more.
    again = api_client.post(local_path(link))
    assert again.status_code == 200 and again.json()["subscribed"] is False


def test_the_status_email_in_english_for_a_report_made_in_english(
    agent_client, django_capture_on_commit_callbacks
):
    report = confirmed(SignalementFactory(contact_email="lea@example.org", language="en"))

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(transition_url(report), {"status": "rejected"}, format="json")

    [message] = mail.outbox
    assert message.subject == f"[{report.reference}] Your report is rejected"
    assert "Your report" in message.body and "is now “rejected”" in message.body
    assert "You receive this email because you made this report." in message.body
    assert 'lang="en"' in html_of(message)


def test_a_subject_never_holds_what_people_wrote(agent_client, django_capture_on_commit_callbacks):
    report = confirmed(
        SignalementFactory(
            contact_email="lea@example.org", title="Bcc: victime@example.org\nURGENT gagnez"
        )
    )

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(
            transition_url(report),
            {"status": "acknowledged", "note": "Subject: faux"},
            format="json",
        )
        agent_client.post(comments_url(report), {"body": "URGENT"}, format="json")

    assert [message.subject for message in mail.outbox] == [
        f"[{report.reference}] Votre signalement est pris en compte",
        f"[{report.reference}] Une nouvelle réponse sur votre signalement",
    ]
    for message in mail.outbox:
        assert "victime" not in str(message.message()["Subject"])
        assert message.to == ["lea@example.org"]


# --- Updates by the agents ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "language, subject, intro",
    [
        ("fr", "[{ref}] Une nouvelle réponse sur votre signalement", "L’équipe a répondu"),
        ("en", "[{ref}] A new update on your report", "The team wrote an update"),
    ],
)
def test_an_agents_public_update_is_emailed_to_the_reporter(
    agent_client, django_capture_on_commit_callbacks, language, subject, intro
):
    report = confirmed(SignalementFactory(contact_email="lea@example.org", language=language))

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(comments_url(report), {"body": "Réparé demain matin."}, format="json")
        agent_client.post(
            comments_url(report), {"body": "Note interne", "is_internal": True}, format="json"
        )

    [message] = mail.outbox
    assert message.subject == subject.format(ref=report.reference)
    assert intro in message.body and "Réparé demain matin." in message.body
    assert "Réparé demain matin." in html_of(message)
    assert "Note interne" not in message.body
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_reporters_own_update_is_not_emailed_back_to_them(
    reporter, user_client, django_capture_on_commit_callbacks
):
    report = SignalementFactory(reporter=reporter, contact_email="")

    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post(comments_url(report), {"body": "Toujours là."}, format="json")

    assert response.status_code == 201
    assert mail.outbox == []


def test_the_reporter_who_follows_again_gets_their_emails_back(
    agent_client, api_client, django_capture_on_commit_callbacks
):
    report = SignalementFactory(contact_email="lea@example.org")
    ReporterOptOut.objects.create(signalement=report)

    with django_capture_on_commit_callbacks(execute=True):
        api_client.post(
            reverse("signalement-follow", args=[report.pk]),
            {"email": "LEA@example.org"},
            format="json",
        )
    [confirmation] = mail.outbox
    confirm = re.search(rf"{BASE}(/api/subscriptions/confirm/\S+/)", confirmation.body)[1]
    assert api_client.post(confirm).status_code == 200
    assert not ReporterOptOut.objects.exists()

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(transition_url(report), {"status": "acknowledged"}, format="json")
    # One email: as its reporter (the follow at the same address is not a second one).
    [message] = mail.outbox
    assert message.to == ["lea@example.org"]
    assert "Votre signalement" in message.body


# --- Delivery -------------------------------------------------------------------------------


def test_the_retry_delays_are_a_setting():
    from django.conf import settings

    assert emails.RETRY_DELAYS == tuple(
        timedelta(seconds=seconds) for seconds in settings.EMAIL_RETRY_DELAYS
    )
    assert settings.EMAIL_RETRY_DELAYS == [60, 300, 1800, 7200]


def test_a_user_with_no_email_and_no_contact_gets_nothing(
    agent_client, django_capture_on_commit_callbacks
):
    report = SignalementFactory(reporter=UserFactory(email=""), contact_email="")

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(transition_url(report), {"status": "acknowledged"}, format="json")

    assert mail.outbox == []
