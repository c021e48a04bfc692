"""A report's contact address gets its status changes and updates only once its owner
confirmed it (`signalements/contact_confirmation.py`): the first email carries the link
(GET shows, POST confirms), an address confirmed before is used at once, an account's
address needs none, and the record (a keyed hash, no address) goes with the contact
data. And no subject line, of any email, holds what people wrote."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from signalements import (
    alerts,
    contact_confirmation,
    notifications,
    overdue,
    services,
    webhooks,
)
from signalements.models import (
    ConfirmedContact,
    Department,
    Signalement,
    Subscription,
    WebhookEndpoint,
)

from .factories import CategoryFactory, SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE = "https://signalements.example.org"
ADDRESS = "lea@example.org"
HOSTILE = "Win $$$ <script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = BASE


def html_of(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def confirm_path(message) -> str:
    """The local path of the link that confirms a contact address, in an email's text
    (and the same in its HTML)."""
    [url] = re.findall(rf"{BASE}/api/contact/confirm/\S+/", message.body)
    assert f'href="{url}"' in html_of(message)
    return url.removeprefix(BASE)


def create(client, django_capture_on_commit_callbacks, email=ADDRESS, **fields):
    body = {
        "title": "Lampadaire éteint",
        "description": "Éteint depuis trois soirs.",
        "date": "2025-04-29T16:30:00+02:00",
        "contact_email": email,
        **fields,
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("signalement-list"), body, format="json")
    assert response.status_code == 201, response.content
    return Signalement.objects.get(pk=response.json()["id"]), response.json()


def act(agent_client, report, django_capture_on_commit_callbacks, *, status="acknowledged"):
    """An agent changes the report's status and writes a public update."""
    with django_capture_on_commit_callbacks(execute=True):
        moved = agent_client.post(
            reverse("signalement-transition", args=[report.pk]), {"status": status}, format="json"
        )
        written = agent_client.post(
            reverse("signalement-comments", args=[report.pk]), {"body": "Vu."}, format="json"
        )
    assert moved.status_code == 200 and written.status_code == 201


