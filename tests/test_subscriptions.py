"""Following reports and alerts about new ones: asked for through the API (a 202 that
never tells whether the address was subscribed), confirmed by the emailed link, the
updates and alerts emailed (both parts, one-click unsubscribe that works), daily
digests (never two a day), throttled, never showing an address, erased with the
retention and at the user's request."""

import re
from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core import mail, signing
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from signalements import alerts, subscriptions
from signalements.models import Signalement, Subscription

from .contact_addresses import confirmed as contact_confirmed
from .factories import CategoryFactory, SignalementFactory

pytestmark = pytest.mark.django_db

BASE = "https://signalements.example.org"
RENNES = {"lat": 48.1115, "lng": -1.68}
# 48.1115, -1.68 and a point some 550 m north of it.
INSIDE = (Decimal("48.111500"), Decimal("-1.680000"))
NEAR = (Decimal("48.116500"), Decimal("-1.680000"))
FAR = (Decimal("48.200000"), Decimal("-1.680000"))


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = BASE


def follow_url(report):
    return reverse("signalement-follow", args=[report.pk])


def transition_url(report):
    return reverse("signalement-transition", args=[report.pk])


def links(message) -> list[str]:
    """The local paths of the server's links in an email's text."""
    return [url.removeprefix(BASE) for url in re.findall(rf"{BASE}/\S+", message.body)]


def confirm_path(message) -> str:
    [path] = [link for link in links(message) if "/subscriptions/confirm/" in link]
    return path


def unsubscribe_path(message) -> str:
    header = message.extra_headers["List-Unsubscribe"]
    return header[1:-1].removeprefix(BASE)


def html_of(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def follow(client, report, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(follow_url(report), data, format="json")


def ask_alert(client, django_capture_on_commit_callbacks, **data):
    body = {"email": "veille@example.org", "kind": "circle", **RENNES, "radius_m": 1000, **data}
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("alert-list"), body, format="json")


ACCEPTED = {
    "detail": "Si cette adresse peut recevoir des e-mails, un lien de confirmation lui a été "
    "envoyé\u00a0: rien d’autre ne lui sera envoyé avant qu’il soit suivi.",
    "confirmation_required": True,
}


# --- Following a report -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "language, subject, confirm_words, page_words",
    [
        ("fr", "[{ref}] Confirmez que vous suivez ce signalement", "Pour confirmer", "Confirmer"),
        ("en", "[{ref}] Confirm that you follow this report", "To confirm", "Confirm"),
    ],
)
def test_anyone_follows_a_public_report_once_they_confirm_their_address(
    api_client,
    agent_client,
    django_capture_on_commit_callbacks,
    language,
    subject,
    confirm_words,
    page_words,
):
    # Its reporter's confirmed address gets the reporter's emails (not the follower's).
    report = contact_confirmed(
        SignalementFactory(contact_email="camille@example.org", contact_name="Camille")
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            follow_url(report),
            {"email": "suivi@example.org"},
            format="json",
            HTTP_ACCEPT_LANGUAGE=language,
        )

    assert response.status_code == 202, response.content
    assert response.json()["confirmation_required"] is True
    follow_row = Subscription.objects.get()
    assert (follow_row.kind, follow_row.email, follow_row.confirmed_at) == (
        "follow",
        "suivi@example.org",
        None,
    )
    [confirmation] = mail.outbox
    assert confirmation.to == ["suivi@example.org"]
    assert confirmation.subject == subject.format(ref=report.reference)
    assert confirm_words in confirmation.body
    assert "List-Unsubscribe" not in confirmation.extra_headers
    path = confirm_path(confirmation)
    assert f'href="{BASE}{path}"' in html_of(confirmation)

    # Nothing before it is confirmed.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(transition_url(report), {"status": "acknowledged"}, format="json")
    assert [message.to for message in mail.outbox] == [["camille@example.org"]]

    # The link: GET shows (a browser gets the page with the button), POST confirms.
    shown = api_client.get(path)
    assert shown.status_code == 200
    assert shown.json()["confirmed"] is False and shown.json()["kind"] == "follow"
    page = api_client.get(path, HTTP_ACCEPT="text/html", HTTP_ACCEPT_LANGUAGE=language)
    assert page["Content-Type"].startswith("text/html")
    assert '<form method="post"' in page.content.decode() and page_words in page.content.decode()
    follow_row.refresh_from_db()
    assert follow_row.confirmed_at is None
    confirmed = api_client.post(path)
    assert confirmed.status_code == 200
    assert confirmed.json() == {**shown.json(), "confirmed": True}
    follow_row.refresh_from_db()
    assert follow_row.confirmed_at is not None

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(
            transition_url(report),
            {"status": "in_progress", "note": "Équipe sur place."},
            format="json",
        )
    by_address = {message.to[0]: message for message in mail.outbox}
    assert set(by_address) == {"camille@example.org", "suivi@example.org"}
    update = by_address["suivi@example.org"]
    assert report.reference in update.subject
    assert "Équipe sur place." in update.body and "Équipe sur place." in html_of(update)
    # Nothing of the reporter's contact data in an email to someone else.
    for part in (update.body, html_of(update), str(update.message())):
        assert "camille" not in part.lower() and "06 12" not in part
    assert update.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # One click, and no more.
    assert api_client.post(unsubscribe_path(update)).json()["subscribed"] is False
    assert not Subscription.objects.exists()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(transition_url(report), {"status": "resolved"}, format="json")
    assert [message.to for message in mail.outbox] == [["camille@example.org"]]


