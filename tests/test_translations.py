"""French first, English on request: the catalogue is complete and current, and each door
answers in the request's language (`Accept-Language`), French by default.

The catalogue check runs Django's `makemessages` (what `make messages-update` runs) on a
copy of the sources, so that the committed `django.po` is merged with what the code says
now without touching the working tree; it needs GNU gettext (xgettext, msgmerge, msgfmt).
"""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.urls import reverse
from rest_framework.test import APIClient

from signalements.models import ApiKey, Signalement

from .contact_addresses import confirmed
from .factories import CategoryFactory, SignalementFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = Path("signalements/locale/fr/LC_MESSAGES/django.po")
NBSP = "\u00a0"


# --- The catalogue ---------------------------------------------------------------------


def read_po(path: Path) -> list[dict]:
    """The entries of a .po file (the header left out): msgctxt, msgid, msgid_plural,
    msgstr (a list: one per plural form) and flags. Obsolete entries (`#~`) are kept
    with `obsolete: True`."""
    entries, entry, field = [], {}, None

    def close():
        nonlocal entry, field
        if "msgid" in entry and entry["msgid"]:
            entries.append(entry)
        entry, field = {}, None

    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            close()
            continue
        if line.startswith("#~"):
            entry["obsolete"] = True
            line = line[2:].strip()
        elif line.startswith("#,"):
            entry.setdefault("flags", set()).update(f.strip() for f in line[2:].split(","))
            continue
        elif line.startswith("#"):
            continue
        if line.startswith('"'):
            text = ast.literal_eval(line)
            if field.startswith("msgstr"):
                entry["msgstr"][-1] += text
            else:
                entry[field] += text
            continue
        keyword, _, rest = line.partition(" ")
        if keyword == "msgctxt" and "msgid" in entry:
            close()
        field = keyword
        if keyword.startswith("msgstr"):
            entry.setdefault("msgstr", []).append(ast.literal_eval(rest))
        else:
            entry[keyword] = ast.literal_eval(rest)
    close()
    return entries


def key_of(entry: dict) -> tuple:
    return (entry.get("msgctxt"), entry["msgid"], entry.get("msgid_plural"))


