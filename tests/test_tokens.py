"""API tokens (django-rest-knox): stored hashed, with an expiry, listed and revoked one by
one by their holder; DRF's old tokens moved over by migration 0021; the admin's screen.
(Logging in and revoking them all: test_auth.py.)"""

import importlib
from datetime import datetime, timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from .factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN_URL = reverse("auth-token")
TOKENS_URL = reverse("auth-tokens-list")
ME_URL = reverse("me")
PASSWORD = "correct horse battery staple"


def token_url(prefix: str) -> str:
    return reverse("auth-tokens-detail", args=[prefix])


def login(username: str = "camille") -> dict:
    response = APIClient().post(
        TOKEN_URL, {"username": username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def stored_rows() -> list[tuple]:
    """Every row of knox's table, every column, as the database has them."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(AuthToken._meta.db_table)}")
        return cursor.fetchall()


# --- Stored hashed ------------------------------------------------------------------


def test_the_database_holds_no_usable_token():
    UserFactory(username="camille")
    token = login()["token"]
    assert with_token(token).get(ME_URL).status_code == 200

    [row] = stored_rows()
    stored = [str(value) for value in row]
    assert not any(token in value for value in stored)
    # What is stored (the digest, the first characters…) opens nothing.
    for value in stored:
        response = with_token(value).get(ME_URL)
        assert response.status_code == 401, value
    # DRF's table of plain tokens is gone with its app.
    assert not apps.is_installed("rest_framework.authtoken")


def test_no_cache_keeps_a_token_or_the_list():
    UserFactory(username="camille")
    response = APIClient().post(
        TOKEN_URL, {"username": "camille", "password": PASSWORD}, format="json"
    )
    listed = with_token(response.json()["token"]).get(TOKENS_URL)

    for answer in (response, listed):
        assert "no-store" in answer["Cache-Control"]
        assert "private" in answer["Cache-Control"]


def test_a_token_is_checked_with_one_query():
    """knox reads all the user's tokens on each request to delete the expired ones; ours
    reads the token's row only (the expired are deleted at the next login)."""
    user = UserFactory(username="camille")
    _, token = AuthToken.objects.create(user=user)
    for _ in range(3):
        AuthToken.objects.create(user=user)

    with CaptureQueriesContext(connection) as queries:
        assert with_token(token).get(ME_URL).status_code == 200

    table = AuthToken._meta.db_table
    assert len([query for query in queries if table in query["sql"]]) == 1


@pytest.mark.parametrize(
    "header",
    ["Token é", "Token a\x00b", "Token " + "a" * 300, "Token ", "Token a b"],
    ids=["not-ascii", "nul", "too-long", "empty", "spaces"],
)
def test_a_malformed_token_is_a_401_not_a_500(header):
    response = APIClient().get(ME_URL, HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == "Token"


# --- Expiry ------------------------------------------------------------------------


def test_an_expired_token_is_a_401_that_says_so_and_is_deleted():
    user = UserFactory(username="camille")
    stored, token = AuthToken.objects.create(user=user)
    AuthToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() - timedelta(seconds=1))

    response = with_token(token).get(ME_URL)

    assert response.status_code == 401
    assert response.json()["errors"] == [
        {
            "code": "authentication_failed",
            "detail": response.json()["errors"][0]["detail"],
            "attr": None,
        }
    ]
    english = with_token(token).get(ME_URL, HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 401  # deleted: now an unknown token
    assert not AuthToken.objects.filter(pk=stored.pk).exists()


def test_the_expired_message_names_the_expiry():
    user = UserFactory(username="camille")
    stored, token = AuthToken.objects.create(user=user)
    AuthToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() - timedelta(days=1))

    response = with_token(token).get(ME_URL, HTTP_ACCEPT_LANGUAGE="en")

    assert response.json()["errors"][0]["detail"] == (
        "This token has expired: log in again for a new one."
    )


def test_a_token_works_until_its_expiry(settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(days=2)}
    UserFactory(username="camille")

    answer = login()

    expiry = datetime.fromisoformat(answer["expiry"])
    assert abs(expiry - (timezone.now() + timedelta(days=2))) < timedelta(minutes=1)
    assert with_token(answer["token"]).get(ME_URL).status_code == 200


def test_without_a_ttl_tokens_work_until_revoked(settings):
    """TOKEN_TTL_DAYS=0."""
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": None}
    UserFactory(username="camille")

    answer = login()

    assert answer["expiry"] is None
    assert AuthToken.objects.get().expiry is None
    assert with_token(answer["token"]).get(ME_URL).status_code == 200


def test_a_login_deletes_the_users_expired_tokens_only():
    camille, neighbour = UserFactory(username="camille"), UserFactory(username="voisin")
    past = timezone.now() - timedelta(days=1)
    expired, _ = AuthToken.objects.create(user=camille)
    neighbours_expired, _ = AuthToken.objects.create(user=neighbour)
    AuthToken.objects.update(expiry=past)
    valid, _ = AuthToken.objects.create(user=camille)

    login()

    remaining = set(AuthToken.objects.values_list("digest", flat=True))
    assert expired.digest not in remaining
    assert {valid.digest, neighbours_expired.digest} <= remaining
    assert AuthToken.objects.filter(user=camille).count() == 2  # valid, and the new one


# --- Listed and revoked by their holder ----------------------------------------------


def test_a_user_lists_their_tokens_that_work_without_any_secret():
    camille = UserFactory(username="camille")
    first = login()
    second = login()
    old, _ = AuthToken.objects.create(user=camille)
    AuthToken.objects.filter(pk=old.pk).update(expiry=timezone.now() - timedelta(days=1))
    AuthToken.objects.create(user=UserFactory(username="voisin"))

    response = with_token(second["token"]).get(TOKENS_URL)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [(token["prefix"], token["current"]) for token in body["results"]] == [
        (second["prefix"], True),
        (first["prefix"], False),
    ]
    assert set(body["results"][0]) == {"prefix", "created", "expiry", "current"}
    assert body["results"][0]["expiry"] == second["expiry"]
    text = response.content.decode()
    for token in AuthToken.objects.all():
        assert token.digest not in text
    assert first["token"] not in text and second["token"] not in text


def test_with_a_session_or_basic_no_token_is_current(user_client, reporter):
    AuthToken.objects.create(user=reporter)

    [token] = user_client.get(TOKENS_URL).json()["results"]

    assert token["current"] is False


def test_a_user_revokes_one_of_their_tokens():
    UserFactory(username="camille")
    phone, laptop = login(), login()
    client = with_token(laptop["token"])

    response = client.delete(token_url(phone["prefix"]))

    assert response.status_code == 204
    assert with_token(phone["token"]).get(ME_URL).status_code == 401
    assert client.get(ME_URL).status_code == 200
    assert [token["prefix"] for token in client.get(TOKENS_URL).json()["results"]] == [
        laptop["prefix"]
    ]


def test_a_user_revokes_the_token_they_use():
    UserFactory(username="camille")
    answer = login()
    client = with_token(answer["token"])

    assert client.delete(token_url(answer["prefix"])).status_code == 204

    assert client.get(ME_URL).status_code == 401


@pytest.mark.parametrize("prefix", ["neighbours", "unknown", "expired"])
def test_another_users_token_an_unknown_one_or_an_expired_one_is_a_404(prefix):
    camille = UserFactory(username="camille")
    UserFactory(username="voisin")
    mine = login()
    neighbours = login("voisin")
    expired, _ = AuthToken.objects.create(user=camille)
    AuthToken.objects.filter(pk=expired.pk).update(expiry=timezone.now() - timedelta(days=1))
    prefixes = {
        "neighbours": neighbours["prefix"],
        "unknown": "0123456789abcde",
        "expired": expired.token_key,
    }
    before = sorted(AuthToken.objects.values_list("digest", flat=True))

    response = with_token(mine["token"]).delete(token_url(prefixes[prefix]))

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
    assert sorted(AuthToken.objects.values_list("digest", flat=True)) == before
    assert with_token(neighbours["token"]).get(ME_URL).status_code == 200


def test_a_prefix_that_cannot_be_one_is_a_404():
    UserFactory(username="camille")
    client = with_token(login()["token"])

    assert client.delete(f"/api/auth/tokens/{'a' * 26}/").status_code == 404
    assert client.delete("/api/auth/tokens/%C3%A9/").status_code == 404
    assert client.delete("/api/auth/tokens/a%00b/").status_code == 404


@pytest.mark.parametrize("method, url", [("get", TOKENS_URL), ("delete", token_url("abc"))])
def test_the_tokens_need_a_login(method, url):
    response = getattr(APIClient(), method)(url)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


# --- DRF's tokens moved over (migration 0021) -----------------------------------------

MIGRATION = importlib.import_module("signalements.migrations.0021_api_tokens_hashed")


def test_a_drf_token_moves_into_knox_hashed_and_keeps_working():
    camille = UserFactory(username="camille")
    key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"  # as DRF made them: 40 hex digits
    with connection.cursor() as cursor:
        # The table that DRF's authtoken app left (its app is no longer installed).
        cursor.execute(
            "CREATE TABLE authtoken_token "
            "(key varchar(40) PRIMARY KEY, created timestamp NOT NULL, user_id bigint NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            [key, timezone.now(), camille.pk],
        )

    moved = MIGRATION.move_drf_tokens(connection, AuthToken)

    assert moved == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        assert cursor.fetchone() == (0,)
    token = AuthToken.objects.get()
    assert (token.user, token.digest, token.token_key) == (camille, hash_token(key), key[:15])
    assert abs(token.expiry - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    assert not any(key in str(value) for row in stored_rows() for value in row)
    me = with_token(key).get(ME_URL)
    assert me.status_code == 200 and me.json()["username"] == "camille"
    # Run again (nothing left to move), and on a database that never had DRF's table.
    assert MIGRATION.move_drf_tokens(connection, AuthToken) == 0
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE authtoken_token")
    assert MIGRATION.move_drf_tokens(connection, AuthToken) == 0
    assert AuthToken.objects.count() == 1


# --- The admin -----------------------------------------------------------------------


def test_the_admin_lists_tokens_by_prefix_without_digest_or_token(client, superuser):
    UserFactory(username="camille")
    answer = login()
    stored = AuthToken.objects.get()
    client.force_login(superuser)

    page = client.get(reverse("admin:knox_authtoken_changelist"), HTTP_ACCEPT_LANGUAGE="en")

    assert page.status_code == 200
    text = page.content.decode()
    assert f"{answer['prefix']}…" in text and "camille" in text
    # The digest (of no use as a token) only as the row's key, in its link and checkbox.
    assert text.count(stored.digest) == 2
    assert f'href="{reverse("admin:knox_authtoken_change", args=[stored.digest])}"' in text
    assert answer["token"] not in text
    assert "Revoke selected tokens" in text and "Delete selected" not in text
    change = client.get(reverse("admin:knox_authtoken_change", args=[stored.digest]))
    assert change.status_code == 200
    assert f"{answer['prefix']}…" in change.content.decode()
    assert answer["token"] not in change.content.decode()


def test_the_admin_revokes_selected_tokens(client, superuser):
    UserFactory(username="camille")
    revoked, kept = login(), login()
    client.force_login(superuser)
    digest = AuthToken.objects.get(token_key=revoked["prefix"]).digest

    response = client.post(
        reverse("admin:knox_authtoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [digest]},
    )

    assert response.status_code == 302
    assert with_token(revoked["token"]).get(ME_URL).status_code == 401
    assert with_token(kept["token"]).get(ME_URL).status_code == 200


def test_a_token_made_in_the_admin_is_shown_once_and_works(client, superuser):
    camille = UserFactory(username="camille")
    client.force_login(superuser)

    response = client.post(
        reverse("admin:knox_authtoken_add"),
        {"user": camille.pk, "expiry_0": "", "expiry_1": ""},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 200
    messages = [str(message) for message in response.context["messages"]]
    [shown] = [message for message in messages if "shown this once" in message]
    token = shown.rsplit(": ", 1)[1]
    stored = AuthToken.objects.get()
    assert f">{stored.token_key}…</a>” was added" in " ".join(messages)  # by its prefix
    assert with_token(token).get(ME_URL).json()["username"] == "camille"
    assert AuthToken.objects.get().digest == hash_token(token)
    again = client.get(reverse("admin:knox_authtoken_changelist")).content.decode()
    assert token not in again