def test_the_answer_never_tells_whether_the_address_follows_already(
    api_client, django_capture_on_commit_callbacks
):
    report = SignalementFactory()

    first = follow(api_client, report, django_capture_on_commit_callbacks, email="a@example.org")
    api_client.post(confirm_path(mail.outbox[0]))
    again = follow(api_client, report, django_capture_on_commit_callbacks, email="A@example.org")
    other = follow(api_client, report, django_capture_on_commit_callbacks, email="b@example.org")

    assert first.status_code == again.status_code == other.status_code == 202
    assert first.json() == again.json() == other.json() == ACCEPTED
    assert Subscription.objects.count() == 2
    # The confirmed address got no second link; the new one got its own.
    assert [message.to for message in mail.outbox] == [["a@example.org"], ["b@example.org"]]


def test_an_unconfirmed_follow_asked_again_gets_its_link_again(
    api_client, django_capture_on_commit_callbacks
):
    report = SignalementFactory()

    follow(api_client, report, django_capture_on_commit_callbacks, email="a@example.org")
    follow(api_client, report, django_capture_on_commit_callbacks, email="a@example.org")

    assert Subscription.objects.count() == 1
    assert len(mail.outbox) == 2


def test_a_logged_in_caller_follows_with_their_accounts_address_at_once(
    user_client, reporter, agent_client, django_capture_on_commit_callbacks
):
    report = contact_confirmed(SignalementFactory(contact_email="camille@example.org"))

    response = follow(user_client, report, django_capture_on_commit_callbacks)

    assert response.status_code == 202
    assert response.json() == {
        "detail": "L’adresse de votre compte suit ce signalement.",
        "confirmation_required": False,
    }
    assert mail.outbox == []
    row = Subscription.objects.get()
    assert row.email == reporter.email and row.user == reporter and row.confirmed_at is not None

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(
            reverse("signalement-comments", args=[report.pk]), {"body": "Vu."}, format="json"
        )
    assert sorted(message.to[0] for message in mail.outbox) == [
        "camille@example.org",
        reporter.email,
    ]


def test_a_logged_in_caller_following_with_another_address_confirms_it(
    user_client, django_capture_on_commit_callbacks
):
    report = SignalementFactory()

    response = follow(
        user_client, report, django_capture_on_commit_callbacks, email="x@example.org"
    )

    assert response.json() == ACCEPTED
    assert Subscription.objects.get().user is None  # not the account's address
    assert [message.to for message in mail.outbox] == [["x@example.org"]]


