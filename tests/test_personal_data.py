"""A person's access request (`manage.py export_personal_data --email X`,
`signalements/personal_data.py`), and the erasure path that must cover everything the
export finds: the reporter's `POST /api/me/erase-contact-data/`, then the retention's
anonymization (`anonymize_reports`), then the account's deletion; the reporter's words in
their verdicts included (they were left behind before)."""

import io
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from signalements import feedback, retention, services, subscriptions
from signalements.models import Feedback, Signalement

from .factories import SignalementFactory

pytestmark = pytest.mark.django_db

NEW_REPORT = {"description": "Lampadaire éteint rue de Brest", "date": "2025-04-29T16:30:00+02:00"}
VERDICT = "Réparé, merci. Rappelez-moi au 06 11 22 33 44 si besoin."
HistoricalFeedback = Feedback.history.model


def export(email: str, *options: str) -> dict:
    out, err = io.StringIO(), io.StringIO()
    call_command("export_personal_data", "--email", email, *options, stdout=out, stderr=err)
    return json.loads(out.getvalue())


@pytest.fixture
def person(user_client, reporter, agent_user, django_capture_on_commit_callbacks):
    """The citizen (account citizen@example.org): a report filed while logged in, then
    resolved by an agent and answered with a verdict; a comment of theirs and an internal
    note of the agent's on it; a second report filed anonymously with their address
    written in capitals; a follow of someone else's report. Their reports by id."""
    response = user_client.post(
        reverse("signalement-list"),
        {**NEW_REPORT, "contact_phone": "06 11 22 33 44"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    filed = Signalement.objects.get(pk=response.json()["id"])
    services.add_comment(
        signalement=filed,
        author=reporter,
        body="Il y a aussi un câble qui pend.",
        is_internal=False,
        as_agent=False,
    )
    services.add_comment(
        signalement=filed,
        author=agent_user,
        body="Le déclarant a appelé trois fois.",
        is_internal=True,
        as_agent=True,
    )
    for status in ("acknowledged", "resolved"):
        filed = services.transition(signalement=filed, to_status=status, by=agent_user)
    feedback.record(filed, True, VERDICT, author=reporter)
    anonymous = SignalementFactory(
        contact_name="Camille", contact_email="CITIZEN@EXAMPLE.ORG", contact_phone=""
    )
    with django_capture_on_commit_callbacks(execute=True):
        subscriptions.follow(
            signalement=SignalementFactory(contact_email="voisin@example.org"),
            email="citizen@example.org",
            language="fr",
        )
    return {"filed": filed, "anonymous": anonymous}


@pytest.fixture
def someone_else(agent_user):
    """Another person: a report, a comment, a follow and an alert of their own."""
    report = SignalementFactory(contact_name="Dominique", contact_email="dominique@example.org")
    services.add_comment(
        signalement=report, author=agent_user, body="Vu.", is_internal=False, as_agent=True
    )
    subscriptions.follow(signalement=report, email="dominique@example.org", language="fr")
    return report


def test_an_access_request_gets_the_persons_reports_comments_follows_and_history(
    person, someone_else, reporter
):
    data = export("Citizen@example.org")

    assert [account["username"] for account in data["accounts"]] == ["citizen"]
    assert "password" not in json.dumps(data["accounts"])
    by_id = {report["id"]: report for report in data["reports"]}
    assert set(by_id) == {person["filed"].pk, person["anonymous"].pk}

    filed = by_id[person["filed"].pk]
    assert filed["linked_by"] == ["reporter_account"]
    assert filed["contact_phone"] == "06 11 22 33 44"
    assert filed["status"] == "resolved"
    assert [comment["body"] for comment in filed["comments"]] == ["Il y a aussi un câble qui pend."]
    assert filed["comments"][0]["written_by_you"] is True
    assert filed["internal_notes_withheld"] == 1
    assert [verdict["comment"] for verdict in filed["verdicts"]] == [VERDICT]
    kinds = [(entry["kind"], entry["by"]) for entry in filed["history"]]
    assert kinds[0] == ("created", "you")
    assert ("changed", "staff") in kinds
    statuses = [
        change["new"]
        for entry in filed["history"]
        for change in entry["changes"]
        if change["field"] == "status"
    ]
    assert statuses == ["new", "acknowledged", "resolved"]
    # No staff member is named, in the history or anywhere.
    assert "agent" not in {entry["by"] for entry in filed["history"]}

    anonymous = by_id[person["anonymous"].pk]
    assert anonymous["linked_by"] == ["contact_email"]
    assert anonymous["contact_email"] == "CITIZEN@EXAMPLE.ORG"
    assert anonymous["filed_by_your_account"] is False

    assert [(s["kind"], s["email"]) for s in data["subscriptions"]] == [
        ("follow", "citizen@example.org")
    ]

    # The other person's data is absent.
    text = json.dumps(data, ensure_ascii=False)
    for trace in ("dominique@example.org", "Dominique", "Vu.", someone_else.reference):
        assert trace not in text


def test_internal_notes_are_included_only_when_asked(person):
    data = export("citizen@example.org", "--include-internal-notes")

    filed = next(r for r in data["reports"] if r["id"] == person["filed"].pk)
    assert filed["internal_notes_withheld"] == 0
    notes = [comment["body"] for comment in filed["comments"] if comment["internal"]]
    assert notes == ["Le déclarant a appelé trois fois."]
    assert data["internal_notes_included"] is True


def test_the_export_goes_to_a_file_when_asked(person, tmp_path):
    target = tmp_path / "export.json"
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "export_personal_data",
        "--email",
        "citizen@example.org",
        "--output",
        str(target),
        stdout=out,
        stderr=err,
    )

    assert out.getvalue() == ""
    data = json.loads(target.read_text(encoding="utf-8"))
    assert len(data["reports"]) == 2
    # The summary: 2 reports, 1 follow, 1 account; 1 internal note withheld.
    assert re.findall(r"\b\d+\b", err.getvalue()) == ["2", "1", "1", "1"]


def test_an_unknown_address_gets_an_empty_export(person):
    data = export("personne@example.org")

    assert (data["accounts"], data["reports"], data["subscriptions"]) == ([], [], [])


def test_a_value_that_is_not_an_address_is_refused():
    with pytest.raises(CommandError, match="--email"):
        call_command("export_personal_data", "--email", "pas une adresse")


# --- The erasure path covers what the export finds ---------------------------------------


def test_erasing_contact_data_blanks_the_reporters_words_in_their_verdicts(
    person, user_client, reporter
):
    verdict = Feedback.objects.get(signalement=person["filed"])
    assert HistoricalFeedback.objects.filter(id=verdict.pk, comment=VERDICT).exists()

    response = user_client.post(reverse("me-erase-contact-data"))

    assert response.status_code == 200
    verdict.refresh_from_db()
    assert verdict.comment == ""
    assert verdict.author == reporter  # still theirs, as the report is
    assert set(
        HistoricalFeedback.objects.filter(id=verdict.pk).values_list("comment", flat=True)
    ) == {""}
    data = export("citizen@example.org")
    filed = next(r for r in data["reports"] if r["id"] == person["filed"].pk)
    assert [v["comment"] for v in filed["verdicts"]] == [""]
    assert (filed["contact_phone"], data["subscriptions"]) == ("", [])


def test_anonymization_blanks_the_verdicts_and_detaches_their_author(person, reporter):
    report = person["filed"]
    verdict = Feedback.objects.get(signalement=report)

    result = retention.anonymize(
        older_than=timedelta(days=1), now=timezone.now() + timedelta(days=2)
    )

    assert report.pk in {anonymized.pk for anonymized in result.reports}
    verdict.refresh_from_db()
    assert (verdict.comment, verdict.author) == ("", None)
    history = HistoricalFeedback.objects.filter(id=verdict.pk)
    assert set(history.values_list("comment", "author_id", "history_user_id")) == {("", None, None)}
    # A second run finds nothing left.
    again = retention.anonymize(
        older_than=timedelta(days=1), now=timezone.now() + timedelta(days=2)
    )
    assert report.pk not in {anonymized.pk for anonymized in again.reports}


def test_a_verdict_left_behind_by_an_earlier_anonymization_is_found_again(person, reporter):
    """Reports anonymized before verdicts were covered still hold the reporter's words:
    the next run takes them."""
    report = person["filed"]
    retention.anonymize(older_than=timedelta(days=1), now=timezone.now() + timedelta(days=2))
    Feedback.objects.filter(signalement=report).update(comment=VERDICT, author=reporter)

    result = retention.anonymize(
        older_than=timedelta(days=1), now=timezone.now() + timedelta(days=2)
    )

    assert [anonymized.pk for anonymized in result.reports] == [report.pk]
    assert Feedback.objects.get(signalement=report).comment == ""


def test_the_whole_erasure_procedure_leaves_nothing_to_export(person, user_client, reporter):
    """The README's procedure: the person erases their contact data (or an operator does
    it for them), their closed reports are anonymized, their open anonymous report is
    blanked by an agent, their account is deleted."""
    assert user_client.post(reverse("me-erase-contact-data")).status_code == 200
    anonymous = person["anonymous"]
    for status in ("acknowledged", "resolved"):
        services.transition(signalement=anonymous, to_status=status)
    retention.anonymize(older_than=timedelta(days=1), now=timezone.now() + timedelta(days=2))
    get_user_model().objects.filter(pk=reporter.pk).delete()

    data = export("citizen@example.org")

    assert (data["accounts"], data["reports"], data["subscriptions"]) == ([], [], [])
    assert data["comments_on_other_reports"] == []
    everything_but_the_request = {key: value for key, value in data.items() if key != "email"}
    assert "citizen" not in json.dumps(everything_but_the_request).lower()
    assert not Feedback.objects.exclude(comment="").exists()


def test_a_staff_members_own_comments_on_other_reports_are_theirs_too(someone_else, agent_user):
    agent_user.email = "agent@example.org"
    agent_user.save()

    data = export("agent@example.org")

    assert data["reports"] == []
    assert [c["body"] for c in data["comments_on_other_reports"]] == ["Vu."]
    assert data["comments_on_other_reports"][0]["report"] == someone_else.reference


def test_an_operator_erases_an_anonymous_reporters_data_by_their_address(someone_else, agent_user):
    """A reporter without an account asks by email: their reports' contact data (in the
    history too), their verdict's words, the address left in another report's history,
    their follows all go; the export then finds nothing; the others' data stays."""
    given = SignalementFactory(contact_name="Sacha", contact_email="Sacha@Example.org")
    for status in ("acknowledged", "resolved"):
        given = services.transition(signalement=given, to_status=status, by=agent_user)
    feedback.record(given, True, VERDICT)  # through the email's link: no author
    corrected = SignalementFactory(contact_name="Sacha", contact_email="sacha@example.org")
    corrected.contact_email = "sacha.b@example.org"
    corrected.save()
    subscriptions.follow(signalement=someone_else, email="sacha@example.org", language="fr")
    assert len(export("sacha@example.org")["reports"]) == 2
    out = io.StringIO()

    call_command("erase_contact_data", "--email", "SACHA@example.org", stdout=out)

    # Reports erased, reports whose history only held it, follows deleted.
    assert re.findall(r"\b\d+\b", out.getvalue()) == ["1", "1", "1"]
    data = export("sacha@example.org")
    assert (data["reports"], data["subscriptions"]) == ([], [])
    given.refresh_from_db()
    assert (given.contact_name, given.contact_email, given.contact_phone) == ("", "", "")
    assert given.history.order_by("-history_id").first().history_change_reason
    assert Feedback.objects.get(signalement=given).comment == ""
    assert set(HistoricalFeedback.objects.values_list("comment", flat=True)) == {""}
    corrected.refresh_from_db()
    assert corrected.contact_email == "sacha.b@example.org"  # someone's address now
    assert not corrected.history.filter(contact_email__iexact="sacha@example.org").exists()
    someone_else.refresh_from_db()
    assert someone_else.contact_email == "dominique@example.org"
    assert len(export("dominique@example.org")["subscriptions"]) == 1

    # Again: nothing left to erase, nothing recorded.
    recorded = given.history.count()
    again = io.StringIO()
    call_command("erase_contact_data", "--email", "sacha@example.org", stdout=again)
    assert given.history.count() == recorded
    assert retention.erase_address(email="sacha@example.org") == retention.AddressErasure()