def named(key: tuple) -> str:
    context, msgid, _ = key
    return f"{msgid!r}" + (f" (context {context!r})" if context else "")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> list[dict]:
    """The catalogue as `make messages-update` would write it now."""
    copy = tmp_path_factory.mktemp("sources")
    ignored = shutil.ignore_patterns("__pycache__", "*.mo", "static", "media")
    for folder in ("signalements", "signalements_project"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=ignored)
    shutil.copy(ROOT / "manage.py", copy / "manage.py")
    command = [sys.executable, "manage.py", "makemessages", "-l", "fr"]
    command += ["--no-location", "--no-obsolete", "-v", "0"]
    done = subprocess.run(
        command, cwd=copy, env={**os.environ, "DEBUG": "1"}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return read_po(copy / CATALOGUE)


@pytest.fixture(scope="module")
def committed() -> list[dict]:
    return read_po(ROOT / CATALOGUE)


def test_the_committed_catalogue_holds_every_message_of_the_code(regenerated, committed):
    in_code = {key_of(entry) for entry in regenerated}
    in_catalogue = {key_of(entry) for entry in committed if not entry.get("obsolete")}

    missing = sorted(in_code - in_catalogue, key=str)
    stale = sorted(in_catalogue - in_code, key=str)

    assert not missing and not stale, (
        "signalements/locale/fr/LC_MESSAGES/django.po is out of date: run "
        "`make messages-update`, translate, commit.\n"
        + "".join(f"  not in the catalogue: {named(key)}\n" for key in missing)
        + "".join(f"  no longer in the code: {named(key)}\n" for key in stale)
    )


def test_every_message_is_translated(regenerated):
    untranslated = [
        named(key_of(entry))
        + (" [fuzzy]" if "fuzzy" in entry.get("flags", ()) else " [untranslated]")
        for entry in regenerated
        if "fuzzy" in entry.get("flags", ()) or not all(entry["msgstr"])
    ]

    assert not untranslated, "Translate these in {}:\n  {}".format(
        CATALOGUE, "\n  ".join(untranslated)
    )


def test_the_catalogue_compiles_with_matching_placeholders(tmp_path):
    """msgfmt --check: every %(name)s and {name} of a message is in its translation."""
    done = subprocess.run(
        ["msgfmt", "--check", "-o", str(tmp_path / "django.mo"), str(ROOT / CATALOGUE)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_the_catalogue_is_written_as_makemessages_writes_it(committed):
    """No locations (`--no-location`): a moved line of code does not change the file."""
    assert "\n#: " not in (ROOT / CATALOGUE).read_text(encoding="utf-8")
    assert committed, "the catalogue is empty"


# --- The REST API -----------------------------------------------------------------------

FUTURE = {"description": "Panne", "date": "2999-01-01T00:00:00+01:00"}


@pytest.mark.django_db
def test_an_api_error_is_in_french_by_default_and_in_english_on_request():
    client = APIClient()

    french = client.post("/api/signalements/", FUTURE, format="json")
    english = client.post("/api/signalements/", FUTURE, format="json", HTTP_ACCEPT_LANGUAGE="en")

    for response, language in ((french, "fr"), (english, "en")):
        assert response.status_code == 400
        assert response["Content-Language"] == language
        assert "Accept-Language" in response["Vary"]
    assert french.json()["errors"] == [
        {
            "code": "future_date",
            "detail": "La date ne peut pas être dans le futur.",
            "attr": "date",
        }
    ]
    assert english.json()["errors"] == [
        {"code": "future_date", "detail": "The date cannot be in the future.", "attr": "date"}
    ]
    assert not Signalement.objects.exists()


def test_a_refusal_before_the_locale_middleware_follows_the_language_too(client, settings):
    """The 414 of a URL too long is answered before LocaleMiddleware runs."""
    settings.MAX_URL_LENGTH = 50
    url = "/api/signalements/?search=" + "x" * 60

    french = client.get(url).json()["errors"][0]
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").json()["errors"][0]

    assert french["code"] == english["code"] == "uri_too_long"
    assert french["detail"] == (
        "L’URL est trop longue (50 caractères au plus, chaîne de requête comprise)."
    )
    assert english["detail"] == (
        "The URL is too long (at most 50 characters, with its query string)."
    )


@pytest.mark.django_db
def test_the_api_speaks_english_to_a_client_preferring_it():
    """Accept-Language's preferences, as browsers send them; a language we do not speak
    falls back to French."""
    client = APIClient()

    def detail(accept_language: str) -> str:
        response = client.post(
            "/api/signalements/", FUTURE, format="json", HTTP_ACCEPT_LANGUAGE=accept_language
        )
        return response.json()["errors"][0]["detail"]

    assert detail("en-GB,en;q=0.9,fr;q=0.8") == "The date cannot be in the future."
    assert detail("de-DE,de;q=0.9") == "La date ne peut pas être dans le futur."
    assert detail("fr-CA,en;q=0.5") == "La date ne peut pas être dans le futur."


@pytest.mark.django_db
def test_a_report_keeps_the_language_it_was_created_in():
    client = APIClient()
    payload = {"description": "Panne", "date": "2025-04-29T16:30:00+02:00"}

    french = client.post("/api/signalements/", payload, format="json")
    english = client.post("/api/signalements/", payload, format="json", HTTP_ACCEPT_LANGUAGE="en")
    user = UserFactory(username="lea")
    client.force_authenticate(user)
    british = client.post(
        "/api/signalements/", payload, format="json", HTTP_ACCEPT_LANGUAGE="en-GB"
    )

    languages = dict(Signalement.objects.values_list("pk", "language"))
    assert languages == {
        french.json()["id"]: "fr",
        english.json()["id"]: "en",
        british.json()["id"]: "en",
    }
    assert "language" not in french.json()  # not part of the representation


# --- Open311 ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_open311_error_description_follows_the_language_its_code_does_not(client, fmt):
    url = f"/open311/v2/requests.{fmt}"
    form = {"service_code": "voirie", "lat": "48.1", "long": "-1.6", "description": "x"}

    french = client.post(url, form)
    english = client.post(url, form, HTTP_ACCEPT_LANGUAGE="en")

    assert french.status_code == english.status_code == 403
    if fmt == "json":
        assert french.json() == [{"code": 403, "description": "api_key: Ce champ est obligatoire."}]
        assert english.json() == [{"code": 403, "description": "api_key: This field is required."}]
    else:
        assert b"<code>403</code>" in french.content
        assert "<description>api_key: Ce champ est obligatoire.</description>" in (
            french.content.decode()
        )
        assert b"<description>api_key: This field is required.</description>" in english.content


@pytest.mark.django_db
def test_open311_explains_its_rules_in_the_requests_language(client):
    api_key, raw_key = ApiKey.issue(name="Ville", user=UserFactory(username="ville"))
    CategoryFactory(code="voirie", name="Voirie")
    form = {"api_key": raw_key, "service_code": "voirie", "description": "Nid-de-poule"}
    query = "/open311/v2/requests.json?start_date=2026-01-01T00:00:00"

    assert client.post("/open311/v2/requests.json", form).json() == [
        {
            "code": 400,
            "description": f"lat: Une localisation est obligatoire{NBSP}: lat et long, "
            "ou address_string.",
        }
    ]
    assert client.get(query, HTTP_ACCEPT_LANGUAGE="en").json() == [
        {
            "code": 400,
            "description": "start_date: Give a time zone: Z or ±HH:MM, "
            "e.g. 2026-01-01T00:00:00+01:00.",
        }
    ]
    assert client.get(query).json()[0]["description"] == (
        f"start_date: Donnez un fuseau horaire{NBSP}: Z ou ±HH:MM, "
        "par exemple 2026-01-01T00:00:00+01:00."
    )
    created = client.post(
        "/open311/v2/requests.json",
        {**form, "lat": "48.1", "long": "-1.6"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert created.status_code == 200, created.content
    assert Signalement.objects.get().language == "en"


# --- Emails -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "language, subject, lines",
    [
        (
            "fr",
            "[{reference}] Votre signalement est pris en compte",
            [
                "Bonjour,",
                "",
                "Votre signalement {reference} est désormais «\u00a0pris en compte\u00a0».",
                "Objet\u00a0: Lampadaire éteint",
                "",
                "Message de l’équipe\u00a0:",
                "Une équipe passe demain.",
                "",
                "Suivre son avancement\u00a0: http://127.0.0.1:8000/api/signalements/{id}/",
                "",
                "Merci de votre contribution.",
                "",
                "— Signalements",
                "",
                "Vous recevez cet e-mail parce que vous avez fait ce signalement.",
                "Pour ne plus recevoir ces e-mails\u00a0: {unsubscribe}",
            ],
        ),
        (
            "en",
            "[{reference}] Your report is acknowledged",
            [
                "Hello,",
                "",
                "Your report {reference} is now “acknowledged”.",
                "Subject: Lampadaire éteint",
                "",
                "Message from the team:",
                "Une équipe passe demain.",
                "",
                "Follow its progress: http://127.0.0.1:8000/api/signalements/{id}/",
                "",
                "Thank you for your contribution.",
                "",
                "— Signalements",
                "",
                "You receive this email because you made this report.",
                "To stop these emails: {unsubscribe}",
            ],
        ),
    ],
)
def test_the_status_email_is_in_the_reports_language(
    agent_client, django_capture_on_commit_callbacks, language, subject, lines
):
    report = confirmed(SignalementFactory(language=language, contact_email="lea@example.org"))

    with django_capture_on_commit_callbacks(execute=True):
        # The agent's own language does not matter: the reporter's does.
        response = agent_client.post(
            reverse("signalement-transition", args=[report.pk]),
            {"status": "acknowledged", "note": "Une équipe passe demain."},
            format="json",
            HTTP_ACCEPT_LANGUAGE="fr" if language == "en" else "en",
        )

    assert response.status_code == 200, response.content
    [message] = mail.outbox
    assert message.subject == subject.format(reference=report.reference)
    unsubscribe = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert message.body == "\n".join(lines).format(
        reference=report.reference, id=report.pk, unsubscribe=unsubscribe
    )
    # The same words in its HTML part, in the same language.
    [(html, _)] = message.alternatives
    assert f'<html lang="{language}">' in html
    assert lines[2].format(reference=f"<strong>{report.reference}</strong>") in html


@pytest.mark.django_db
def test_a_report_in_a_language_no_longer_spoken_is_written_to_in_the_sites(
    agent_client, django_capture_on_commit_callbacks
):
    report = confirmed(SignalementFactory(language="de", contact_email="lea@example.org"))

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(
            reverse("signalement-transition", args=[report.pk]),
            {"status": "rejected"},
            format="json",
        )

    assert mail.outbox[0].subject == f"[{report.reference}] Votre signalement est rejeté"
