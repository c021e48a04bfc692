"""Service levels: when a report is due (`signalements/service_levels.py`). Working days
leave out weekends and French public holidays (Christmas, Easter Monday…); calendar
hours are elapsed time; a priority's own level wins over the category's level for any
priority; without a level, OVERDUE_DAYS calendar days. Then, end to end through the
REST API: the due date set on create, recomputed when an agent changes the category or
the priority, and recorded in the report's history. Last, the agents' daily digest of
overdue reports (`signalements/overdue.py`): who gets what, in which language, once a
day (with either task backend)."""

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import reverse
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from signalements import overdue, service_levels
from signalements.models import AGENTS_GROUP, Department, ServiceLevel, Signalement, Subscription

from .factories import CategoryFactory, SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _french_calendar(settings):
    settings.TIME_ZONE = "Europe/Paris"
    settings.SIGNALEMENT_SLA_HOLIDAYS_COUNTRY = "FR"
    settings.SIGNALEMENT_SLA_HOLIDAYS_SUBDIVISION = ""
    settings.SIGNALEMENT_OVERDUE_DAYS = 7


def category_with(amount: int, unit: str = "working_days", priority: str = "", **kwargs):
    category = CategoryFactory(**kwargs)
    ServiceLevel.objects.create(category=category, priority=priority, amount=amount, unit=unit)
    return category


# --- Working days ----------------------------------------------------------------------


def test_christmas_and_the_weekend_are_skipped():
    """Filed on Thursday 24 December 2026 at 14:00 with 2 working days: Friday is
    Christmas, then the weekend: Monday is the first working day, Tuesday the second."""
    category = category_with(2)

    due = service_levels.due_at(category.pk, "normal", paris(2026, 12, 24, 14))

    assert due == paris(2026, 12, 29, 14)


def test_easter_monday_is_skipped():
    """Thursday 2 April 2026 + 2 working days: Friday 3 (a working day in most of
    France), Monday 6 is Easter Monday, so Tuesday 7."""
    category = category_with(2)

    assert service_levels.due_at(category.pk, "normal", paris(2026, 4, 2, 10)) == paris(
        2026, 4, 7, 10
    )


def test_a_subdivision_adds_its_own_holidays(settings):
    """In Moselle (57), Good Friday is a holiday too: Tuesday 7, then Wednesday 8."""
    settings.SIGNALEMENT_SLA_HOLIDAYS_SUBDIVISION = "57"
    category = category_with(2)

    assert service_levels.due_at(category.pk, "normal", paris(2026, 4, 2, 10)) == paris(
        2026, 4, 8, 10
    )


def test_without_a_country_only_weekends_are_left_out(settings):
    settings.SIGNALEMENT_SLA_HOLIDAYS_COUNTRY = ""
    category = category_with(2)

    # Christmas counts: Friday 25, then Monday 28.
    assert service_levels.due_at(category.pk, "normal", paris(2026, 12, 24, 14)) == paris(
        2026, 12, 28, 14
    )


def test_working_days_keep_the_local_time_across_a_change_of_clock():
    """Summer time starts on Sunday 29 March 2026: due at 14:00 Paris time all the same
    (95 hours later, not 96)."""
    start = paris(2026, 3, 26, 14)

    due = service_levels.add_working_days(start, 2)

    assert due == paris(2026, 3, 30, 14)
    assert due.astimezone(dt.UTC) - start.astimezone(dt.UTC) == dt.timedelta(hours=95)


def test_a_report_filed_on_a_day_off_starts_counting_on_the_next_working_day():
    """Filed on Saturday 26 December 2026: the clock starts on Monday 28 at midnight;
    1 working day is the end of that Monday."""
    assert service_levels.add_working_days(paris(2026, 12, 26, 10), 1) == paris(2026, 12, 29)
    assert service_levels.add_working_days(paris(2026, 12, 25, 10), 0) == paris(2026, 12, 28)


def test_due_dates_are_in_the_servers_time_zone_whatever_the_requests():
    category = category_with(2)
    start = paris(2026, 12, 24, 14)

    with timezone.override(ZoneInfo("America/New_York")):
        due = service_levels.due_at(category.pk, "normal", start)

    assert due == paris(2026, 12, 29, 14)


# --- Hours, priorities, defaults --------------------------------------------------------


