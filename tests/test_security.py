"""Secure by default (settings.py, "Security"; signalements_project/security.py): Django's
deployment check with the production settings, HTTPS (redirect, HSTS, the proxy's word),
cookies, the Content-Security-Policy, CORS, the admin's URL and `Cache-Control:
no-store` on whatever may carry private data.

The settings' defaults are read in subprocesses (settings are made once per process, from
the environment); what the middlewares do is tested in process, with the settings
overridden."""

import base64
import json
import os
import re
import subprocess
import sys
from urllib.parse import urlsplit
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django.urls import reverse

from signalements import feedback, services
from signalements.api.response_cache import ResponseCache

from .factories import SignalementFactory, UserFactory
from .live import ROOT

LIST = "/api/signalements/"
APP = "https://app.example.org"
ELSEWHERE = "https://evil.example.net"
# What production sets (README, "Security"; .env.example): nothing else.
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-production-secret-key-for-the-deploy-check-0123456789-abcdefghij",
    "ALLOWED_HOSTS": "signalements.example.org",
}
# Variables of this test run that production does not set (pytest's env, a developer's
# shell): left out of the subprocesses, so that they see the production defaults.
NOT_PRODUCTION = re.compile(
    r"^(SECURE_|SESSION_COOKIE_|CSRF_COOKIE_|BEHIND_PROXY$|NUM_PROXIES$|DEBUG$|ADMIN_URL$|"
    r"CORS_|CSP_)"
)


def production_environment(**overrides: str) -> dict:
    base = {name: value for name, value in os.environ.items() if not NOT_PRODUCTION.match(name)}
    return {**base, **PRODUCTION, **overrides}


def manage(*args: str, **overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=production_environment(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


def settings_of(**overrides: str) -> dict:
    """The security settings a process started with this environment has."""
    names = [
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "ADMIN_URL",
    ]
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {names!r}}}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **production_environment(**overrides),
            "DJANGO_SETTINGS_MODULE": "signalements_project.settings",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


# --- The deployment check ----------------------------------------------------------------


@pytest.mark.parametrize("proxy", [{}, {"BEHIND_PROXY": "1"}], ids=["alone", "behind-a-proxy"])
def test_the_deploy_check_passes_with_the_production_settings(proxy):
    completed = manage("check", "--deploy", "--fail-level", "WARNING", **proxy)

    assert completed.returncode == 0, completed.stderr
    assert "no issues" in completed.stdout


@pytest.mark.parametrize(
    ("turned_off", "warning"),
    [
        ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
        ({"SECURE_SSL_REDIRECT": "0"}, "security.W008"),
        ({"SESSION_COOKIE_SECURE": "0"}, "security.W012"),
        ({"CSRF_COOKIE_SECURE": "0"}, "security.W016"),
    ],
)
def test_the_deploy_check_fails_when_a_protection_is_turned_off(turned_off, warning):
    completed = manage("check", "--deploy", "--fail-level", "WARNING", **turned_off)

    assert completed.returncode != 0
    assert warning in completed.stderr


def test_production_defaults_protect_and_make_run_s_debug_mode_does_not():
    production = settings_of()
    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_HSTS_SECONDS"] == 31_536_000
    assert production["SESSION_COOKIE_SECURE"] and production["CSRF_COOKIE_SECURE"]
    assert production["SESSION_COOKIE_HTTPONLY"] is True
    assert production["SECURE_PROXY_SSL_HEADER"] is None  # no proxy: nobody says "https"
    assert production["ADMIN_URL"] == "admin/"

    # `make run`: the development server, plain HTTP on loopback.
    development = settings_of(DEBUG="1", SECRET_KEY="")
    assert development["SECURE_SSL_REDIRECT"] is False
    assert development["SECURE_HSTS_SECONDS"] == 0
    assert not development["SESSION_COOKIE_SECURE"] and not development["CSRF_COOKIE_SECURE"]


@pytest.mark.parametrize(
    ("environment", "header"),
    [
        ({"BEHIND_PROXY": "1"}, ["HTTP_X_FORWARDED_PROTO", "https"]),
        ({"NUM_PROXIES": "1"}, ["HTTP_X_FORWARDED_PROTO", "https"]),
        # The variable of before BEHIND_PROXY still decides, either way.
        ({"BEHIND_PROXY": "1", "SECURE_PROXY_SSL_HEADER": "0"}, None),
        ({"SECURE_PROXY_SSL_HEADER": "1"}, ["HTTP_X_FORWARDED_PROTO", "https"]),
    ],
)
def test_the_proxy_s_https_header_is_believed_behind_a_proxy(environment, header):
    assert settings_of(**environment)["SECURE_PROXY_SSL_HEADER"] == header


