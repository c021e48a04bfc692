"""Reporters' privacy: contact data and reporter identity shown only to the reporter and
agents; closed reports anonymized after the retention period (`anonymize_reports`); a
reporter's erasure of their contact data (`POST /api/me/erase-contact-data/`)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from signalements import retention, services
from signalements.api import serializers
from signalements.models import Comment, Signalement, Status

from .factories import CategoryFactory, SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db

History = Signalement.history.model
ERASE_URL = "/api/me/erase-contact-data/"
CONTACT = {
    "contact_name": "Camille Martin",
    "contact_email": "camille@example.org",
    "contact_phone": "06 12 34 56 78",
}
BLANK = dict.fromkeys(CONTACT, "")


def file_report(client, **fields) -> Signalement:
    """A report filed through the API (by the client's user, or anonymously)."""
    payload = {
        "description": "Le lampadaire est éteint depuis hier soir.",
        "date": (timezone.now() - timedelta(hours=2)).isoformat(),
        "category": CategoryFactory(code="eclairage-public").code,
        **CONTACT,
        **fields,
    }
    response = client.post(reverse("signalement-list"), payload, format="json")
    assert response.status_code == 201, response.json()
    return Signalement.objects.get(pk=response.json()["id"])


def close(report: Signalement, status: str, *, days_ago: int, by=None) -> Signalement:
    """Move a report to a closed status through the workflow, `days_ago` days ago."""
    steps = [Status.ACKNOWLEDGED, Status.RESOLVED] if status == Status.RESOLVED else [status]
    for step in steps:
        services.transition(signalement=report, to_status=step, by=by, notify=False)
    when = timezone.now() - timedelta(days=days_ago)
    Signalement.objects.filter(pk=report.pk).update(
        updated_at=when, resolved_at=when if status == Status.RESOLVED else None
    )
    report.refresh_from_db()
    return report


def run(*args) -> str:
    out = StringIO()
    call_command("anonymize_reports", *args, stdout=out)
    return out.getvalue()


def contact_of(report: Signalement) -> dict:
    report.refresh_from_db()
    return {name: getattr(report, name) for name in CONTACT}


def history_values(report: Signalement, *fields) -> list[tuple]:
    return list(History.objects.filter(id=report.pk).values_list(*fields))


@pytest.fixture
def other_reporter(db):
    return UserFactory(username="voisin")


@pytest.fixture
def other_client(other_reporter):
    client = APIClient()
    client.force_authenticate(other_reporter)
    return client


@pytest.fixture
def old_resolved(user_client, agent_user):
    """Filed by the reporter (who also commented), resolved 400 days ago."""
    report = file_report(user_client)
    user_client.post(
        reverse("signalement-comments", args=[report.pk]), {"body": "Merci !"}, format="json"
    )
    return close(report, Status.RESOLVED, days_ago=400, by=agent_user)


@pytest.fixture
def old_rejected(api_client, agent_user):
    """Filed anonymously with contact data, rejected 400 days ago."""
    return close(file_report(api_client), Status.REJECTED, days_ago=400, by=agent_user)


# --- The command --------------------------------------------------------------------


def test_a_dry_run_lists_the_reports_and_changes_nothing(old_resolved, old_rejected):
    history_before = History.objects.count()

    output = run("--older-than", "365", "--dry-run")

    lines = output.splitlines()
    assert lines[:2] == [
        f"would anonymize {old_resolved.reference} (resolved, closed "
        f"{timezone.localtime(old_resolved.resolved_at).date().isoformat()})",
        f"would anonymize {old_rejected.reference} (rejected, closed "
        f"{timezone.localtime(old_rejected.updated_at).date().isoformat()})",
    ]
    assert lines[2].startswith("Dry run: 2 reports would be anonymized among resolved, rejected")
    assert "nothing changed" in lines[2]
    assert contact_of(old_resolved) == CONTACT and contact_of(old_rejected) == CONTACT
    assert old_resolved.reporter is not None
    assert History.objects.count() == history_before


def test_old_closed_reports_lose_their_contact_data_and_reporter(
    old_resolved, old_rejected, reporter, agent_client
):
    assert History.objects.filter(id=old_resolved.pk, history_user=reporter).exists()
    assert Comment.objects.get(signalement=old_resolved).author == reporter

    output = run("--older-than", "365")

    assert output.splitlines() == [
        f"anonymized {old_resolved.reference} (resolved, closed "
        f"{timezone.localtime(old_resolved.resolved_at).date().isoformat()})",
        f"anonymized {old_rejected.reference} (rejected, closed "
        f"{timezone.localtime(old_rejected.updated_at).date().isoformat()})",
        output.splitlines()[2],
    ]
    assert output.splitlines()[2].startswith("2 reports anonymized among resolved, rejected")
    for report in (old_resolved, old_rejected):
        assert contact_of(report) == BLANK
        assert report.updated_at > timezone.now() - timedelta(minutes=1)
        assert report.reporter is None
        assert report.status in (Status.RESOLVED, Status.REJECTED)  # nothing else changed
        latest = report.history.order_by("-history_date", "-history_id").first()
        assert latest.history_change_reason == "Anonymisé après 365 jours (durée de conservation)"
        assert latest.history_user is None
        assert latest.history_type == "~"
        # Nothing personal left in the history either.
        assert set(history_values(report, *CONTACT)) == {("", "", "")}
        assert set(history_values(report, "reporter")) == {(None,)}
        text = agent_client.get(reverse("signalement-history", args=[report.pk])).content
        assert b"camille@example.org" not in text and b"citizen" not in text
    # The report was filed (history author) and commented by the reporter: not anymore.
    assert not History.objects.filter(history_user=reporter).exists()
    comment = Comment.objects.get(signalement=old_resolved)
    assert comment.author is None and comment.author_role == "reporter"
    assert comment.body == "Merci !"
    # The reporter's account stays; it is just no longer linked.
    assert not Signalement.objects.filter(reporter=reporter).exists()


def test_open_and_recent_reports_are_left_alone(user_client, agent_user, reporter):
    open_for_long = file_report(user_client)
    services.transition(signalement=open_for_long, to_status=Status.ACKNOWLEDGED, notify=False)
    Signalement.objects.filter(pk=open_for_long.pk).update(
        updated_at=timezone.now() - timedelta(days=800),
        created_at=timezone.now() - timedelta(days=800),
    )
    recently_resolved = close(file_report(user_client), Status.RESOLVED, days_ago=100)
    recently_rejected = close(file_report(user_client), Status.REJECTED, days_ago=364)
    history_before = History.objects.count()

    output = run("--older-than", "365")

    assert output.startswith("Nothing to anonymize among resolved, rejected reports closed")
    for report in (open_for_long, recently_resolved, recently_rejected):
        assert contact_of(report) == CONTACT
        assert report.reporter == reporter
    assert History.objects.count() == history_before


def test_a_resolved_report_counts_from_its_resolution_not_its_last_change(user_client):
    report = close(file_report(user_client), Status.RESOLVED, days_ago=400)
    Signalement.objects.filter(pk=report.pk).update(updated_at=timezone.now())  # edited today

    assert report.reference in run("--older-than", "365")


def test_a_reopened_report_is_not_closed_anymore(user_client, agent_user):
    report = close(file_report(user_client), Status.RESOLVED, days_ago=400)
    services.transition(signalement=report, to_status=Status.IN_PROGRESS, notify=False)

    assert run("--older-than", "365").startswith("Nothing to anonymize")
    assert contact_of(report) == CONTACT


def test_the_status_option_limits_the_statuses(old_resolved, old_rejected):
    output = run("--older-than", "365", "--status", "rejected")

    assert f"anonymized {old_rejected.reference}" in output
    assert old_resolved.reference not in output
    assert contact_of(old_rejected) == BLANK
    assert contact_of(old_resolved) == CONTACT


def test_a_second_run_finds_nothing_and_records_nothing(old_resolved, old_rejected):
    run("--older-than", "365")
    history_after_first_run = History.objects.count()

    output = run("--older-than", "365")

    assert output.startswith("Nothing to anonymize")
    assert History.objects.count() == history_after_first_run
    assert run("--older-than", "365", "--dry-run").startswith("Dry run: 0 reports")


def test_contact_data_left_in_the_history_only_is_anonymized_too(user_client, agent_client):
    report = file_report(user_client)
    # An agent blanks the contact fields and the link: the history still has them.
    agent_client.patch(reverse("signalement-detail", args=[report.pk]), BLANK, format="json")
    Signalement.objects.filter(pk=report.pk).update(reporter=None)
    report = close(report, Status.REJECTED, days_ago=400)
    assert ("camille@example.org",) in history_values(report, "contact_email")

    assert report.reference in run("--older-than", "365")

    assert set(history_values(report, "contact_email", "reporter")) == {("", None)}


def test_a_report_without_personal_data_is_not_anonymized(api_client):
    report = close(file_report(api_client, **BLANK), Status.RESOLVED, days_ago=400)

    assert report.reference not in run("--older-than", "365")
    assert report.history.filter(history_change_reason__startswith="Anonymisé").count() == 0


def test_the_defaults_come_from_the_settings(settings, old_resolved, old_rejected):
    settings.SIGNALEMENT_RETENTION_DAYS = 500
    assert run().startswith("Nothing to anonymize among resolved, rejected reports closed more")

    settings.SIGNALEMENT_RETENTION_DAYS = 300
    settings.SIGNALEMENT_RETENTION_STATUSES = ["resolved"]
    output = run()
    assert output.splitlines()[0].startswith(f"anonymized {old_resolved.reference}")
    assert "1 report anonymized among resolved reports closed more than 300 days ago" in output
    latest = old_resolved.history.order_by("-history_id").first()
    assert latest.history_change_reason == "Anonymisé après 300 jours (durée de conservation)"


def test_verbosity_zero_prints_the_summary_only(old_resolved):
    output = run("--older-than", "365", "-v", "0")

    assert output.splitlines() == [output.strip()]
    assert output.startswith("1 report anonymized")


@pytest.mark.parametrize("days", ["0", "-3", "abc", "1.5"])
def test_older_than_must_be_a_positive_number_of_days(days):
    with pytest.raises(CommandError, match="positive number of days"):
        run("--older-than", days)


@pytest.mark.parametrize(
    "statuses, bad",
    [("resolved,bogus", "'bogus'"), ("new", "'new'"), ("in_progress,rejected", "'in_progress'")],
)
def test_statuses_must_be_closed_statuses(statuses, bad, old_resolved):
    with pytest.raises(CommandError, match=bad):
        run("--older-than", "365", "--status", statuses)
    assert contact_of(old_resolved) == CONTACT


def test_a_bad_status_in_the_settings_is_refused(settings):
    settings.SIGNALEMENT_RETENTION_STATUSES = ["resolved", "archived"]

    with pytest.raises(CommandError, match="'archived'"):
        run()


def test_reports_are_anonymized_in_batches(user_client):
    reports = [close(file_report(user_client), Status.REJECTED, days_ago=400) for _ in range(5)]

    result = retention.anonymize(older_than=timedelta(days=365), batch_size=2)

    assert [anonymized.pk for anonymized in result.reports] == [r.pk for r in reports]
    assert not Signalement.objects.filter(reporter__isnull=False).exists()


def test_a_report_reopened_during_the_run_is_left_alone(user_client, monkeypatch):
    first, second = (close(file_report(user_client), Status.RESOLVED, days_ago=400) for _ in "ab")
    anonymize_batch = retention._anonymize_batch
    calls = []

    def reopen_the_second_one_meanwhile(reports, **kwargs):
        calls.append([report.pk for report in reports])
        anonymize_batch(reports, **kwargs)
        if reports[0].pk == first.pk:
            services.transition(signalement=second, to_status=Status.IN_PROGRESS, notify=False)

    monkeypatch.setattr(retention, "_anonymize_batch", reopen_the_second_one_meanwhile)
    result = retention.anonymize(older_than=timedelta(days=365), batch_size=1)

    assert [anonymized.pk for anonymized in result.reports] == [first.pk]
    assert calls == [[first.pk]]  # the second one, no longer due, is skipped
    assert contact_of(first) == BLANK
    assert contact_of(second) == CONTACT


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason=f"row locking (SELECT ... FOR UPDATE) needs PostgreSQL, not {connection.vendor}",
)
@pytest.mark.django_db(transaction=True)
def test_a_run_waits_for_a_concurrent_reopening_then_leaves_the_report_alone():
    """The run selects the report, then finds its row locked by an agent reopening it:
    it waits, and judges the report on the committed result (open: not anonymized)."""
    timeout = 30
    report = SignalementFactory(reporter=UserFactory(), status=Status.RESOLVED)
    long_ago = timezone.now() - timedelta(days=400)
    Signalement.objects.filter(pk=report.pk).update(resolved_at=long_ago, updated_at=long_ago)
    reopening_holds_the_lock = threading.Event()
    run_pid = []

    def reopen():
        try:
            with transaction.atomic():
                services.transition(signalement=report, to_status=Status.IN_PROGRESS, notify=False)
                reopening_holds_the_lock.set()
                deadline = time.monotonic() + timeout
                blocked = False
                with connection.cursor() as cursor:
                    while not blocked and time.monotonic() < deadline:
                        cursor.execute(
                            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                            [run_pid[0]],
                        )
                        blocked = cursor.fetchone()[0] == "Lock"
                        time.sleep(0.01)
            return blocked
        finally:
            connection.close()

    def anonymize():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                run_pid.append(cursor.fetchone()[0])
            due = retention.due_for_anonymization(
                cutoff=timezone.now() - timedelta(days=365), statuses=["resolved"]
            )
            assert reopening_holds_the_lock.wait(timeout)
            assert list(due.values_list("pk", flat=True)) == [report.pk]  # still resolved
            return retention.anonymize(older_than=timedelta(days=365))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        run = pool.submit(anonymize)
        deadline = time.monotonic() + timeout
        while not run_pid and time.monotonic() < deadline and not run.done():
            time.sleep(0.005)
        reopening = pool.submit(reopen)
        assert reopening.result(timeout=timeout), "the run never waited for the row lock"
        result = run.result(timeout=timeout)

    assert result.count == 0
    report.refresh_from_db()
    assert report.status == Status.IN_PROGRESS
    assert report.reporter is not None and report.contact_email == "camille@example.org"