def test_hours_are_elapsed_time_weekends_and_nights_included():
    category = category_with(48, unit="hours")

    # Saturday 12:00 + 48 h: Monday 12:00.
    assert service_levels.due_at(category.pk, "normal", paris(2026, 12, 26, 12)) == paris(
        2026, 12, 28, 12
    )
    # Across the change to summer time (Sunday 29 March): 48 hours later is 13:00 by
    # the clock.
    assert service_levels.due_at(category.pk, "normal", paris(2026, 3, 28, 12)) == paris(
        2026, 3, 30, 13
    )


def test_a_prioritys_own_level_wins_over_the_level_for_any_priority():
    category = category_with(5)
    ServiceLevel.objects.create(category=category, priority="urgent", amount=4, unit="hours")
    start = paris(2026, 6, 1, 9)  # a Monday

    assert service_levels.due_at(category.pk, "urgent", start) == paris(2026, 6, 1, 13)
    assert service_levels.due_at(category.pk, "normal", start) == paris(2026, 6, 8, 9)


def test_a_level_for_one_priority_only_leaves_the_others_to_the_default(settings):
    category = category_with(4, unit="hours", priority="urgent")
    start = paris(2026, 6, 1, 9)

    assert service_levels.due_at(category.pk, "high", start) == start + dt.timedelta(days=7)


def test_without_a_level_a_report_is_due_overdue_days_later(settings):
    start = paris(2026, 12, 24, 14)
    category = CategoryFactory()

    assert service_levels.due_at(category.pk, "normal", start) == paris(2026, 12, 31, 14)
    assert service_levels.due_at(None, "normal", start) == paris(2026, 12, 31, 14)
    # Calendar days: the same time of day, across a change of clock too.
    assert service_levels.due_at(None, "normal", paris(2026, 3, 26, 9)) == paris(2026, 4, 2, 9)
    settings.SIGNALEMENT_OVERDUE_DAYS = 0
    assert service_levels.due_at(category.pk, "normal", start) is None


def test_an_unknown_holidays_country_is_refused_at_start_up(settings):
    settings.SIGNALEMENT_SLA_HOLIDAYS_COUNTRY = "XX"
    with pytest.raises(SystemCheckError, match="signalements.E100"):
        call_command("check")
    settings.SIGNALEMENT_SLA_HOLIDAYS_COUNTRY = "FR"
    settings.SIGNALEMENT_SLA_HOLIDAYS_SUBDIVISION = "nowhere"
    with pytest.raises(SystemCheckError, match="signalements.E100"):
        call_command("check")


# --- Through the REST API --------------------------------------------------------------


def detail_url(report_id: int) -> str:
    return reverse("signalement-detail", args=[report_id])


def test_the_due_date_is_set_on_create(api_client):
    category_with(4, unit="hours", code="eclairage", name="Éclairage")

    response = api_client.post(
        reverse("signalement-list"),
        {"description": "Panne électrique", "date": "2025-04-29T16:30:00", "category": "eclairage"},
        format="json",
    )

    assert response.status_code == 201, response.content
    report = Signalement.objects.get(pk=response.json()["id"])
    assert report.due_at == report.created_at + dt.timedelta(hours=4)
    assert dt.datetime.fromisoformat(response.json()["due_at"]) == report.due_at


@pytest.fixture
def christmas_report():
    """A report filed on 24 December 2026 at 14:00, of a category without a level (due
    7 calendar days later, by OVERDUE_DAYS)."""
    report = SignalementFactory(category=CategoryFactory(code="divers", name="Divers"))
    Signalement.objects.filter(pk=report.pk).update(
        created_at=paris(2026, 12, 24, 14), due_at=paris(2026, 12, 31, 14)
    )
    return report


def test_an_agent_changing_the_category_recomputes_the_due_date(agent_client, christmas_report):
    category_with(2, code="voirie", name="Voirie")

    response = agent_client.patch(
        detail_url(christmas_report.pk), {"category": "voirie"}, format="json"
    )

    assert response.status_code == 200, response.content
    christmas_report.refresh_from_db()
    # From the creation, not from the change: Christmas and the weekend skipped.
    assert christmas_report.due_at == paris(2026, 12, 29, 14)
    assert dt.datetime.fromisoformat(response.json()["due_at"]) == paris(2026, 12, 29, 14)
    history = agent_client.get(reverse("signalement-history", args=[christmas_report.pk]))
    assert history.status_code == 200
    latest = history.json()[-1]
    assert (latest["kind"], latest["by"]) == ("changed", "agent")
    due_changes = [change for change in latest["changes"] if change["field"] == "due_at"]
    assert len(due_changes) == 1
    assert dt.datetime.fromisoformat(due_changes[0]["new"]) == paris(2026, 12, 29, 14)
    assert {change["field"] for change in latest["changes"]} == {"category", "due_at"}


