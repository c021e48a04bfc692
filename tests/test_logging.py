"""Logs (signalements_project/observability.py): a request id on every request, from
`X-Request-ID` when sane, returned in the response and written on every line of its
request; one line per request with its route (never the raw path), status, duration and
user; JSON lines with LOG_FORMAT=json; and nothing secret in them.

The last test runs a whole flow through the production server (`scripts/serve.sh` as
`make serve` runs it: two server workers and a task worker sending emails to a real SMTP
server) with LOG_FORMAT=json, then reads everything the processes wrote on their standard
error: every line is JSON, every request has its line, and no password, token, reporter
token, signed link, contact data, internal note or photo byte appears anywhere."""

import base64
import io
import json
import logging
import re
import secrets
import subprocess
import sys
import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from signalements.models import Category
from signalements_project.observability import (
    JsonFormatter,
    RequestLogFilter,
    TextFormatter,
    readable_route,
)

from . import images
from .factories import SignalementFactory
from .live import DATABASES, ROOT, LiveServer, live_database, server_environment, sql, wait_for
from .test_emails_live import SmtpServer
from .test_response_cache import call

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    ("pattern", "route"),
    [
        ("api/signalements/$", "api/signalements/"),
        ("api/signalements/(?P<pk>[^/.]+)/$", "api/signalements/<pk>/"),
        ("api/signalements/(?P<pk>[^/.]+)/transition/$", "api/signalements/<pk>/transition/"),
        ("api/subscriptions/confirm/<str:token>/", "api/subscriptions/confirm/<token>/"),
        ("api/feedback/<str:token>/", "api/feedback/<token>/"),
        ("open311/v2/requests\\.(?P<format>json|xml)$", "open311/v2/requests.<format>"),
        ("api/signalements/(?P<pk>[^/.]+)/attachments/(?P<attachment_id>[0-9]{1,18})/$",
         "api/signalements/<pk>/attachments/<attachment_id>/"),
        ("^media/(?P<path>(?:a|b)(c))$", "media/<path>"),
        ("healthz", "healthz"),
    ],
)  # fmt: skip
def test_a_route_is_the_url_pattern_as_people_write_it(pattern, route):
    assert readable_route(pattern) == route


@pytest.fixture
def json_log():
    """What the console handler writes (its filter, the JSON formatter), as parsed lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestLogFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("4bf92f3577b34da6a3ce929d0e0e4736", True),
        ("client-7:retry_2.b", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("two words", False),
        ("id\nInjected: line", False),
        ("é", False),
        ("", False),
    ],
)
def test_the_request_id_is_the_clients_when_sane_else_a_new_one(stack, given, kept):
    report = SignalementFactory()
    for path in ["/api/signalements/", f"/api/signalements/{report.pk}/", "/healthz"] * 3:
        status, headers, _ = call(stack, path, x_request_id=given)
        assert status == 200
        if kept:
            assert headers["X-Request-ID"] == given
        else:
            assert HEX_ID.fullmatch(headers["X-Request-ID"])
    first, second = (call(stack, "/api/")[1]["X-Request-ID"] for _ in range(2))
    assert first != second


def test_every_line_of_a_request_carries_its_id_and_the_route_not_the_path(stack, json_log):
    secret = secrets.token_urlsafe(24)
    status, headers, _ = call(stack, f"/api/feedback/{secret}/")
    assert status == 404
    lines = json_log()
    request_id = headers["X-Request-ID"]
    assert {line["request_id"] for line in lines} == {request_id}
    [not_found] = [line for line in lines if line["logger"] == "django.request"]
    assert not_found["message"] == "Not Found: api/feedback/<token>/"
    [access] = [line for line in lines if line["logger"] == "signalements.requests"]
    assert access["route"] == "api/feedback/<token>/" and access["status"] == 404
    assert access["method"] == "GET" and access["user_id"] is None
    assert access["duration_ms"] >= 0
    assert secret not in json.dumps(lines)
    # Outside a request, no id.
    logging.getLogger("signalements").warning("between requests")
    assert json_log()[-1]["request_id"] is None


def test_an_unmatched_path_is_not_written(stack, json_log):
    secret = secrets.token_urlsafe(24)
    assert call(stack, f"/api/subscriptions/confirm/{secret}")[0] == 301  # to the final "/"
    assert call(stack, f"/{secret}/", query=f"token={secret}")[0] == 404
    text = json.dumps(json_log())
    assert secret not in text and "(unmatched path)" in text


def test_a_database_error_line_leaves_out_the_row_values(db):
    code = f"voirie-{secrets.token_hex(6)}"  # not in the source lines of the traceback
    Category.objects.create(code=code, name="Voirie")
    try:
        with transaction.atomic():
            Category.objects.create(code=code, name="Voirie encore")
    except IntegrityError:
        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "Internal Server Error: %s",
            ("api/categories/",), sys.exc_info(),
        )  # fmt: skip
    if connection.vendor == "postgresql":  # its DETAIL line quotes the row
        assert code in str(record.exc_info[1])
    line = json.loads(JsonFormatter().format(record))
    assert line["error_type"] == "django.db.utils.IntegrityError"
    assert line["error_message"] and "Traceback" in line["traceback"]
    assert code not in json.dumps(line)
    record.exc_text = None
    assert code not in TextFormatter().format(record)


def test_text_lines_name_the_request(stack):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestLogFilter())
    handler.setFormatter(TextFormatter())
    logging.getLogger().addHandler(handler)
    try:
        status, headers, _ = call(stack, "/api/signalements/", x_request_id="text-id-1")
    finally:
        logging.getLogger().removeHandler(handler)
    assert status == 200
    assert re.fullmatch(r"\[text-id-1\] GET api/signalements/ 200 [0-9.]+ ms\n", stream.getvalue())


# --- A whole flow through the production server ------------------------------------------

SETUP = """
from django.contrib.auth.models import Group, User
from signalements.models import AGENTS_GROUP

