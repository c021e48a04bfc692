"""The lockout after failed logins (signalements/lockout.py), at the three doors that check
a password: the API's token login, HTTP Basic, and the admin's login page. After
LOGIN_FAILURE_LIMIT failures for one account from one address, that account is refused
from that address, even with the right password, for LOGIN_LOCKOUT_MINUTES; other
accounts and other addresses are not affected."""

import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from signalements import lockout
from signalements.models import LoginFailures

from .factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN_URL = reverse("auth-token")
ME_URL = reverse("me")
ADMIN_LOGIN_URL = reverse("admin:login")
PASSWORD = "correct horse battery staple"
HERE, ELSEWHERE = "192.0.2.10", "198.51.100.20"
LIMIT, MINUTES = 3, 15


@pytest.fixture(autouse=True)
def lockout_settings(settings):
    settings.LOGIN_FAILURE_LIMIT = LIMIT
    settings.LOGIN_LOCKOUT_MINUTES = MINUTES


@pytest.fixture
def accounts():
    """Two staff accounts (the admin's door lets staff only in)."""
    return [
        UserFactory(username="camille", is_staff=True),
        UserFactory(username="dominique", is_staff=True),
    ]


@pytest.fixture
def later(monkeypatch):
    """Moves the clock (that of the cache, too) forward by some seconds."""

    def move(seconds: float):
        now = time.time()
        monkeypatch.setattr(time, "time", lambda: now + seconds)

    return move


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def by_token(username: str, password: str, address: str = HERE):
    return APIClient(REMOTE_ADDR=address).post(
        TOKEN_URL, {"username": username, "password": password}, format="json"
    )


def by_basic(username: str, password: str, address: str = HERE):
    return APIClient(REMOTE_ADDR=address).get(ME_URL, HTTP_AUTHORIZATION=basic(username, password))


def by_admin(username: str, password: str, address: str = HERE):
    return Client(REMOTE_ADDR=address).post(
        ADMIN_LOGIN_URL, {"username": username, "password": password}
    )


@dataclass
class Door:
    attempt: Callable
    failed: int  # the status of a wrong password
    succeeded: int  # the status of a login


DOORS = {
    "token": Door(by_token, failed=400, succeeded=200),
    "basic": Door(by_basic, failed=401, succeeded=200),
    "admin": Door(by_admin, failed=200, succeeded=302),  # the form again; the redirect
}


@pytest.mark.parametrize("door", DOORS.values(), ids=DOORS.keys())
def test_after_the_limit_even_the_right_password_is_refused_from_that_address(door, accounts):
    statuses = [door.attempt("camille", f"guess {n}").status_code for n in range(LIMIT + 1)]
    locked = door.attempt("camille", PASSWORD)

    assert statuses == [door.failed] * LIMIT + [429]
    assert locked.status_code == 429
    assert 14 * 60 < int(locked["Retry-After"]) <= 15 * 60
    # Another account from this address, this account from another address: unaffected.
    assert door.attempt("dominique", PASSWORD).status_code == door.succeeded
    assert door.attempt("camille", PASSWORD, address=ELSEWHERE).status_code == door.succeeded


@pytest.mark.parametrize("door", DOORS.values(), ids=DOORS.keys())
def test_the_account_is_let_in_again_after_the_lockout(door, accounts, later):
    for n in range(LIMIT):
        door.attempt("camille", f"guess {n}")
    later(MINUTES * 60 - 5)
    assert door.attempt("camille", PASSWORD).status_code == 429

    later(MINUTES * 60 + 1)

    assert door.attempt("camille", PASSWORD).status_code == door.succeeded


@pytest.mark.parametrize("door", DOORS.values(), ids=DOORS.keys())
def test_a_login_before_the_limit_forgets_the_failures(door, accounts):
    statuses = [door.attempt("camille", "guess").status_code for _ in range(LIMIT - 1)]
    statuses.append(door.attempt("camille", PASSWORD).status_code)
    statuses += [door.attempt("camille", "guess").status_code for _ in range(LIMIT)]
    statuses.append(door.attempt("camille", PASSWORD).status_code)

    assert statuses == [door.failed] * (LIMIT - 1) + [door.succeeded] + [door.failed] * LIMIT + [
        429
    ]