def test_an_agent_changing_the_priority_recomputes_the_due_date(agent_client, christmas_report):
    category = Signalement.objects.get(pk=christmas_report.pk).category
    ServiceLevel.objects.create(category=category, priority="urgent", amount=4, unit="hours")

    response = agent_client.patch(
        detail_url(christmas_report.pk), {"priority": "urgent"}, format="json"
    )

    assert response.status_code == 200, response.content
    christmas_report.refresh_from_db()
    assert christmas_report.due_at == paris(2026, 12, 24, 18)

    # Back to normal: the category has no level for it: OVERDUE_DAYS again.
    agent_client.patch(detail_url(christmas_report.pk), {"priority": "normal"}, format="json")
    christmas_report.refresh_from_db()
    assert christmas_report.due_at == paris(2026, 12, 31, 14)


def test_other_changes_leave_the_due_date_alone(agent_client, christmas_report):
    """A service level added later applies to reports filed from then on, or when their
    category or priority changes: not on any other write."""
    category_with_level = Signalement.objects.get(pk=christmas_report.pk).category
    ServiceLevel.objects.create(category=category_with_level, amount=1, unit="hours")

    response = agent_client.patch(
        detail_url(christmas_report.pk), {"title": "Lampadaire tombé"}, format="json"
    )

    assert response.status_code == 200, response.content
    christmas_report.refresh_from_db()
    assert christmas_report.due_at == paris(2026, 12, 31, 14)


def test_the_due_date_is_read_only(agent_client, christmas_report):
    response = agent_client.patch(
        detail_url(christmas_report.pk), {"due_at": "2030-01-01T00:00:00+01:00"}, format="json"
    )

    assert response.status_code == 200, response.content
    christmas_report.refresh_from_db()
    assert christmas_report.due_at == paris(2026, 12, 31, 14)


# --- The agents' daily digest of overdue reports ---------------------------------------


@pytest.fixture
def digest_setting(settings):
    """Digests due from midnight: whatever the time the tests run, they are due."""
    settings.OVERDUE_DIGEST_HOUR = 0
    settings.PUBLIC_BASE_URL = "https://signalements.example.org"


def make_agent(username, *, email=None, departments=()):
    agent = UserFactory(username=username, is_staff=True)
    if email is not None:
        agent.email = email
        agent.save(update_fields=["email"])
    agent.groups.add(Group.objects.get(name=AGENTS_GROUP))
    for department in departments:
        department.members.add(agent)
    return agent


def report_due(title, *, due, status="new", department=None, assigned_to=None):
    report = SignalementFactory(title=title, status=status)
    Signalement.objects.filter(pk=report.pk).update(
        due_at=due, department=department, assigned_to=assigned_to
    )
    return Signalement.objects.get(pk=report.pk)


@pytest.fixture
def overdue_world(db, digest_setting):
    """Lighting: one report overdue by two days, one due tomorrow, one overdue but
    resolved. Roads: one overdue, assigned to Dominique (of no department). One overdue
    and unrouted. Agents: Alice (lighting, writes in English), Bob (roads: its only
    overdue report is Dominique's, and Bob gets it too), Carole (lighting, no address),
    Dominique (no department)."""
    lighting = Department.objects.create(code="eclairage", name="Éclairage")
    roads = Department.objects.create(code="voirie", name="Voirie")
    alice = make_agent("alice", email="alice@example.org", departments=[lighting])
    make_agent("bob", email="bob@example.org", departments=[roads])
    make_agent("carole", email="", departments=[lighting])
    dominique = make_agent("dominique", email="dominique@example.org")
    now = timezone.now()
    reports = {
        "late": report_due(
            "Lampadaire éteint", due=now - dt.timedelta(days=2), department=lighting
        ),
        "soon": report_due(
            "Lampe clignotante", due=now + dt.timedelta(days=1), department=lighting
        ),
        "done": report_due(
            "Lampe réparée", due=now - dt.timedelta(days=3), department=lighting, status="resolved"
        ),
        "hole": report_due(
            "Nid-de-poule",
            due=now - dt.timedelta(hours=5),
            department=roads,
            assigned_to=dominique,
            status="in_progress",
        ),
        "nobody": report_due("Tag", due=now - dt.timedelta(days=1)),
    }
    Subscription.objects.create(
        kind="follow",
        email=alice.email,
        user=alice,
        language="en",
        signalement=reports["soon"],
        confirmed_at=now,
    )
    return reports