def test_the_contact_fields_are_the_private_fields_of_the_api():
    assert retention.CONTACT_FIELDS == serializers.PRIVATE_FIELDS


# --- A reporter's erasure of their contact data ---------------------------------------


def test_erasing_contact_data_needs_credentials(api_client):
    response = api_client.post(ERASE_URL)

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_authenticated"


def test_a_reporter_erases_the_contact_data_of_their_own_reports_only(
    user_client, other_client, reporter
):
    own_open = file_report(user_client)
    own_closed = close(file_report(user_client), Status.REJECTED, days_ago=3)
    own_without_contact = file_report(user_client, **BLANK)
    someone_elses = file_report(other_client)
    before = timezone.now()

    response = user_client.post(ERASE_URL)

    assert response.status_code == 200
    assert response.json() == {"erased": 2, "subscriptions": 0}
    for report in (own_open, own_closed):
        assert contact_of(report) == BLANK
        assert report.reporter == reporter  # still theirs: they still follow it
        assert report.updated_at >= before
        latest = report.history.order_by("-history_date", "-history_id").first()
        assert latest.history_change_reason == "Coordonnées effacées à la demande du déclarant"
        assert latest.history_user == reporter
        assert set(history_values(report, *CONTACT)) == {("", "", "")}
        assert user_client.get(reverse("signalement-detail", args=[report.pk])).status_code == 200
    assert own_without_contact.history.count() == 1  # nothing to erase, nothing recorded
    assert contact_of(someone_elses) == CONTACT
    assert ("camille@example.org",) in history_values(someone_elses, "contact_email")


