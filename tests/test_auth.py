"""Token authentication, /api/me/, and the login throttle. (How tokens are stored,
expire, are listed and revoked one by one: test_tokens.py; the lockout after failed
logins: test_lockout.py.)"""

from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from .factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN_URL = reverse("auth-token")
ME_URL = reverse("me")
PASSWORD = "correct horse battery staple"


def test_a_user_gets_a_token_and_uses_it():
    UserFactory(username="camille")
    client = APIClient()

    response = client.post(TOKEN_URL, {"username": "camille", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    token = response.json()["token"]
    stored = AuthToken.objects.get(user__username="camille")
    assert stored.digest == hash_token(token)
    assert response.json()["prefix"] == stored.token_key == token[:15]
    expiry = datetime.fromisoformat(response.json()["expiry"])
    assert abs(expiry - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    me = client.get(ME_URL, HTTP_AUTHORIZATION=f"Token {token}")
    assert me.status_code == 200
    assert me.json() == {
        "id": me.json()["id"],
        "username": "camille",
        "email": "camille@example.org",
        "role": "reporter",
    }


def test_each_login_gives_a_new_token_and_the_earlier_ones_keep_working():
    """Before tokens were hashed, a second login returned the same token; the server can
    no longer show a token twice, so each login makes one (a client that logged in twice
    holds two working tokens)."""
    UserFactory(username="camille")
    client = APIClient()
    payload = {"username": "camille", "password": PASSWORD}

    first = client.post(TOKEN_URL, payload, format="json").json()["token"]
    second = client.post(TOKEN_URL, payload, format="json").json()["token"]

    assert first != second
    for token in (first, second):
        me = APIClient().get(ME_URL, HTTP_AUTHORIZATION=f"Token {token}")
        assert me.json()["username"] == "camille"


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "camille", "password": "wrong"},
        {"username": "nobody", "password": PASSWORD},
    ],
)
def test_wrong_credentials_are_a_400_with_a_clear_message(payload):
    UserFactory(username="camille")

    response = APIClient().post(TOKEN_URL, payload, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "code": "invalid_credentials",
            "detail": "Impossible de se connecter avec les identifiants fournis.",
            "attr": "non_field_errors",
        }
    ]
    assert not AuthToken.objects.exists()


def test_an_inactive_user_gets_no_token():
    UserFactory(username="camille", is_active=False)

    response = APIClient().post(
        TOKEN_URL, {"username": "camille", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 400


def test_missing_fields_are_named():
    response = APIClient().post(TOKEN_URL, {}, format="json")

    assert response.status_code == 400
    assert {e["attr"] for e in response.json()["errors"]} == {"username", "password"}


def test_deleting_the_token_revokes_all_of_the_users_tokens():
    """As when a user had a single token that all their clients shared: a logout
    everywhere. (One token alone: DELETE /api/auth/tokens/{prefix}/.)"""
    user = UserFactory(username="camille")
    _, token = AuthToken.objects.create(user=user)
    _, other_device = AuthToken.objects.create(user=user)
    _, neighbours = AuthToken.objects.create(user=UserFactory(username="voisin"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert client.delete(TOKEN_URL).status_code == 204

    assert not AuthToken.objects.filter(user=user).exists()
    for revoked in (token, other_device):
        response = APIClient().get(ME_URL, HTTP_AUTHORIZATION=f"Token {revoked}")
        assert response.status_code == 401
        assert response.json()["errors"][0]["code"] == "authentication_failed"
    assert APIClient().get(ME_URL, HTTP_AUTHORIZATION=f"Token {neighbours}").status_code == 200


def test_an_unauthenticated_request_to_a_protected_endpoint_is_a_401_with_a_token_challenge():
    response = APIClient().get(ME_URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(
    "client_fixture, role",
    [("user_client", "reporter"), ("agent_client", "agent"), ("superuser_client", "admin")],
)
def test_me_says_the_role(request, client_fixture, role):
    client = request.getfixturevalue(client_fixture)

    assert client.get(ME_URL).json()["role"] == role


def test_login_attempts_are_throttled_per_ip(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "login": "3/minute",
        },
    }
    UserFactory(username="camille")
    client = APIClient()
    wrong = {"username": "camille", "password": "guess"}

    statuses = [client.post(TOKEN_URL, wrong, format="json").status_code for _ in range(4)]

    assert statuses == [400, 400, 400, 429]
    blocked = client.post(TOKEN_URL, {"username": "camille", "password": PASSWORD}, format="json")
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0


def test_writes_by_a_logged_in_user_are_throttled(settings, user_client):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "user_write": "2/minute",
        },
    }
    payload = {"description": "Panne", "date": "2025-04-29T16:30:00"}

    statuses = [
        user_client.post(reverse("signalement-list"), payload, format="json").status_code
        for _ in range(3)
    ]

    assert statuses == [201, 201, 429]
    assert user_client.get(reverse("signalement-list")).status_code == 200