@pytest.mark.parametrize("door", DOORS.values(), ids=DOORS.keys())
def test_the_count_holds_across_worker_processes(door, accounts):
    """Each of make serve's workers has its own cache by default (local memory): the count
    lives in the database, so guesses spread over workers still add up. Each attempt here
    comes to a "new worker", whose cache holds nothing."""
    statuses = []
    for n in range(LIMIT + 1):
        cache.clear()
        statuses.append(door.attempt("camille", f"guess {n}").status_code)
    cache.clear()

    assert statuses == [door.failed] * LIMIT + [429]
    assert door.attempt("camille", PASSWORD).status_code == 429


def test_old_counts_are_pruned_by_the_worker(accounts, later):
    # The worker runs the periodic jobs that the app's start registers (a new process:
    # this test module's own import of lockout does not count).
    jobs = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from signalements.tasks "
         "import PERIODIC; print(*[job.name for job in PERIODIC])"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "signalements_project.settings"},
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "signalements.lockout.prune_login_failures" in jobs
    by_token("camille", "guess")
    for n in range(LIMIT):
        by_token("dominique", f"guess {n}")  # locked out
    later(MINUTES * 60 - 5)
    assert lockout.prune_login_failures() == 0  # a window and a lockout still running
    later(MINUTES * 60 + 1)

    assert lockout.prune_login_failures() == 2
    assert not LoginFailures.objects.exists()


def test_failures_count_across_the_doors(accounts):
    """One rule for the three doors: guesses spread over them add up."""
    assert by_token("camille", "guess 1").status_code == 400
    assert by_basic("camille", "guess 2").status_code == 401
    assert by_admin("camille", "guess 3").status_code == 200

    assert by_token("camille", PASSWORD).status_code == 429
    assert by_basic("camille", PASSWORD).status_code == 429
    assert by_admin("camille", PASSWORD).status_code == 429


def test_failures_are_forgotten_after_the_lockout_window(accounts, later):
    for n in range(LIMIT - 1):
        by_token("camille", f"guess {n}")

    later(MINUTES * 60 + 1)

    assert [by_token("camille", "guess").status_code for _ in range(LIMIT)] == [400] * LIMIT


def test_the_api_says_why_and_for_how_long_in_its_error_shape(accounts):
    for n in range(LIMIT):
        by_token("camille", f"guess {n}")

    response = APIClient(REMOTE_ADDR=HERE).post(
        TOKEN_URL,
        {"username": "camille", "password": PASSWORD},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 429
    assert response.json() == {
        "type": "client_error",
        "errors": [
            {
                "code": "throttled",
                "detail": "Too many failed login attempts for this account from your "
                "address: try again in 15 minutes.",
                "attr": None,
            }
        ],
    }
    assert not AuthToken.objects.exists()


def test_the_admin_page_says_why_and_for_how_long_and_does_not_log_in(accounts):
    for n in range(LIMIT):
        by_admin("camille", f"guess {n}")
    client = Client(REMOTE_ADDR=HERE)

    response = client.post(
        ADMIN_LOGIN_URL,
        {"username": "camille", "password": PASSWORD},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert (
        "Too many failed login attempts for this account from your address: try again in 15 "
        "minutes." in response.content.decode()
    )
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("admin:index")).status_code == 302  # to the login page


def test_a_right_password_of_a_non_staff_account_does_not_count_at_the_admin(accounts):
    UserFactory(username="citizen")

    statuses = [by_admin("citizen", PASSWORD).status_code for _ in range(LIMIT + 1)]

    assert statuses == [200] * (LIMIT + 1)  # refused as not staff, never locked out
    assert by_token("citizen", PASSWORD).status_code == 200


def test_a_limit_of_zero_turns_the_lockout_off(accounts, settings):
    settings.LOGIN_FAILURE_LIMIT = 0

    statuses = [by_token("camille", "guess").status_code for _ in range(LIMIT * 3)]

    assert statuses == [400] * (LIMIT * 3)
    assert by_token("camille", PASSWORD).status_code == 200