@pytest.mark.parametrize(
    "site_language, request_language, expected",
    [
        ("fr", "en", "Coordonnées effacées à la demande du déclarant"),
        ("en", "fr", "Contact data erased at the reporter's request"),
    ],
)
def test_the_history_note_is_in_the_sites_language(
    user_client, settings, site_language, request_language, expected
):
    """The note is for the agents who read the history: in the site's language
    (LANGUAGE_CODE), whatever the language of the reporter's request."""
    settings.LANGUAGE_CODE = site_language
    report = file_report(user_client)

    user_client.post(ERASE_URL, HTTP_ACCEPT_LANGUAGE=request_language)

    latest = report.history.order_by("-history_date", "-history_id").first()
    assert latest.history_change_reason == expected


def test_erasing_twice_erases_nothing_more(user_client):
    report = file_report(user_client)
    assert user_client.post(ERASE_URL).json() == {"erased": 1, "subscriptions": 0}
    history_count = report.history.count()

    response = user_client.post(ERASE_URL)

    assert response.status_code == 200
    assert response.json() == {"erased": 0, "subscriptions": 0}
    assert report.history.count() == history_count


def test_contact_data_left_in_the_history_only_is_erased_too(user_client):
    report = file_report(user_client)
    user_client.patch(reverse("signalement-detail", args=[report.pk]), BLANK, format="json")
    assert ("camille@example.org",) in history_values(report, "contact_email")

    assert user_client.post(ERASE_URL).json() == {"erased": 1, "subscriptions": 0}

    assert set(history_values(report, *CONTACT)) == {("", "", "")}