@pytest.mark.parametrize(
    "body, attr, code",
    [
        ({}, "email", "email_required"),
        ({"email": "pas-une-adresse"}, "email", "invalid"),
        ({"email": 42}, "email", "invalid"),
        ({"email": "a\x00@example.org"}, "email", "null_characters_not_allowed"),
    ],
)
def test_a_follow_without_a_valid_address_is_refused_naming_it(api_client, body, attr, code):
    report = SignalementFactory()

    response = api_client.post(follow_url(report), body, format="json")

    assert response.status_code == 400
    assert (attr, code) in [(error["attr"], error["code"]) for error in response.json()["errors"]]
    assert not Subscription.objects.exists()


def test_a_report_one_may_not_see_cannot_be_followed(api_client):
    hidden = SignalementFactory(is_public=False)

    response = api_client.post(follow_url(hidden), {"email": "a@example.org"}, format="json")

    assert response.status_code == 404
    assert not Subscription.objects.exists()


def test_followers_hear_of_public_updates_only_and_not_of_a_report_made_private(
    api_client, agent_client, reporter, user_client, django_capture_on_commit_callbacks
):
    report = SignalementFactory(reporter=reporter, contact_email="")
    follow(api_client, report, django_capture_on_commit_callbacks, email="suivi@example.org")
    api_client.post(confirm_path(mail.outbox[0]))
    mail.outbox.clear()
    comments = reverse("signalement-comments", args=[report.pk])

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(comments, {"body": "Interne", "is_internal": True}, format="json")
        user_client.post(comments, {"body": "Merci, toujours cassé."}, format="json")
    [message] = mail.outbox  # the reporter's own update, to the follower alone
    assert message.to == ["suivi@example.org"]
    assert "Merci, toujours cassé." in message.body and "Interne" not in message.body
    assert (
        message.subject
        == f"[{report.reference}] Une nouvelle réponse sur le signalement que vous suivez"
    )

    Signalement.objects.filter(pk=report.pk).update(is_public=False)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(transition_url(report), {"status": "acknowledged"}, format="json")
    assert [message.to for message in mail.outbox] == [[reporter.email]]


def test_no_address_is_shown_in_a_report(
    api_client, agent_client, django_capture_on_commit_callbacks
):
    report = SignalementFactory(contact_email="")
    follow(api_client, report, django_capture_on_commit_callbacks, email="secret@example.org")

    for client in (api_client, agent_client):
        for url in (
            reverse("signalement-detail", args=[report.pk]),
            reverse("signalement-list"),
            reverse("signalement-history", args=[report.pk]),
        ):
            assert b"secret@" not in client.get(url).content


# --- Links --------------------------------------------------------------------------------------


def test_an_altered_or_expired_link_is_a_404_that_says_which(
    api_client, settings, django_capture_on_commit_callbacks
):
    report = SignalementFactory()
    follow(api_client, report, django_capture_on_commit_callbacks, email="a@example.org")
    path = confirm_path(mail.outbox[0])
    token = path.rstrip("/").rsplit("/", 1)[1]

    altered = api_client.post(
        path.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    )
    assert altered.status_code == 404
    assert altered.json()["errors"][0]["code"] == "not_found"

    settings.SUBSCRIPTION_CONFIRM_DAYS = 0
    expired = api_client.post(path, HTTP_ACCEPT_LANGUAGE="en")
    assert expired.status_code == 404
    assert expired.json()["errors"][0]["detail"] == "This link has expired: ask again."
    # An error is JSON, even for a browser.
    page = api_client.get(path, HTTP_ACCEPT="text/html")
    assert page.status_code == 404 and page["Content-Type"] == "application/json"
    assert Subscription.objects.get().confirmed_at is None


def test_a_link_of_one_kind_is_not_a_link_of_the_other(api_client):
    alert = Subscription.objects.create(
        kind="alert",
        email="a@example.org",
        area="bbox",
        min_latitude=0,
        max_latitude=1,
        min_longitude=0,
        max_longitude=1,
        frequency="immediate",
    )
    confirm_token = subscriptions.confirm_token(alert)

    response = api_client.post(reverse("subscription-unsubscribe", args=[confirm_token]))

    assert response.status_code == 404
    assert Subscription.objects.exists()
    # A link of an alert gone before (its id, another key): nothing left to stop.
    earlier = signing.dumps({"s": alert.pk, "k": "other"}, salt=subscriptions.UNSUBSCRIBE_SALT)
    response = api_client.post(reverse("subscription-unsubscribe", args=[earlier]))
    assert response.status_code == 200 and response.json()["subscribed"] is False
    assert Subscription.objects.exists()


