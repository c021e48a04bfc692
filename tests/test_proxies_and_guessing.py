"""Found by a security audit: throttles believed `X-Forwarded-For` from anyone (12 wrong
logins with varying headers never reached the 429), and HTTP Basic let anyone guess
passwords without limit. Forwarded headers are believed from our proxy alone
(signalements_project/proxies.py); failed Basic attempts are limited per address and
per username (signalements/api/authentication.py)."""

import base64

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from .factories import SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKEN_URL = reverse("auth-token")
ME_URL = reverse("me")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def login_rate(settings):
    # The throttles alone: the lockout of an account after a few failures from one
    # address would answer first (tests/test_lockout.py).
    settings.LOGIN_FAILURE_LIMIT = 0
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "login": "10/minute",
        },
    }


def wrong_logins(client, count, **extra):
    return [
        client.post(
            TOKEN_URL,
            {"username": "camille", "password": f"guess {number}"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{number}",
            **extra,
        ).status_code
        for number in range(count)
    ]


def test_a_forged_forwarded_for_does_not_escape_the_login_throttle(login_rate):
    UserFactory(username="camille")
    assert wrong_logins(APIClient(), 12) == [400] * 10 + [429] * 2


def test_behind_a_proxy_its_forwarded_for_names_the_client(login_rate, settings):
    settings.BEHIND_PROXY = True
    settings.FORWARDED_ALLOW_IPS = ["127.0.0.1"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    UserFactory(username="camille")
    # From the proxy (127.0.0.1, the test client's address): one client each time.
    assert wrong_logins(APIClient(), 12) == [400] * 12
    # From anywhere else, the header is not believed: one client, throttled.
    elsewhere = APIClient(REMOTE_ADDR="203.0.113.9")
    assert wrong_logins(elsewhere, 12)[-2:] == [429, 429]


def test_a_forged_forwarded_proto_does_not_make_urls_https(api_client, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SignalementFactory(), SignalementFactory()
    forged = api_client.get("/api/signalements/", {"page_size": 1}, HTTP_X_FORWARDED_PROTO="https")
    assert forged.json()["next"].startswith("http://testserver/")


def test_trusted_networks_may_be_networks_or_any(settings):
    from signalements_project.proxies import TrustedProxyMiddleware

    settings.BEHIND_PROXY = True
    settings.FORWARDED_ALLOW_IPS = ["10.0.0.0/8", "::1"]
    middleware = TrustedProxyMiddleware(lambda request: None)
    assert middleware.from_our_proxy("10.1.2.3") and middleware.from_our_proxy("::1")
    assert not middleware.from_our_proxy("192.0.2.1")
    assert not middleware.from_our_proxy("not an address")
    settings.FORWARDED_ALLOW_IPS = ["*"]
    assert TrustedProxyMiddleware(lambda request: None).from_our_proxy("192.0.2.1")
    settings.BEHIND_PROXY = False
    assert not TrustedProxyMiddleware(lambda request: None).from_our_proxy("127.0.0.1")


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_failed_basic_authentications_are_limited_per_address(login_rate):
    UserFactory(username="camille", password=PASSWORD)
    client = APIClient()
    statuses = [
        client.get(ME_URL, HTTP_AUTHORIZATION=basic("camille", f"guess {n}")).status_code
        for n in range(12)
    ]
    assert statuses == [401] * 10 + [429] * 2
    blocked = client.get(ME_URL, HTTP_AUTHORIZATION=basic("camille", PASSWORD))
    assert blocked.status_code == 429  # no password is checked while blocked
    assert int(blocked["Retry-After"]) > 0


def test_failed_basic_authentications_are_limited_per_username(login_rate):
    """From many addresses, against one account."""
    UserFactory(username="camille", password=PASSWORD)
    statuses = [
        APIClient(REMOTE_ADDR=f"192.0.2.{n}")
        .get(ME_URL, HTTP_AUTHORIZATION=basic("Camille", f"guess {n}"))
        .status_code
        for n in range(11)
    ]
    assert statuses == [401] * 10 + [429]


def test_basic_still_works_and_successes_do_not_count(login_rate):
    UserFactory(username="camille", password=PASSWORD)
    client = APIClient()
    for _ in range(15):
        assert client.get(ME_URL, HTTP_AUTHORIZATION=basic("camille", PASSWORD)).status_code == 200