def test_the_erasure_is_recorded_as_made_by_the_reporter_outside_requests_too(
    user_client, reporter
):
    report = file_report(user_client)

    assert retention.erase_contact_data(user=reporter) == 1

    assert report.history.order_by("-history_id").first().history_user == reporter


def test_a_user_without_reports_erases_nothing(user_client):
    assert user_client.post(ERASE_URL).json() == {"erased": 0, "subscriptions": 0}


def test_the_erase_url_takes_post_only(user_client):
    response = user_client.get(ERASE_URL)

    assert response.status_code == 405
    assert "POST" in response["Allow"]


# --- Who sees contact data and the reporter -------------------------------------------


@pytest.fixture
def changed_report(user_client, agent_client):
    """A reporter's public report whose contact data an agent corrected: the history
    holds the old and the new values."""
    report = file_report(user_client)
    agent_client.patch(
        reverse("signalement-detail", args=[report.pk]),
        {"contact_email": "camille.martin@example.org"},
        format="json",
    )
    agent_client.post(
        reverse("signalement-transition", args=[report.pk]),
        {"status": "acknowledged", "note": "Une équipe passe demain."},
        format="json",
    )
    return report


PRIVATE_TEXTS = [
    "camille@example.org",
    "camille.martin@example.org",
    "Camille Martin",
    "06 12 34 56 78",
    "contact_",
    "citizen",  # the reporter's username
]


