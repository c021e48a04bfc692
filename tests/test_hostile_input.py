"""Hostile input against the production server (`scripts/serve.sh`, as `make serve`
runs it): each case asserts the status, the error's JSON shape (the REST API's, or
Open311's) and that the database is unchanged. On SQLite, and on PostgreSQL under
`make test-postgres`."""

import http.client
import json
from dataclasses import dataclass, field

import pytest

from .live import DATABASES, LiveServer, live_database, sql
from .test_faults import REPORT

JSON = {"Content-Type": "application/json", "Accept": "application/json"}
TABLES = ("signalements_signalement", "signalements_comment", "signalements_attachment")


@dataclass
class Case:
    name: str
    method: str
    path: str
    body: bytes | None = None
    headers: dict = field(default_factory=lambda: dict(JSON))
    status: int | tuple = 400
    shape: str = "api"  # the REST API's errors; "open311"; None: any JSON, no error
    code: str | None = None  # the first error's code, when it matters
    detail: str | None = None  # a text the first error's detail holds
    attr: str | None = None  # the first error's attr, when it matters


def body(value) -> bytes:
    return json.dumps(value).encode()


def report(**fields) -> bytes:
    return body({**REPORT, **fields})


HIDDEN = "/api/signalements/2/"  # made hidden by the fixture below
CASES = [
    # NUL bytes, everywhere.
    Case(
        "nul in a body string",
        "POST",
        "/api/signalements/",
        report(description="a\x00b"),
        attr="description",
    ),
    Case(
        "nul in an extra key",
        "POST",
        "/api/signalements/",
        report(extra={"a\x00": 1}),
        code="unknown_field",
    ),
    Case("nul in the query", "GET", "/api/signalements/?search=a%00b", attr="search"),
    Case("nul in the path", "GET", "/api/signalements/1%00/", status=404),
    Case(
        "nul in a header",
        "GET",
        "/api/signalements/1/",
        headers={**JSON, "X-Reporter-Token": "a\x00b"},
        status=(200, 400),
        shape=None,
    ),
    Case(
        "nul in a basic password",
        "GET",
        "/api/me/",
        headers={**JSON, "Authorization": "Basic YWdlbnQ6YQBi"},
        status=401,
    ),
    # Not JSON, or JSON no one should send.
    Case("malformed json", "POST", "/api/signalements/", b'{"description": ', code="parse_error"),
    Case(
        "nan",
        "POST",
        "/api/signalements/",
        b'{"description": "x", "latitude": NaN}',
        code="parse_error",
    ),
    Case(
        "infinity",
        "POST",
        "/api/signalements/",
        b'{"description": "x", "latitude": Infinity}',
        code="parse_error",
    ),
    Case(
        "20,000-deep nesting",
        "POST",
        "/api/signalements/",
        b'{"extra": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
        code="parse_error",
    ),
    Case("a list, not an object", "POST", "/api/signalements/", b"[1, 2, 3]"),
    Case("an empty body", "POST", "/api/signalements/", b"", attr="description"),
    Case(
        "invalid utf-8",
        "POST",
        "/api/signalements/",
        b'{"description": "\xff\xfe"}',
        code="parse_error",
    ),
    Case(
        "a lone surrogate",
        "POST",
        "/api/signalements/",
        b'{"description": "Panne \\ud800 rue", "date": "2025-04-29T16:30:00+02:00"}',
        attr="description",
    ),
    Case(
        "a number too large",
        "POST",
        "/api/signalements/",
        report(latitude=1e308 * 10),
        code="parse_error",
    ),
    Case(
        "a 10 MB string",
        "POST",
        "/api/signalements/",
        report(description="x" * 10_000_000),
        status=413,
        code="request_too_large",
    ),
    Case(
        "the wrong type",
        "POST",
        "/api/signalements/",
        report(description=12345),
        attr="description",
    ),
    Case("a date that is not one", "POST", "/api/signalements/", report(date="hier"), attr="date"),
    Case(
        "a latitude that is not one",
        "POST",
        "/api/signalements/",
        report(latitude="nord"),
        attr="latitude",
    ),
    Case(
        "too many extra keys",
        "POST",
        "/api/signalements/",
        report(extra={str(n): "" for n in range(5000)}),
        code="max_keys",
        attr="extra",
    ),
    # Content types and methods.
    Case(
        "form-encoded",
        "POST",
        "/api/signalements/",
        b"description=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        status=415,
        code="unsupported_media_type",
        detail="envoyez application/json",  # in French, the default language
    ),
    Case(
        "text/plain",
        "POST",
        "/api/signalements/",
        b"x",
        headers={"Content-Type": "text/plain", "Accept-Language": "en"},
        status=415,
        code="unsupported_media_type",
        detail='"text/plain" in request: send application/json.',
    ),
    Case(
        "an unsupported accept",
        "GET",
        "/api/signalements/",
        headers={"Accept": "application/xml"},
        status=406,
    ),
    Case("trace", "TRACE", "/api/signalements/", status=405),
    Case("an unknown method", "BREW", "/api/signalements/", status=405),
    # Ids and pages.
    Case("a huge id", "GET", "/api/signalements/99999999999999999999999999/", status=404),
    Case("a negative id", "GET", "/api/signalements/-1/", status=404),
    Case("an id that is not a number", "GET", "/api/signalements/abc/", status=404),
    Case("page 0", "GET", "/api/signalements/?page=0", attr="page"),
    Case("a negative page", "GET", "/api/signalements/?page=-3", attr="page"),
    Case("a page that is not a number", "GET", "/api/signalements/?page=abc", attr="page"),
    # Deeper than LIST_MAX_OFFSET: a 400 that points to the cursor.
    Case("a huge page", "GET", "/api/signalements/?page=" + "9" * 40, attr="page"),
    Case("a forged cursor", "GET", "/api/signalements/?cursor=%00%ff" + "9" * 300, attr="cursor"),
    Case("an unknown count", "GET", "/api/signalements/?count=all", attr="count"),
    Case("a page size that is not a number", "GET", "/api/signalements/?page_size=abc"),
    Case("an unknown ordering", "GET", "/api/signalements/?ordering=password", attr="ordering"),
    Case("radius without near", "GET", "/api/signalements/?radius=10", attr="radius"),
    Case("bad percent-encoding", "GET", "/api/signalements/?search=%zz%", status=200, shape=None),
    Case(
        "a thousand parameters",
        "GET",
        "/api/signalements/?" + "&".join(f"{n}" for n in range(1500)),
        code="parse_error",
    ),
    Case(
        "an overlong url",
        "GET",
        "/api/signalements/?search=" + "a" * 9000,
        status=414,
        code="uri_too_long",
    ),
    Case("an unknown url", "GET", "/api/nulle-part/", status=404),
    # Who may do what.
    Case(
        "a host not allowed",
        "GET",
        "/api/signalements/",
        headers={**JSON, "Host": "evil.example"},
        status=400,
    ),
    Case("a hidden report by id", "GET", HIDDEN, status=404),
    Case(
        "another reporter's token",
        "PATCH",
        HIDDEN,
        body({"title": "à moi"}),
        headers={**JSON, "X-Reporter-Token": "TOKEN_OF_1"},
        status=404,
    ),
    Case(
        "an expired token",
        "PATCH",
        "/api/signalements/3/",
        body({"title": "encore"}),
        headers={**JSON, "X-Reporter-Token": "EXPIRED_TOKEN"},
        status=(401, 403),
    ),
    Case("a delete by anyone", "DELETE", "/api/signalements/1/", status=(401, 403)),
    Case(
        "a replayed key with another body",
        "POST",
        "/api/signalements/",
        report(description="Une autre panne"),
        headers={**JSON, "Idempotency-Key": "hostile-key"},
        status=422,
        code="idempotency_key_reused",
        attr="Idempotency-Key",
    ),
    Case(
        "a malformed idempotency key",
        "POST",
        "/api/signalements/",
        report(),
        headers={**JSON, "Idempotency-Key": "clé"},
        attr="Idempotency-Key",
    ),
    # Open311.
    Case(
        "open311 without a key",
        "POST",
        "/open311/v2/requests.json",
        b"description=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        status=(400, 403),
        shape="open311",
    ),
    Case(
        "open311 nul in a field",
        "POST",
        "/open311/v2/requests.json",
        b"description=a%00b&lat=1&long=1&service_code=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        status=(400, 403),
        shape="open311",
    ),
    Case(
        "open311 unknown request",
        "GET",
        "/open311/v2/requests/abc%00.json",
        status=404,
        shape="open311",
    ),
]