# --- The link of the first email ------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "words", "button"),
    [
        ("fr", "Confirmez cette adresse", "Confirmer"),
        ("en", "Confirm this address to receive updates", "Confirm"),
    ],
)
def test_the_first_email_carries_the_link_and_nothing_else_comes_before_it_is_followed(
    api_client, agent_client, django_capture_on_commit_callbacks, language, words, button
):
    api_client.credentials(HTTP_ACCEPT_LANGUAGE=language)
    report, _ = create(api_client, django_capture_on_commit_callbacks)
    [first] = mail.outbox
    assert first.to == [ADDRESS]
    path = confirm_path(first)
    if language == "en":  # the French catalogue comes with the lead's translation
        assert words in first.body
    assert not ConfirmedContact.objects.exists()

    # Until confirmed: no status change, no update; the tasks say why.
    mail.outbox.clear()
    act(agent_client, report, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    result = notifications.send_status_email.enqueue(report.pk, "new", "acknowledged")
    assert result.return_value == "address not confirmed"

    # GET shows (a link previewer confirms nothing), a browser gets the button; POST confirms.
    shown = api_client.get(path)
    assert shown.status_code == 200
    assert shown["Cache-Control"] == "no-store"  # a secret link's page
    assert shown.json() == {
        "reference": report.reference,
        "description": shown.json()["description"],
        "confirmed": False,
    }
    assert report.reference in shown.json()["description"]
    page = api_client.get(path, HTTP_ACCEPT="text/html")
    assert page["Content-Type"].startswith("text/html")
    assert '<form method="post"' in page.content.decode()
    assert not ConfirmedContact.objects.exists()
    done = api_client.post(path)
    assert done.status_code == 200
    assert done.json()["confirmed"] is True
    assert api_client.post(path).json()["confirmed"] is True  # again: nothing more
    assert ConfirmedContact.objects.count() == 1

    mail.outbox.clear()
    act(agent_client, report, django_capture_on_commit_callbacks, status="in_progress")
    assert [message.to for message in mail.outbox] == [[ADDRESS], [ADDRESS]]
    if language == "en":
        assert button in page.content.decode()


def test_the_record_keeps_no_address(api_client, django_capture_on_commit_callbacks):
    report, _ = create(
        api_client, django_capture_on_commit_callbacks, email="Lea.Robert@Example.org"
    )
    api_client.post(confirm_path(mail.outbox[0]))
    [row] = ConfirmedContact.objects.values()
    assert row["signalement_id"] == report.pk
    assert re.fullmatch(r"[0-9a-f]{64}", row["address_digest"])
    assert "lea" not in str(row).lower()
    # A keyed hash: the address's plain SHA-256 is not it.
    import hashlib

    assert row["address_digest"] != hashlib.sha256(b"lea.robert@example.org").hexdigest()


def test_an_address_confirmed_before_is_used_at_once(
    api_client, agent_client, django_capture_on_commit_callbacks
):
    first, _ = create(api_client, django_capture_on_commit_callbacks)
    api_client.post(confirm_path(mail.outbox[0]))
    mail.outbox.clear()

    second, _ = create(api_client, django_capture_on_commit_callbacks, email=" LEA@example.org ")
    [receipt] = mail.outbox
    assert "/api/contact/confirm/" not in receipt.body
    assert "We will write to you" in receipt.body or "Nous vous écrirons" in receipt.body
    # Recorded for the second report too: erasing the first one's does not take it away.
    assert set(ConfirmedContact.objects.values_list("signalement_id", flat=True)) == {
        first.pk,
        second.pk,
    }
    contact_confirmation.forget([first.pk])
    mail.outbox.clear()
    act(agent_client, second, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 2


def test_a_confirmed_follow_confirms_the_address(
    api_client, agent_client, django_capture_on_commit_callbacks
):
    other = SignalementFactory()
    with django_capture_on_commit_callbacks(execute=True):
        api_client.post(reverse("signalement-follow", args=[other.pk]), {"email": ADDRESS})
    [confirmation] = mail.outbox
    [link] = re.findall(rf"{BASE}(/api/subscriptions/confirm/\S+/)", confirmation.body)
    assert api_client.post(link).status_code == 200
    mail.outbox.clear()

    report = SignalementFactory(contact_email=ADDRESS)
    act(agent_client, report, django_capture_on_commit_callbacks)
    assert [message.to for message in mail.outbox] == [[ADDRESS], [ADDRESS]]


def test_an_unconfirmed_follow_confirms_nothing(
    api_client, agent_client, django_capture_on_commit_callbacks
):
    Subscription.objects.create(kind="follow", signalement=SignalementFactory(), email=ADDRESS)
    report = SignalementFactory(contact_email=ADDRESS)
    act(agent_client, report, django_capture_on_commit_callbacks)
    assert mail.outbox == []


def test_a_logged_in_reporters_account_address_needs_no_confirmation(
    user_client, reporter, agent_client, django_capture_on_commit_callbacks
):
    report, _ = create(user_client, django_capture_on_commit_callbacks, email="autre@example.org")
    [receipt] = mail.outbox
    assert receipt.to == [reporter.email]
    assert "/api/contact/confirm/" not in receipt.body
    mail.outbox.clear()
    act(agent_client, report, django_capture_on_commit_callbacks)
    assert [message.to for message in mail.outbox] == [[reporter.email], [reporter.email]]


def test_a_logged_in_reporter_without_an_account_address_confirms_the_contact_one(
    agent_client, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(UserFactory(email=""))
    report, _ = create(client, django_capture_on_commit_callbacks)
    assert confirm_path(mail.outbox[0])
    mail.outbox.clear()
    act(agent_client, report, django_capture_on_commit_callbacks)
    assert mail.outbox == []


def test_a_changed_address_gets_its_own_link_and_the_old_link_confirms_nothing(
    api_client, agent_client, django_capture_on_commit_callbacks
):
    report, created = create(api_client, django_capture_on_commit_callbacks)
    old_link = confirm_path(mail.outbox[0])
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        changed = api_client.patch(
            reverse("signalement-detail", args=[report.pk]),
            {"contact_email": "nouvelle@example.org"},
            format="json",
            headers={"X-Reporter-Token": created["reporter_token"]},
        )
    assert changed.status_code == 200, changed.content
    [message] = mail.outbox
    assert message.to == ["nouvelle@example.org"]
    assert report.reference in message.subject
    new_link = confirm_path(message)

    refused = api_client.post(old_link)
    assert refused.status_code == 404
    assert refused.json()["errors"][0]["code"] == "not_found"
    assert api_client.post(new_link).json()["confirmed"] is True
    mail.outbox.clear()
    act(agent_client, report, django_capture_on_commit_callbacks)
    assert {message.to[0] for message in mail.outbox} == {"nouvelle@example.org"}


def test_a_bad_or_expired_link_is_a_404_in_the_apis_shape(
    api_client, settings, django_capture_on_commit_callbacks
):
    create(api_client, django_capture_on_commit_callbacks)
    path = confirm_path(mail.outbox[0])
    token = path.split("/")[-2]
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "x", "a" * 900):
        response = api_client.post(f"/api/contact/confirm/{bad}/")
        assert response.status_code == 404
        assert response.json()["type"] == "client_error"
    settings.CONTACT_CONFIRM_DAYS = -1  # every link is too old
    response = api_client.get(path)
    assert response.status_code == 404
    assert "expir" in response.json()["errors"][0]["detail"]
    assert not ConfirmedContact.objects.exists()


def test_the_report_gone_its_link_confirms_nothing(api_client, django_capture_on_commit_callbacks):
    report, _ = create(api_client, django_capture_on_commit_callbacks)
    path = confirm_path(mail.outbox[0])
    report.delete()
    assert api_client.post(path).status_code == 404
    assert not ConfirmedContact.objects.exists()


# --- Erasure -----------------------------------------------------------------------------------


def test_the_confirmation_goes_with_the_erased_contact_data(
    reporter, user_client, django_capture_on_commit_callbacks
):
    reporter.email = ""
    reporter.save()
    report, _ = create(user_client, django_capture_on_commit_callbacks)
    user_client.post(confirm_path(mail.outbox[0]))
    other = contact_confirmation.adopt(SignalementFactory(contact_email="x@example.org"))
    assert ConfirmedContact.objects.filter(signalement=report).exists() and not other

    response = user_client.post(reverse("me-erase-contact-data"))
    assert response.status_code == 200, response.content
    assert not ConfirmedContact.objects.exists()


def test_the_confirmation_goes_with_the_retention(api_client, django_capture_on_commit_callbacks):
    report, _ = create(api_client, django_capture_on_commit_callbacks)
    api_client.post(confirm_path(mail.outbox[0]))
    kept, _ = create(api_client, django_capture_on_commit_callbacks)  # confirmed at once
    for status in ("acknowledged", "resolved"):
        services.transition(signalement=Signalement.objects.get(pk=report.pk), to_status=status)
    Signalement.objects.filter(pk=report.pk).update(
        resolved_at=timezone.now() - timedelta(days=400)
    )

    call_command("anonymize_reports", stdout=StringIO())

    assert list(ConfirmedContact.objects.values_list("signalement_id", flat=True)) == [kept.pk]


# --- Subjects ------------------------------------------------------------------------------------


def test_no_subject_of_any_email_holds_what_people_wrote(
    api_client, agent_client, agent_user, superuser, settings, django_capture_on_commit_callbacks
):
    """Every kind of email, about a report whose title, description, note, comments,
    address, category and department (an admin's words) are hostile: none of it in a
    subject. (A webhook endpoint's URL is in its email's subject: an admin wrote it.)"""
    settings.LANGUAGE_CODE = "en"  # subjects named by their English words
    api_client.credentials(HTTP_ACCEPT_LANGUAGE="en")
    category = CategoryFactory(name=HOSTILE)
    now = timezone.now()

    # A daily and an immediate alert on the place, confirmed (their confirmation emails).
    alerts_asked = []
    for frequency in ("daily", "immediate"):
        with django_capture_on_commit_callbacks(execute=True):
            asked = api_client.post(
                reverse("alert-list"),
                {
                    "email": f"{frequency}@example.org",
                    "kind": "circle",
                    "lat": 48.111,
                    "lng": -1.68,
                    "radius_m": 500,
                    "frequency": frequency,
                },
                format="json",
            )
        assert asked.status_code == 202, asked.content
        alerts_asked.append(Subscription.objects.get(email=f"{frequency}@example.org"))
    Subscription.objects.update(confirmed_at=now)

    # The report (its receipt with the link; the immediate alert).
    report, created = create(
        api_client,
        django_capture_on_commit_callbacks,
        title=HOSTILE,
        description=HOSTILE,
        address=HOSTILE,
        category=category.code,
        latitude="48.111000",
        longitude="-1.680000",
    )
    api_client.post(confirm_path(mail.outbox[-1]))
    # A follower (the confirmation of the follow), confirmed.
    with django_capture_on_commit_callbacks(execute=True):
        api_client.post(reverse("signalement-follow", args=[report.pk]), {"email": "f@example.org"})
    Subscription.objects.filter(email="f@example.org").update(confirmed_at=now)
    # Its contact address changed (the confirmation of the new one).
    with django_capture_on_commit_callbacks(execute=True):
        api_client.patch(
            reverse("signalement-detail", args=[report.pk]),
            {"contact_email": "autre@example.org"},
            format="json",
            headers={"X-Reporter-Token": created["reporter_token"]},
        )
    report.refresh_from_db()
    contact_confirmation.confirm(contact_confirmation.confirm_token(report))

    # Status changes, with hostile notes, and a hostile update: the reporter's and the
    # follower's emails; the "resolved" one asks whether it is fixed.
    with django_capture_on_commit_callbacks(execute=True):
        for status in ("acknowledged", "resolved"):
            agent_client.post(
                reverse("signalement-transition", args=[report.pk]),
                {"status": status, "note": HOSTILE},
                format="json",
            )
        agent_client.post(
            reverse("signalement-comments", args=[report.pk]), {"body": HOSTILE}, format="json"
        )

    # The daily alert's digest; an agent's overdue digest; a webhook endpoint disabled.
    alerts.send_digest_email.enqueue(
        alerts_asked[0].pk, (now - timedelta(days=1)).isoformat(), timezone.now().isoformat()
    )
    department = Department.objects.create(code="voirie", name=HOSTILE)
    department.members.add(agent_user)
    Signalement.objects.filter(pk=report.pk).update(
        department=department, status="in_progress", due_at=now - timedelta(days=2)
    )
    overdue.send_overdue_digest.enqueue(agent_user.pk, timezone.localdate().isoformat())
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.org/in", events=[])
    webhooks.send_endpoint_disabled_email.enqueue(endpoint.pk)

    subjects = [message.subject for message in mail.outbox]
    kinds = {
        "receipt": "Your report was received",
        "follow confirmation": "Confirm that you follow",
        "alert confirmation": "Confirm your alert",
        "contact confirmation": "Confirm your address",
        "immediate alert": "A new report in your alert's area",
        "status": "Your report is",
        "follower's status": "The report you follow is",
        "update": "A new update on your report",
        "follower's update": "A new update on the report you follow",
        "digest": "Your daily alert",
        "overdue digest": "overdue report",
        "webhook": "Webhook endpoint disabled",
    }
    missing = [kind for kind, words in kinds.items() if not any(words in s for s in subjects)]
    assert missing == [], subjects
    for subject in subjects:
        for word in ("Win", "$$$", "<script", "alert(1)"):
            assert word not in subject, subject
        assert "\n" not in subject and "\r" not in subject