# --- HTTPS, in process -------------------------------------------------------------------


@pytest.fixture
def production_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.BEHIND_PROXY = True
    settings.FORWARDED_ALLOW_IPS = ["127.0.0.1"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https_except_the_probes(production_https, client):
    response = client.get(LIST, {"page": 2})

    assert response.status_code == 301
    assert response["Location"] == "https://testserver/api/signalements/?page=2"
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_https_is_believed_from_our_proxy_only_and_gets_hsts(production_https, client):
    from_proxy = client.get(LIST, HTTP_X_FORWARDED_PROTO="https", REMOTE_ADDR="127.0.0.1")
    from_anyone = client.get(LIST, HTTP_X_FORWARDED_PROTO="https", REMOTE_ADDR="203.0.113.7")

    assert from_proxy.status_code == 200
    assert from_proxy["Strict-Transport-Security"] == "max-age=31536000"
    assert from_anyone.status_code == 301
    assert "Strict-Transport-Security" not in from_anyone


@pytest.mark.django_db
def test_pages_and_answers_carry_the_protective_headers(client):
    for path in (LIST, reverse("admin:login"), reverse("swagger-ui")):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response["X-Content-Type-Options"] == "nosniff", path
        assert response["X-Frame-Options"] == "DENY", path
        assert response["Referrer-Policy"] == "same-origin", path
        assert response["Cross-Origin-Opener-Policy"] == "same-origin", path


def test_the_admin_s_cookies_are_secure_and_out_of_scripts_reach(superuser):
    client = Client()
    page = client.get(reverse("admin:login"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    response = client.post(
        reverse("admin:login"),
        {
            "username": superuser.username,
            "password": "correct horse battery staple",
            "csrfmiddlewaretoken": token,
            "next": reverse("admin:index"),
        },
    )

    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    session, csrf = response.cookies["sessionid"], page.cookies["csrftoken"]
    assert session["secure"] and session["httponly"]
    assert csrf["secure"] and csrf["httponly"]
    assert client.get(reverse("admin:index")).status_code == 200


# --- Content-Security-Policy -------------------------------------------------------------


def directives(header: str) -> dict[str, list[str]]:
    found = {}
    for part in header.split(";"):
        name, *values = part.split()
        found[name] = values
    return found


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["admin:login", "swagger-ui", "redoc", "api-root"])
def test_pages_get_a_strict_content_security_policy(client, url_name):
    response = client.get(reverse(url_name), HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval, no other host
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["img-src"][:2] == ["'self'", "data:"]


@pytest.mark.django_db
def test_the_page_policy_reads_in_a_stable_order(client, settings):
    settings.ADMIN_MAP_TILES_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    settings.MEDIA_URL = "/media/"

    header = client.get(reverse("redoc"))["Content-Security-Policy"]

    assert header == (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: https://tile.openstreetmap.org; font-src 'self' data:; "
        "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["admin:login", "swagger-ui", "redoc"])
def test_the_pages_have_no_inline_script(client, url_name):
    page = client.get(reverse(url_name)).text

    scripts = re.findall(r"<script\b([^>]*)>", page)
    assert scripts
    inline = [attrs for attrs in scripts if "src=" not in attrs and "application/json" not in attrs]
    assert inline == []
    assert not re.search(r"\son[a-z]+=", page)  # no onclick= and the like


@pytest.mark.django_db
def test_swagger_ui_starts_from_a_script_of_its_own(client):
    page = client.get(reverse("swagger-ui")).text
    script_url = re.search(r'<script src="([^"]*\?[^"]*script=[^"]*)"', page).group(1)

    script = client.get(script_url.replace("&amp;", "&"))

    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.text and '"/api/schema/"' in script.text


@pytest.mark.django_db
def test_the_map_s_tile_server_and_the_photos_host_may_be_shown(client, settings):
    settings.ADMIN_MAP_TILES_URL = "https://{s}.tiles.example.org/{z}/{x}/{y}.png"
    settings.MEDIA_URL = "https://photos.example.org/media/"
    settings.CSP_EXTRA_IMG_SRC = ["https://s3.example.org"]

    policy = directives(client.get(reverse("admin:login"))["Content-Security-Policy"])

    assert policy["img-src"] == [
        "'self'",
        "data:",
        "https://*.tiles.example.org",
        "https://photos.example.org",
        "https://s3.example.org",
    ]


@pytest.mark.django_db
def test_answers_that_are_not_pages_may_load_nothing_and_not_be_framed(client):
    for path in (LIST, "/api/schema/", "/open311/v2/services.json", "/healthz"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


# --- CORS --------------------------------------------------------------------------------


@pytest.fixture
def app_origin(settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]


def preflight(client, path, origin, method="POST", headers="content-type"):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


def cors_headers(response) -> dict:
    return {
        name.lower(): value
        for name, value in response.items()
        if name.lower().startswith("access-control-")
    }


@pytest.mark.django_db
def test_by_default_no_origin_gets_any_cors_header(client):
    simple = client.get(LIST, HTTP_ORIGIN=APP)
    asked = preflight(client, LIST, APP)

    assert simple.status_code == 200
    assert cors_headers(simple) == {} and cors_headers(asked) == {}
    assert "origin" not in simple.get("Vary", "").lower()


@pytest.mark.django_db
def test_an_allowed_origin_s_preflight_allows_our_clients_headers(client, app_origin):
    wanted = "authorization,content-type,idempotency-key,if-match,x-reporter-token,x-request-id"

    response = preflight(client, LIST, APP, method="PATCH", headers=wanted)

    assert response.status_code == 200
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == APP
    assert set(wanted.split(",")) <= set(headers["access-control-allow-headers"].split(", "))
    assert {"GET", "POST", "PATCH", "DELETE"} <= set(
        headers["access-control-allow-methods"].split(", ")
    )
    assert "access-control-allow-credentials" not in headers  # tokens, not cookies


@pytest.mark.django_db
def test_an_allowed_origin_reads_the_answers_and_their_headers(client, app_origin):
    SignalementFactory(is_public=True)

    response = client.get(LIST, HTTP_ORIGIN=APP)
    open311 = client.get("/open311/v2/services.json", HTTP_ORIGIN=APP)

    assert response.status_code == 200 and response.json()["count"] == 1
    assert response["Access-Control-Allow-Origin"] == APP
    exposed = set(response["Access-Control-Expose-Headers"].split(", "))
    assert {"ETag", "X-Count", "X-Request-ID", "Idempotent-Replayed", "Location"} <= exposed
    assert "X-Count" in response and "ETag" in response  # headers the API does send
    assert "origin" in response["Vary"].lower()
    assert open311["Access-Control-Allow-Origin"] == APP


@pytest.mark.django_db
def test_other_origins_and_other_paths_get_no_cors_header(client, app_origin):
    assert cors_headers(client.get(LIST, HTTP_ORIGIN=ELSEWHERE)) == {}
    assert cors_headers(preflight(client, LIST, ELSEWHERE)) == {}
    assert cors_headers(client.get(reverse("admin:login"), HTTP_ORIGIN=APP)) == {}


@pytest.fixture
def wsgi_app(db):
    """Django's WSGI application behind the response cache, as make serve has it (the
    test's transaction must outlive each request, as with Django's test client)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield ResponseCache(WSGIHandler(), max_bytes=1024 * 1024)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def wsgi_get(app, path: str, **headers: str) -> dict:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "HTTP_HOST": "testserver"}
    environ.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer.update({name.lower(): value for name, value in response_headers})

    b"".join(app(environ, start_response))
    return answer


def test_the_response_cache_keeps_each_origin_s_answer_apart(wsgi_app, app_origin):
    SignalementFactory(is_public=True)
    for _ in range(3):  # stored from the second time on, served from the third
        from_app = wsgi_get(wsgi_app, LIST, ORIGIN=APP)
    without = [wsgi_get(wsgi_app, LIST) for _ in range(3)]
    elsewhere = [wsgi_get(wsgi_app, LIST, ORIGIN=ELSEWHERE) for _ in range(3)]
    again = wsgi_get(wsgi_app, LIST, ORIGIN=APP)

    assert from_app["access-control-allow-origin"] == APP and from_app.get("x-cache") == "hit"
    assert all("access-control-allow-origin" not in answer for answer in without + elsewhere)
    assert without[-1].get("x-cache") == elsewhere[-1].get("x-cache") == "hit"
    assert again["access-control-allow-origin"] == APP


# --- The admin's URL ---------------------------------------------------------------------

ADMIN_ELSEWHERE = """
import json
import re
import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from signalements import overdue

call_command("migrate", verbosity=0)
chef = get_user_model().objects.create_superuser("chef", "chef@example.org", "x")
client = Client()
anonymous = client.get("/gestion-interne/")
client.force_login(chef)
home = client.get(reverse("admin:index"))
reports = client.get(reverse("admin:signalements_signalement_changelist"))
print(json.dumps({
    "index": reverse("admin:index"),
    "anonymous": (anonymous.status_code, anonymous["Location"]),
    "home": home.status_code,
    "links": sorted(set(re.findall(r'href="(/[a-z-]+/)', home.text))),
    "reports": reports.status_code,
    "old": client.get("/admin/").status_code,
    "old_login": client.get("/admin/login/").status_code,
}))
"""


def test_the_admin_is_served_at_admin_url_and_nowhere_else(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", ADMIN_ELSEWHERE],
        cwd=ROOT,
        env={
            **production_environment(
                ADMIN_URL="/gestion-interne",
                DATABASE_URL=f"sqlite:///{tmp_path / 'admin.sqlite3'}",
                SECURE_SSL_REDIRECT="0",
                ALLOWED_HOSTS="testserver",
            ),
            "DJANGO_SETTINGS_MODULE": "signalements_project.settings",
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr
    seen = json.loads(completed.stdout.strip().splitlines()[-1])

    assert seen["index"] == "/gestion-interne/"
    assert seen["anonymous"] == [302, "/gestion-interne/login/?next=/gestion-interne/"]
    assert seen["home"] == seen["reports"] == 200
    assert "/gestion-interne/" in seen["links"] and "/admin/" not in seen["links"]
    assert seen["old"] == seen["old_login"] == 404


def test_a_malformed_admin_url_is_refused_at_start():
    completed = manage("check", ADMIN_URL="admin/<int:x>")

    assert completed.returncode != 0
    assert "ADMIN_URL" in completed.stderr


# --- Cache-Control: no-store -------------------------------------------------------------


def no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


@pytest.mark.django_db
def test_anonymous_public_reads_stay_cacheable(api_client):
    report = SignalementFactory(is_public=True)

    listed = api_client.get(LIST)
    detail = api_client.get(f"{LIST}{report.pk}/")
    categories = api_client.get("/api/categories/")

    for response in (listed, detail, categories):
        assert response.status_code == 200
        assert not no_store(response)
    assert "ETag" in detail
    assert (
        api_client.get(f"{LIST}{report.pk}/", HTTP_IF_NONE_MATCH=detail["ETag"]).status_code == 304
    )


@pytest.mark.django_db
def test_answers_to_an_agent_carry_no_store(agent_user, api_client):
    report = SignalementFactory(is_public=False)
    # HTTP Basic: credentials in each request, as a token's are.
    secret = base64.b64encode(f"{agent_user.username}:correct horse battery staple".encode())
    api_client.credentials(HTTP_AUTHORIZATION=f"Basic {secret.decode()}")

    listed = api_client.get(LIST)
    detail = api_client.get(f"{LIST}{report.pk}/")
    me = api_client.get(reverse("me"))
    export = api_client.get(reverse("signalement-export-csv"))

    assert listed.status_code == detail.status_code == me.status_code == export.status_code == 200
    assert detail.json()["contact_email"] == report.contact_email  # private data, indeed
    assert all(no_store(response) for response in (listed, detail, me, export))
    assert "ETag" in detail  # conditional requests still work for them


@pytest.mark.django_db
def test_a_logged_in_session_s_answers_carry_no_store(agent_user):
    client = Client()
    client.force_login(agent_user)

    assert no_store(client.get(LIST))
    assert no_store(client.get(reverse("admin:signalements_signalement_changelist")))


@pytest.mark.django_db
def test_tokens_are_handed_with_no_store(api_client):
    user = UserFactory(username="camille")

    login = api_client.post(
        reverse("auth-token"),
        {"username": user.username, "password": "correct horse battery staple"},
    )
    created = api_client.post(
        LIST, {"description": "Panne électrique", "date": "2025-04-29T16:30:00"}
    )
    with_reporter_token = api_client.get(
        f"{LIST}{created.json()['id']}/", HTTP_X_REPORTER_TOKEN=created.json()["reporter_token"]
    )

    assert login.status_code == 200 and "token" in login.json()
    assert created.status_code == 201
    assert no_store(login) and no_store(created) and no_store(with_reporter_token)


@pytest.mark.django_db
def test_a_failed_login_and_a_bad_request_are_not_stored_either(api_client):
    refused = api_client.post(reverse("auth-token"), {"username": "x", "password": "y"})
    invalid = api_client.post(LIST, {"date": "yesterday"})

    assert refused.status_code == 400 and invalid.status_code == 400
    assert invalid.json()["errors"][0]["attr"] in ("description", "date")
    assert no_store(refused) and no_store(invalid)


@pytest.mark.django_db
def test_the_pages_of_emailed_secret_links_carry_no_store(api_client):
    report = SignalementFactory(contact_email="camille@example.org")
    for status in ("acknowledged", "resolved"):
        report = services.transition(signalement=report, to_status=status, by=None)
    path = urlsplit(feedback.feedback_urls(report)["fixed"]).path

    page = api_client.get(path)

    assert page.status_code == 200 and page.json()["reference"] == report.reference
    assert no_store(page)