def digests_by_address(outbox) -> dict:
    return {message.to[0]: message for message in outbox}


def test_each_agent_gets_the_overdue_reports_of_their_departments_and_their_own(
    overdue_world, mailoutbox
):
    assert overdue.send_overdue_digests() == 3

    sent = digests_by_address(mailoutbox)
    assert set(sent) == {"alice@example.org", "bob@example.org", "dominique@example.org"}
    alice = sent["alice@example.org"]
    assert overdue_world["late"].reference in alice.body
    for other in ("soon", "done", "hole", "nobody"):
        assert overdue_world[other].reference not in alice.body, other
    assert "2 days late" in alice.body  # Alice reads English (her follow's language)
    assert alice.subject == "1 overdue report"
    admin_link = reverse("admin:signalements_signalement_change", args=[overdue_world["late"].pk])
    assert f"https://signalements.example.org{admin_link}" in alice.body
    html = alice.alternatives[0][0]
    assert '<html lang="en">' in html and overdue_world["late"].reference in html
    # Dominique's assigned report, for Dominique and for Bob's department.
    for address in ("bob@example.org", "dominique@example.org"):
        assert overdue_world["hole"].reference in sent[address].body
        assert overdue_world["late"].reference not in sent[address].body
    # Without a known language: LANGUAGE_CODE (French).
    assert '<html lang="fr">' in sent["dominique@example.org"].alternatives[0][0]


def test_an_agent_gets_one_digest_a_day(overdue_world, mailoutbox):
    overdue.send_overdue_digests()
    assert overdue.send_overdue_digests() == 0
    out = io.StringIO()
    call_command("send_overdue_digests", stdout=out)
    assert out.getvalue().strip() == "No overdue digest due."

    assert len(mailoutbox) == 3


def test_no_digest_before_the_hour_nor_when_switched_off(overdue_world, mailoutbox, settings):
    settings.OVERDUE_DIGEST_HOUR = 8
    today = timezone.localdate()
    early = dt.datetime.combine(today, dt.time(7, 59), tzinfo=PARIS)
    assert overdue.send_overdue_digests(now=early) == 0
    settings.OVERDUE_DIGEST_HOUR = -1
    assert overdue.send_overdue_digests() == 0
    assert mailoutbox == []


def test_a_digest_run_late_for_a_past_day_is_not_sent(overdue_world, mailoutbox):
    alice = Signalement.objects.get(pk=overdue_world["late"].pk).department.members.get(
        username="alice"
    )
    yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()

    overdue.send_overdue_digest.enqueue(alice.pk, yesterday)

    assert mailoutbox == []


def test_with_the_database_queue_the_days_digest_is_claimed_by_its_task(
    overdue_world, mailoutbox, settings
):
    """The claim outlives the process: a restarted worker (its cache gone) or cron
    finds the day's task in the queue and claims nothing more. The worker then sends
    the emails."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

    assert overdue.send_overdue_digests() == 3
    cache.clear()
    assert overdue.send_overdue_digests() == 0
    assert (
        DBTaskResult.objects.filter(task_path=overdue.send_overdue_digest.module_path).count() == 3
    )
    assert mailoutbox == []  # not before the worker runs them

    # The worker runs them (here, their arguments run inline: `db_worker` in the test's
    # own connection would close it).
    queued = [row.args_kwargs["args"] for row in DBTaskResult.objects.order_by("enqueued_at")]
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    for args in queued:
        overdue.send_overdue_digest.enqueue(*args)
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

    assert len(mailoutbox) == 3
    cache.clear()
    DBTaskResult.objects.update(status=TaskResultStatus.SUCCESSFUL)
    assert overdue.send_overdue_digests() == 0  # finished tasks still count
