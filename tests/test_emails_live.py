"""Emails end to end, with the real parts: the production server (`scripts/serve.sh`)
where an agent moves a report through the API, the real worker (`manage.py worker`, a
process of its own, on the database queue) that sends the email, and a real SMTP server
on loopback (aiosmtpd, `tests/smtp_sink.py`) that receives it. On SQLite, and on
PostgreSQL under `make test-postgres`.

- The reporter's status email arrives, once Léa confirmed her address on the server (the
  link of her report's first email), as a multipart message (text and HTML), in French,
  with RFC 8058's one-click unsubscribe, whose link works on the server.
- A mail server that refuses at first (451, twice): the worker tries again after
  EMAIL_RETRY_DELAYS (1 s here) and the email arrives; each failed attempt is a task
  result that says it will be retried."""

import email
import email.policy
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from .live import (
    DATABASES,
    ROOT,
    LiveServer,
    Worker,
    free_port,
    live_database,
    server_environment,
    sql,
    wait_for,
)

SETUP = """
from django.contrib.auth.models import Group, User
from django.utils import timezone
from knox.models import AuthToken
from signalements import contact_confirmation
from signalements.models import AGENTS_GROUP, Signalement

agent = User.objects.create_user("agent", "agent@example.org", "x", is_staff=True)
agent.groups.add(Group.objects.get(name=AGENTS_GROUP))
report = Signalement.objects.create(
    title="Lampadaire éteint", description="Éteint depuis trois soirs.", date=timezone.now(),
    contact_name="Léa Robert", contact_email="lea@example.org", language="fr",
)
print(AuthToken.objects.create(user=agent)[1], report.pk, contact_confirmation.confirm_token(report))
"""


class SmtpServer:
    """`tests/smtp_sink.py` on a loopback port, until `stop()`."""

    def __init__(self, directory: Path, *, refuse: int = 0):
        self.port = free_port()
        self.directory = directory
        directory.mkdir()
        self.process = subprocess.Popen(
            [sys.executable, "tests/smtp_sink.py", str(self.port), str(directory), str(refuse)],
            cwd=ROOT,
        )
        wait_for(lambda: (directory / "ready").exists())

    def messages(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(self.directory.glob("*.eml"))
        ]

    def refused(self) -> int:
        return len(list(self.directory.glob("refused-*")))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_worker(database_url: str, smtp: SmtpServer, public_url: str) -> Worker:
    return Worker(
        database_url,
        EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
        EMAIL_RETRY_DELAYS="1,1",
        PUBLIC_BASE_URL=public_url,
    )


def setup(database_url: str) -> tuple[str, int, str]:
    """An agent (their API token), a report of Léa's, and the token of the link that
    confirms her address, in the live database."""
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", SETUP],
        cwd=ROOT,
        env=server_environment(database_url),
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    token, report_id, confirm_token = done.stdout.splitlines()[-1].split()
    return token, int(report_id), confirm_token


def confirm_address(server: LiveServer, confirm_token: str) -> None:
    """Léa follows the link of her report's first email, and confirms (POST)."""
    path = f"/api/contact/confirm/{confirm_token}/"
    status, _, body = server.request("GET", path)
    assert status == 200 and body["confirmed"] is False, body
    status, _, body = server.request("POST", path)
    assert status == 200 and body["confirmed"] is True, body


def acknowledge(server: LiveServer, token: str, report_id: int) -> None:
    status, _, body = server.request(
        "POST",
        f"/api/signalements/{report_id}/transition/",
        {"status": "acknowledged", "note": "Une équipe passe demain."},
        {"Authorization": f"Token {token}"},
    )
    assert status == 200, body


@pytest.mark.parametrize("kind", DATABASES)
def test_the_worker_sends_the_status_email_to_a_real_smtp_server(kind, tmp_path):
    with live_database(kind, tmp_path) as url:
        token, report_id, confirm_token = setup(url)
        server = LiveServer(url, workers=1, TASKS_BACKEND="database")
        public_url = f"http://127.0.0.1:{server.port}"
        smtp = SmtpServer(tmp_path / "smtp")
        worker = start_worker(url, smtp, public_url)
        try:
            confirm_address(server, confirm_token)
            acknowledge(server, token, report_id)
            [message] = wait_for(smtp.messages)

            assert message["To"] == "lea@example.org"
            assert (
                message["Subject"]
                == f"[SIG-{time.strftime('%Y')}-{report_id:06d}] Votre signalement est pris en compte"
            )
            assert message.get_content_type() == "multipart/alternative"
            text = message.get_body(("plain",)).get_content()
            html = message.get_body(("html",)).get_content()
            assert "est désormais «\u00a0pris en compte\u00a0»" in text
            assert "Une équipe passe demain." in text and "Une équipe passe demain." in html
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            link = str(message["List-Unsubscribe"]).strip().strip("<>")
            assert link.startswith(f"{public_url}/api/subscriptions/unsubscribe/")
            assert link in text and link in html

            # The mail client's one click, on the server.
            path = urllib.parse.urlsplit(link).path
            status, _, body = server.request("POST", path)
            assert status == 200 and body["subscribed"] is False
            assert sql(url, "SELECT signalement_id FROM signalements_reporteroptout") == [
                (report_id,)
            ]
        finally:
            worker.stop()
            smtp.stop()
            server.stop()


@pytest.mark.parametrize("kind", DATABASES)
def test_a_refused_email_is_sent_again_after_its_delays(kind, tmp_path):
    with live_database(kind, tmp_path) as url:
        token, report_id, confirm_token = setup(url)
        server = LiveServer(url, workers=1, TASKS_BACKEND="database")
        smtp = SmtpServer(tmp_path / "smtp", refuse=2)
        worker = start_worker(url, smtp, f"http://127.0.0.1:{server.port}")
        try:
            confirm_address(server, confirm_token)
            acknowledge(server, token, report_id)
            [message] = wait_for(smtp.messages)
        finally:
            worker.stop()
            smtp.stop()
            server.stop()

        assert smtp.refused() == 2
        assert message["To"] == "lea@example.org"
        attempts = sql(
            url,
            "SELECT status, exception_class_path FROM django_tasks_database_dbtaskresult "
            "WHERE task_path = 'signalements.notifications.send_status_email' "
            "ORDER BY enqueued_at",
        )
        assert [(status, error.rsplit(".", 1)[-1]) for status, error in attempts] == [
            ("FAILED", "WillRetry"),
            ("FAILED", "WillRetry"),
            ("SUCCESSFUL", ""),
        ]