def counts(database_url: str) -> tuple:
    return tuple(sql(database_url, f"SELECT COUNT(*) FROM {table}")[0][0] for table in TABLES)


def send(server: LiveServer, case: Case, substitutions: dict) -> tuple[int, dict, bytes]:
    headers = {
        name: substitutions.get(value, value) if isinstance(value, str) else value
        for name, value in case.headers.items()
    }
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.putrequest(
            case.method, case.path, skip_host="Host" in headers, skip_accept_encoding=True
        )
        for name, value in headers.items():
            connection.putheader(name, value)
        if case.body is not None:
            connection.putheader("Content-Length", str(len(case.body)))
        try:
            connection.endheaders(case.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before reading it all (a body over the limit)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def setup_reports(server: LiveServer, database_url: str) -> dict:
    """Report 1 (public, its token known), report 2 (hidden), report 3 (its token
    expired), and a keyed create."""
    tokens = {}
    for number in (1, 2, 3):
        status, _, created = server.request("POST", "/api/signalements/", REPORT)
        assert status == 201 and created["id"] == number
        tokens[number] = created["reporter_token"]
    status, _, _ = server.request(
        "POST", "/api/signalements/", REPORT, headers={"Idempotency-Key": "hostile-key"}
    )
    assert status == 201
    sql(database_url, "UPDATE signalements_signalement SET is_public = FALSE WHERE id = 2")
    sql(
        database_url,
        "UPDATE signalements_signalement SET reporter_token_expires_at = "
        "'2000-01-01 00:00:00+00:00' WHERE id = 3",
    )
    return {"TOKEN_OF_1": tokens[1], "EXPIRED_TOKEN": tokens[3]}


def check(case: Case, status: int, headers: dict, content: bytes) -> list[str]:
    problems = []
    expected = case.status if isinstance(case.status, tuple) else (case.status,)
    if status not in expected:
        problems.append(f"status {status}, not {case.status}: {content[:300]!r}")
    if status >= 500:
        problems.append("a 5xx")
    lowered = {name.lower(): value for name, value in headers.items()}
    if case.shape is None:
        return problems
    if not lowered.get("content-type", "").startswith("application/json"):
        problems.append(f"not JSON: {lowered.get('content-type')} {content[:200]!r}")
        return problems
    data = json.loads(content)
    if case.shape == "open311":
        if not (isinstance(data, list) and data and {"code", "description"} <= set(data[0])):
            problems.append(f"not Open311's error shape: {data}")
        return problems
    if not (isinstance(data, dict) and data.get("type") and data.get("errors")):
        problems.append(f"not the API's error shape: {data}")
        return problems
    first = data["errors"][0]
    if case.code and first["code"] != case.code:
        problems.append(f"code {first['code']}, not {case.code}: {first}")
    if case.detail and case.detail not in first["detail"]:
        problems.append(f"detail without {case.detail!r}: {first}")
    if case.attr and first["attr"] != case.attr:
        problems.append(f"attr {first['attr']}, not {case.attr}: {first}")
    if status == 405 and "allow" not in lowered:
        problems.append("a 405 without Allow")
    return problems


@pytest.mark.parametrize("kind", DATABASES)
def test_hostile_input_is_refused_cleanly_and_writes_nothing(kind, tmp_path):
    assert len(CASES) >= 40
    with live_database(kind, tmp_path) as database_url:
        server = LiveServer(database_url, workers=2)
        try:
            substitutions = setup_reports(server, database_url)
            problems = {}
            for case in CASES:
                before = counts(database_url)
                status, headers, content = send(server, case, substitutions)
                found = check(case, status, headers, content)
                if counts(database_url) != before:
                    found.append(f"the database changed: {before} -> {counts(database_url)}")
                if found:
                    problems[case.name] = found
            emoji = "🚧 Travaux 🚧 — nid-de-poule 🕳️"
            status, _, created = server.request(
                "POST", "/api/signalements/", {**REPORT, "description": emoji}
            )
            read = server.request("GET", f"/api/signalements/{created['id']}/")[2]
        finally:
            server.stop()
    print(json.dumps(problems, indent=1, ensure_ascii=False))
    assert problems == {}
    assert status == 201 and created["description"] == read["description"] == emoji


def test_a_forged_forwarded_for_does_not_escape_the_throttle_of_the_live_server(tmp_path):
    """Wrong logins, each claiming another address in X-Forwarded-For: the server (no
    proxy configured) counts them all for the one connection's address. (One worker: the
    counts of several live in a shared cache, REDIS_URL; see test_load.py.)"""
    with live_database("sqlite", tmp_path) as database_url:
        server = LiveServer(database_url, workers=1, THROTTLE_LOGIN="5/minute")
        try:
            statuses = [
                server.request(
                    "POST",
                    "/api/auth/token/",
                    {"username": "agent", "password": f"guess {number}"},
                    headers={"X-Forwarded-For": f"198.51.100.{number}"},
                )[0]
                for number in range(8)
            ]
        finally:
            server.stop()
    assert statuses == [400] * 5 + [429] * 3