agent = User.objects.create_user("agent", "agent.office@example.org", {password!r}, is_staff=True)
agent.groups.add(Group.objects.get(name=AGENTS_GROUP))
print(agent.pk)
"""


def multipart(field: str, filename: str, content: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name={json.dumps(field)}; "
        f"filename={json.dumps(filename)}\r\nContent-Type: {content_type}\r\n\r\n"
    )
    body = head.encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Flow:
    """Requests to a live server, each answer kept with its request id."""

    def __init__(self, server: LiveServer):
        self.server = server
        self.answers: list[dict] = []

    def send(self, method, path, body=None, headers=None, *, user_id=None, raw=None):
        headers = dict(headers or {})
        if raw is not None:  # (bytes, content type)
            connection = self.server.connection()
            connection.request(
                method, path, body=raw[0], headers={"Content-Type": raw[1], **headers}
            )
            response = connection.getresponse()
            payload = response.read()
            status = response.status
            answer_headers = {name.lower(): value for name, value in response.getheaders()}
            connection.close()
            parsed = json.loads(payload) if payload else None
        else:
            status, answer_headers, parsed = self.server.request(method, path, body, headers)
        self.answers.append(
            {
                "method": method,
                "status": status,
                "request_id": answer_headers["x-request-id"],
                "sent_id": headers.get("X-Request-ID"),
                "user_id": user_id,
                "cache": answer_headers.get("x-cache"),
            }
        )
        return status, answer_headers, parsed


@pytest.mark.parametrize("kind", DATABASES)
def test_a_full_flow_leaves_json_lines_without_any_secret(kind, tmp_path):
    password = f"Pw-{secrets.token_urlsafe(12)}"
    wrong_password = f"Wrong-{secrets.token_urlsafe(12)}"
    contact = {
        "contact_name": "Albertine Vérisecret",
        "contact_email": "albertine.verisecret@example.org",
        "contact_phone": "+33 6 12 34 98 76",
    }
    follower = "bastien.suiveur.secret@example.net"
    internal_note = "Note interne : voisin Rodolphe-Secret au 14"
    fake_tokens = [secrets.token_urlsafe(20) for _ in range(3)]
    photo = images.jpeg_with_gps()
    with live_database(kind, tmp_path) as url:
        done = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-v",
                "0",
                "-c",
                SETUP.format(password=password),
            ],
            cwd=ROOT,
            env=server_environment(url),
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        agent_id = int(done.stdout.split()[-1])
        smtp = SmtpServer(tmp_path / "smtp")
        server = LiveServer(
            url,
            workers=2,
            LOG_FORMAT="json",
            LOG_LEVEL="INFO",
            ACCESS_LOG="1",
            TASK_WORKERS="1",
            TASKS_BACKEND="database",
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
        )
        flow = Flow(server)
        try:
            # Logins: a wrong password, then the right one for a token.
            status, _, _ = flow.send(
                "POST", "/api/auth/token/", {"username": "agent", "password": wrong_password}
            )
            assert 400 <= status < 500
            status, _, body = flow.send(
                "POST", "/api/auth/token/", {"username": "agent", "password": password}
            )
            assert status == 200
            api_token = body["token"]
            agent = {"Authorization": f"Token {api_token}"}

            # An anonymous report with contact data, its photo and an edit with its token.
            report = {
                "description": "Panne électrique devant l'école",
                "date": "2025-04-29T16:30:00+02:00",
                **contact,
            }
            status, headers, body = flow.send(
                "POST", "/api/signalements/", report, {"X-Request-ID": "flow-create-1"}
            )
            assert status == 201 and headers["x-request-id"] == "flow-create-1"
            report_id, reporter_token = body["id"], body["reporter_token"]
            mine = {"X-Reporter-Token": reporter_token}
            status, _, _ = flow.send(
                "POST",
                f"/api/signalements/{report_id}/attachments/",
                headers=mine,
                raw=multipart("photos", "photo.jpg", photo, "image/jpeg"),
            )
            assert status == 201
            status, _, _ = flow.send(
                "PATCH", f"/api/signalements/{report_id}/", {"title": "Lampadaire"}, mine
            )
            assert status == 200

            # The agent: an internal note and a transition with a public note.
            comment = {"body": internal_note, "is_internal": True}
            path = f"/api/signalements/{report_id}/comments/"
            assert flow.send("POST", path, comment, agent, user_id=agent_id)[0] == 201
            move = {"status": "acknowledged", "note": "Une équipe passe demain."}
            path = f"/api/signalements/{report_id}/transition/"
            assert flow.send("POST", path, move, agent, user_id=agent_id)[0] == 200

            # A follower confirms through the emailed link.
            status, _, _ = flow.send(
                "POST", f"/api/signalements/{report_id}/follow/", {"email": follower}
            )
            assert status == 202

            def confirmation():
                for message in smtp.messages():
                    if message["To"] == follower:
                        text = message.get_body(("plain",)).get_content()
                        return re.search(r"/api/subscriptions/confirm/[^/\s]+/", text)
                return None

            confirm_path = wait_for(confirmation).group(0)
            confirm_token = confirm_path.split("/")[-2]
            assert flow.send("GET", confirm_path)[0] == 200
            assert flow.send("POST", confirm_path)[0] == 200

            # Reads: the same list three times on one connection (a worker's cache hit).
            connection = server.connection()
            for _ in range(3):
                status, headers, _ = server.request(
                    "GET", "/api/signalements/", connection=connection
                )
                assert status == 200
                flow.answers.append(
                    {
                        "method": "GET",
                        "status": 200,
                        "request_id": headers["x-request-id"],
                        "sent_id": None,
                        "user_id": None,
                        "cache": headers.get("x-cache"),
                    }
                )
            connection.close()
            assert flow.answers[-1]["cache"] == "hit"

            # Errors: not found (some with token-like paths), a refused create, a bad id.
            assert flow.send("GET", "/api/signalements/987654321/")[0] == 404
            assert flow.send("GET", f"/api/feedback/{fake_tokens[0]}/")[0] == 404
            assert flow.send("GET", f"/api/subscriptions/confirm/{fake_tokens[1]}/")[0] >= 400
            assert flow.send("GET", f"/api/nowhere/{fake_tokens[2]}")[0] == 404
            bad = {**report, "date": "not a date"}
            assert (
                flow.send("POST", "/api/signalements/", bad, {"X-Request-ID": "bad id"})[0] == 400
            )
            # A forced error: a table gone under the server.
            sql(url, "ALTER TABLE signalements_category RENAME TO signalements_category_gone")
            status, _, _ = flow.send("GET", "/api/categories/")
            assert status >= 500
            sql(url, "ALTER TABLE signalements_category_gone RENAME TO signalements_category")
        finally:
            server.stop()
            smtp.stop()
        log = server.log_text()

    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line JSON
    access = {
        line["request_id"]: line for line in lines if line["logger"] == "signalements.requests"
    }
    assert len(access) == len([line for line in lines if line["logger"] == "signalements.requests"])
    for answer in flow.answers:
        line = access[answer["request_id"]]
        assert line["status"] == answer["status"] and line["method"] == answer["method"]
        assert line["user_id"] == answer["user_id"]
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert line["route"] is None or "<" in line["route"] or "/" in line["route"]
        assert {"time", "level", "message"} <= line.keys()
        if answer["sent_id"] == "flow-create-1":
            assert line["request_id"] == "flow-create-1"
        elif answer["sent_id"] is not None:
            assert HEX_ID.fullmatch(line["request_id"])  # "bad id": replaced
    routes = {line["route"] for line in access.values()}
    assert {
        "api/auth/token/",
        "api/signalements/",
        "api/signalements/<pk>/",
        "api/signalements/<pk>/attachments/",
        "api/signalements/<pk>/transition/",
        "api/subscriptions/confirm/<token>/",
        "api/feedback/<token>/",
    } <= routes
    # The error's line: its request, its exception, its traceback.
    error_id = flow.answers[-1]["request_id"]
    [error] = [
        line for line in lines if line["level"] == "ERROR" and line["request_id"] == error_id
    ]
    assert error["error_type"] and error["error_message"] and "Traceback" in error["traceback"]
    # Every line says when, how grave, who wrote it, and in which request if any (the
    # server's own lines too: scripts/server-logging.json).
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= line.keys()
    assert any(line["request_id"] is None for line in lines)

    secrets_and_personal_data = [
        password,
        wrong_password,
        api_token,
        reporter_token,
        confirm_token,
        *fake_tokens,
        *contact.values(),
        follower,
        internal_note,
        images.SECRET_COMMENT,
        base64.b64encode(photo[:48]).decode(),
        photo[:48].hex(),
        photo[200:248].decode("latin-1"),
    ]
    for value in secrets_and_personal_data:
        assert value not in log, value
    # Nor their JSON-escaped forms (é as \u00e9, "+" as is).
    for value in contact.values():
        assert json.dumps(value)[1:-1] not in log