# --- Alerts -------------------------------------------------------------------------------------


def create_report(client, django_capture_on_commit_callbacks, point, **fields):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("signalement-list"),
            {
                "title": "Dépôt sauvage",
                "description": "Des sacs sur le trottoir.",
                "date": "2025-04-29T16:30:00+02:00",
                "latitude": str(point[0]),
                "longitude": str(point[1]),
                "contact_email": "auteur@example.org",
                "contact_name": "Auteur Secret",
                **fields,
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    return Signalement.objects.get(pk=response.json()["id"])


def confirmed_alert(client, django_capture_on_commit_callbacks, **data) -> Subscription:
    response = ask_alert(client, django_capture_on_commit_callbacks, **data)
    assert response.status_code == 202, response.content
    assert client.post(confirm_path(mail.outbox[-1])).status_code == 200
    mail.outbox.clear()
    return Subscription.objects.get(kind="alert", email=data.get("email", "veille@example.org"))


@pytest.mark.parametrize(
    "language, subject, words",
    [
        (
            "fr",
            "[{ref}] Un nouveau signalement dans la zone de votre alerte",
            "Un nouveau signalement",
        ),
        ("en", "[{ref}] A new report in your alert's area", "A new report"),
    ],
)
def test_an_immediate_alert_emails_each_new_public_report_in_its_circle(
    api_client, django_capture_on_commit_callbacks, language, subject, words
):
    CategoryFactory(code="voirie", name="Voirie")
    with django_capture_on_commit_callbacks(execute=True):
        asked = api_client.post(
            reverse("alert-list"),
            {"email": "veille@example.org", "kind": "circle", **RENNES, "radius_m": 1000},
            format="json",
            HTTP_ACCEPT_LANGUAGE=language,
        )
    assert asked.status_code == 202 and asked.json()["confirmation_required"] is True
    [confirmation] = mail.outbox
    assert "1000" in confirmation.body
    api_client.post(confirm_path(confirmation))
    mail.outbox.clear()

    near = create_report(api_client, django_capture_on_commit_callbacks, NEAR, category="voirie")
    create_report(api_client, django_capture_on_commit_callbacks, FAR)

    alerts_sent = [message for message in mail.outbox if message.to == ["veille@example.org"]]
    [message] = alerts_sent
    assert message.subject == subject.format(ref=near.reference)
    assert words in message.body and near.reference in message.body
    assert "Voirie" in message.body and "Des sacs sur le trottoir." in html_of(message)
    assert f"{BASE}/api/signalements/{near.pk}/" in message.body
    for part in (message.body, html_of(message), str(message.message())):
        assert "auteur" not in part.lower()
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_an_alert_follows_its_categories_box_and_public_reports_only(
    api_client, agent_client, django_capture_on_commit_callbacks
):
    CategoryFactory(code="voirie")
    CategoryFactory(code="eclairage")
    confirmed_alert(
        api_client,
        django_capture_on_commit_callbacks,
        kind="bbox",
        bbox=[-1.69, 48.10, -1.67, 48.12],
        categories=["voirie"],
    )

    wanted = create_report(
        api_client, django_capture_on_commit_callbacks, INSIDE, category="voirie"
    )
    create_report(api_client, django_capture_on_commit_callbacks, INSIDE, category="eclairage")
    create_report(api_client, django_capture_on_commit_callbacks, INSIDE)
    create_report(api_client, django_capture_on_commit_callbacks, FAR, category="voirie")
    with django_capture_on_commit_callbacks(execute=True):  # an agent's private report
        agent_client.post(
            reverse("signalement-list"),
            {
                "description": "Privé",
                "date": "2025-04-29T16:30:00+02:00",
                "category": "voirie",
                "latitude": "48.111500",
                "longitude": "-1.680000",
                "is_public": False,
            },
            format="json",
        )

    sent = [message.subject for message in mail.outbox if message.to == ["veille@example.org"]]
    assert sent == [f"[{wanted.reference}] Un nouveau signalement dans la zone de votre alerte"]


def test_an_unconfirmed_alert_sends_nothing_and_a_logged_in_accounts_own_is_confirmed_at_once(
    api_client, user_client, reporter, django_capture_on_commit_callbacks
):
    ask_alert(api_client, django_capture_on_commit_callbacks)
    answer = ask_alert(
        user_client, django_capture_on_commit_callbacks, email=reporter.email.upper()
    )
    assert answer.json() == {
        "detail": "L’adresse de votre compte reçoit cette alerte.",
        "confirmation_required": False,
    }
    mail.outbox.clear()

    create_report(api_client, django_capture_on_commit_callbacks, NEAR)

    assert [m.to for m in mail.outbox if m.to != ["auteur@example.org"]] == [[reporter.email]]


def test_the_same_alert_asked_twice_is_one_and_the_answers_are_the_same(
    api_client, django_capture_on_commit_callbacks
):
    CategoryFactory(code="voirie")
    CategoryFactory(code="eclairage")
    first = ask_alert(
        api_client, django_capture_on_commit_callbacks, categories=["voirie", "eclairage"]
    )
    api_client.post(confirm_path(mail.outbox[0]))
    again = ask_alert(
        api_client, django_capture_on_commit_callbacks, categories=["eclairage", "voirie"]
    )
    other = ask_alert(api_client, django_capture_on_commit_callbacks, radius_m=800)

    assert first.json() == again.json() == other.json() == ACCEPTED
    assert Subscription.objects.count() == 2
    assert len(mail.outbox) == 2  # the first one's link, the other one's


@pytest.mark.parametrize(
    "changes, attr, code",
    [
        ({"kind": "triangle"}, "kind", "invalid_choice"),
        ({"kind": None}, "kind", "null"),
        ({"email": "non"}, "email", "invalid"),
        ({"lat": 91}, "lat", "max_value"),
        ({"lat": 90.00000000000001}, "lat", "max_value"),
        ({"lng": "est"}, "lng", "invalid"),
        ({"radius_m": 50_001}, "radius_m", "max_value"),
        ({"radius_m": 0}, "radius_m", "min_value"),
        ({"lat": None}, "lat", "null"),
        ({"categories": ["inconnue"]}, "categories", "does_not_exist"),
        ({"categories": ["pas un code"]}, "categories.0", "invalid"),
        ({"frequency": "weekly"}, "frequency", "invalid_choice"),
        ({"kind": "bbox"}, "bbox", "required"),
        ({"kind": "bbox", "bbox": [-1.6, 48.1, -1.7, 48.2]}, "bbox", "order"),
        ({"kind": "bbox", "bbox": [-1.7, 91, -1.6, 92]}, "bbox", "range"),
        ({"kind": "bbox", "bbox": [-1.7, 48.1, -1.6]}, "bbox", "min_length"),
        ({"kind": "bbox", "bbox": [-181, 48.1, -1.6, 48.2]}, "bbox.0", "min_value"),
    ],
)
def test_an_alert_asked_wrongly_is_refused_naming_the_field(api_client, changes, attr, code):
    body = {"email": "veille@example.org", "kind": "circle", **RENNES, "radius_m": 500}
    body.update(changes)

    response = api_client.post(reverse("alert-list"), body, format="json")

    assert response.status_code == 400, response.content
    assert (attr, code) in [(e["attr"], e["code"]) for e in response.json()["errors"]]
    assert "veille@" not in response.content.decode()
    assert not Subscription.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(api_client):
    response = api_client.post(reverse("alert-list"), ["circle"], format="json")

    assert response.status_code == 400
    assert not Subscription.objects.exists()


# --- Daily digests ---------------------------------------------------------------------------------


def at(hour: int, day: int = 0) -> datetime:
    base = timezone.localtime().replace(hour=hour, minute=0, second=0, microsecond=0)
    return base + timedelta(days=day)


def test_a_daily_alert_gets_one_digest_a_day_from_its_hour(
    api_client, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_DIGEST_HOUR = 7
    alert = confirmed_alert(api_client, django_capture_on_commit_callbacks, frequency="daily")
    Subscription.objects.filter(pk=alert.pk).update(confirmed_at=at(0, day=-1))
    first = create_report(api_client, django_capture_on_commit_callbacks, NEAR)
    second = create_report(api_client, django_capture_on_commit_callbacks, INSIDE)
    create_report(api_client, django_capture_on_commit_callbacks, FAR)
    Signalement.objects.filter(pk__in=[first.pk, second.pk]).update(created_at=at(3))
    mail.outbox.clear()  # the reporters' receipts; no immediate alert for a daily one

    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.send_alert_digests(now=at(6)) == 0  # before its hour
        assert alerts.send_alert_digests(now=at(7)) == 1
        assert alerts.send_alert_digests(now=at(8)) == 0  # never two on one day
    [digest] = mail.outbox
    assert digest.to == ["veille@example.org"]
    assert digest.subject == "Votre alerte quotidienne\u00a0: 2 nouveaux signalements"
    assert first.reference in digest.body and second.reference in digest.body
    assert first.reference in html_of(digest)
    assert digest.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # The next day: what came since, nothing if nothing did.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.send_alert_digests(now=at(7, day=1)) == 1
    assert mail.outbox == []

    # Unsubscribed: no more.
    api_client.post(unsubscribe_path(digest))
    assert not Subscription.objects.exists()


def test_the_digest_command_is_idempotent(api_client, settings, django_capture_on_commit_callbacks):
    settings.ALERT_DIGEST_HOUR = 0
    alert = confirmed_alert(api_client, django_capture_on_commit_callbacks, frequency="daily")
    Subscription.objects.filter(pk=alert.pk).update(
        confirmed_at=timezone.now() - timedelta(hours=1)
    )
    create_report(api_client, django_capture_on_commit_callbacks, NEAR)
    mail.outbox.clear()

    first, second = StringIO(), StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("send_alert_digests", stdout=first)
        call_command("send_alert_digests", stdout=second)

    assert first.getvalue().strip() == "1 daily digest due today, enqueued."
    assert second.getvalue().strip() == "No daily digest due."
    assert [message.to for message in mail.outbox] == [["veille@example.org"]]


def test_the_worker_runs_the_digests():
    from signalements.tasks import PERIODIC

    assert "signalements.alerts.send_alert_digests" in [job.name for job in PERIODIC]


# --- Throttling ------------------------------------------------------------------------------------


def test_asking_is_limited_per_client_and_per_address(api_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "subscribe": "2/hour",
        },
    }
    report = SignalementFactory()
    url = follow_url(report)

    statuses = [
        api_client.post(url, {"email": f"{n}@example.org"}, format="json").status_code
        for n in range(3)
    ]
    assert statuses == [202, 202, 429]

    # One address from many clients.
    statuses = [
        api_client.post(
            url, {"email": "cible@example.org"}, format="json", REMOTE_ADDR=f"10.0.0.{n}"
        ).status_code
        for n in range(3)
    ]
    assert statuses == [202, 202, 429]
    response = api_client.post(
        reverse("alert-list"),
        {"email": "cible@example.org", "kind": "circle", **RENNES, "radius_m": 100},
        format="json",
        REMOTE_ADDR="10.0.1.1",
    )
    assert response.status_code == 429 and "Retry-After" in response
    assert "cible" not in response.content.decode()


# --- Retention and erasure --------------------------------------------------------------------------


def test_anonymized_reports_lose_their_follows_and_unconfirmed_ones_go_in_time(settings):
    settings.SUBSCRIPTION_CONFIRM_DAYS = 7
    old = SignalementFactory(status="resolved")
    Signalement.objects.filter(pk=old.pk).update(resolved_at=timezone.now() - timedelta(days=400))
    kept = SignalementFactory()
    now = timezone.now()
    Subscription.objects.create(
        kind="follow", signalement=old, email="a@example.org", confirmed_at=now
    )
    Subscription.objects.create(
        kind="follow", signalement=kept, email="b@example.org", confirmed_at=now
    )
    stale = Subscription.objects.create(kind="follow", signalement=kept, email="c@example.org")
    Subscription.objects.filter(pk=stale.pk).update(created_at=now - timedelta(days=8))
    Subscription.objects.create(kind="follow", signalement=kept, email="d@example.org")

    dry = StringIO()
    call_command("anonymize_reports", "--dry-run", stdout=dry)
    assert (
        "1 follow of these reports and 1 unconfirmed follow or alert would be deleted."
        in dry.getvalue()
    )
    assert Subscription.objects.count() == 4

    out = StringIO()
    call_command("anonymize_reports", stdout=out)

    assert "1 follow of these reports and 1 unconfirmed follow or alert deleted." in out.getvalue()
    assert sorted(Subscription.objects.values_list("email", flat=True)) == [
        "b@example.org",
        "d@example.org",
    ]


def test_erasing_ones_contact_data_deletes_ones_follows_and_alerts(
    user_client, reporter, django_capture_on_commit_callbacks
):
    own = SignalementFactory(reporter=reporter, contact_email="Perso@Example.org")
    other = SignalementFactory()
    now = timezone.now()
    Subscription.objects.create(
        kind="follow", signalement=other, email=reporter.email, user=reporter, confirmed_at=now
    )
    Subscription.objects.create(
        kind="follow", signalement=other, email="perso@example.org", confirmed_at=now
    )
    Subscription.objects.create(
        kind="alert",
        email=reporter.email.upper(),
        area="bbox",
        min_latitude=0,
        max_latitude=1,
        min_longitude=0,
        max_longitude=1,
        frequency="daily",
    )
    Subscription.objects.create(kind="follow", signalement=own, email="voisin@example.org")

    response = user_client.post(reverse("me-erase-contact-data"))

    assert response.status_code == 200
    assert response.json() == {"erased": 1, "subscriptions": 3}
    assert list(Subscription.objects.values_list("email", flat=True)) == ["voisin@example.org"]
    assert user_client.post(reverse("me-erase-contact-data")).json() == {
        "erased": 0,
        "subscriptions": 0,
    }


# --- The admin ----------------------------------------------------------------------------------------


def test_the_admin_lists_subscriptions_with_addresses_for_superusers_only(
    client, superuser, agent_user
):
    report = SignalementFactory()
    Subscription.objects.create(
        kind="follow", signalement=report, email="lea@example.org", confirmed_at=timezone.now()
    )
    Subscription.objects.create(
        kind="alert",
        email="veille@example.org",
        area="circle",
        latitude=Decimal("48.1"),
        longitude=Decimal("-1.6"),
        radius_m=500,
        min_latitude=Decimal("48"),
        max_latitude=Decimal("48.2"),
        min_longitude=Decimal("-1.7"),
        max_longitude=Decimal("-1.5"),
        frequency="daily",
    )
    url = reverse("admin:signalements_subscription_changelist")

    client.force_login(superuser)
    page = client.get(url).content.decode()
    assert "lea@example.org" in page and "veille@example.org" in page
    found = client.get(url, {"q": "lea@"}).content.decode()
    assert "lea@example.org" in found and "veille@example.org" not in found
    unconfirmed = client.get(url, {"confirmed": "no", "kind__exact": "alert"}).content.decode()
    assert "veille@example.org" in unconfirmed and "lea@example.org" not in unconfirmed

    client.force_login(agent_user)
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "l…@example.org" in page and "v…@example.org" in page
    assert "lea@example.org" not in page and "veille@example.org" not in page
    subscription = Subscription.objects.get(kind="follow")
    detail = client.get(reverse("admin:signalements_subscription_change", args=[subscription.pk]))
    assert detail.status_code == 200 and "lea@example.org" not in detail.content.decode()
    delete = reverse("admin:signalements_subscription_delete", args=[subscription.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Subscription.objects.filter(pk=subscription.pk).exists()