def responses_about(client, report) -> dict[str, str]:
    return {
        "list": client.get(reverse("signalement-list")).content.decode(),
        "geojson": client.get(reverse("signalement-list"), {"format": "geojson"}).content.decode(),
        "detail": client.get(reverse("signalement-detail", args=[report.pk])).content.decode(),
        "history": client.get(reverse("signalement-history", args=[report.pk])).content.decode(),
        "comments": client.get(reverse("signalement-comments", args=[report.pk])).content.decode(),
        "similar": client.get(reverse("signalement-similar", args=[report.pk])).content.decode(),
    }


@pytest.mark.parametrize("caller", ["anonymous", "other reporter"])
def test_others_never_see_contact_data_or_the_reporter(
    caller, changed_report, api_client, other_client
):
    client = api_client if caller == "anonymous" else other_client

    for name, text in responses_about(client, changed_report).items():
        assert changed_report.reference in text or name in ("history", "comments", "similar")
        for private in PRIVATE_TEXTS:
            assert private not in text, (name, private)


def test_the_reporter_and_agents_see_the_contact_data(changed_report, user_client, agent_client):
    detail = reverse("signalement-detail", args=[changed_report.pk])
    assert user_client.get(detail).json()["contact_email"] == "camille.martin@example.org"
    assert agent_client.get(detail).json()["contact_email"] == "camille.martin@example.org"
    history = agent_client.get(reverse("signalement-history", args=[changed_report.pk]))
    assert "camille@example.org" in history.content.decode()
    assert "citizen" in history.content.decode()  # who filed it, for agents
