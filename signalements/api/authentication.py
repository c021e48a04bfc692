"""How API clients authenticate: API tokens (django-rest-knox), HTTP Basic with failed
attempts limited, and the admin's session.

**Tokens** (`Authorization: Token <token>`, from `POST /api/auth/token/`) are stored
hashed (`signalements/api_tokens.py`): the token's first characters find the candidates,
its SHA-512 digest is compared in constant time. A token past its expiry is a 401 that
says so, and is deleted.

**HTTP Basic**: each attempt costs a password hash (PBKDF2, a quarter of a second of
CPU): unlimited, nine guesses a second keep two workers busy, and a password can be
guessed at leisure. Failed attempts are counted per client address and per username
(`THROTTLE_LOGIN`, as for token requests); past the limit, a 429 answers before any
password is checked, until the oldest failure leaves the window. And, as at every door
that checks a password, an account is locked out from an address after
`LOGIN_FAILURE_LIMIT` failures from it (`signalements/lockout.py`). Tokens and sessions
are the recommended ways in; Basic stays for the scripts that use it.
"""

import re
from hmac import compare_digest

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.authentication import BasicScheme
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox import auth as knox_auth
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication

from signalements import replicas

from .throttling import (
    FailedAuthenticationThrottle,
    check_login_lockout,
    login_failed,
    login_succeeded,
)

# What a token can be made of: printable ASCII without spaces. Anything else (a NUL, a
# byte that is not UTF-8) is refused before it reaches the database, which could not even
# look it up (a 500 on PostgreSQL).
TOKEN = re.compile(r"[!-~]{1,256}")


class TokenAuthentication(knox_auth.TokenAuthentication):
    """knox's, which checks only the token presented: knox also reads all of its user's
    tokens on every request to delete the expired ones (a second query per request);
    those are deleted at the user's next login instead (`views/accounts.py`)."""

    def authenticate_credentials(self, token: bytes):
        try:
            key = token.decode("ascii")
        except UnicodeError:
            key = ""
        if not TOKEN.fullmatch(key):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        digest = hash_token(key)
        candidates = AuthToken.objects.filter(
            token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH]
        ).select_related("user")
        found = list(candidates)
        # A token that a replica behind the primary does not have yet (signalements/replicas.py).
        if not found and (primary := replicas.on_primary(candidates)) is not None:
            found = list(primary)
        for auth_token in found:
            if not compare_digest(digest, auth_token.digest):
                continue
            if auth_token.expiry is not None and auth_token.expiry <= timezone.now():
                auth_token.delete()
                raise exceptions.AuthenticationFailed(
                    _("This token has expired: log in again for a new one.")
                )
            return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(_("Invalid token."))


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of the token, for this subclass, under the name that
    DRF's tokens had (`tokenAuth`): generated clients see no change."""

    target_class = TokenAuthentication
    name = "tokenAuth"


class ThrottledBasicAuthentication(BasicAuthentication):
    def authenticate_credentials(self, userid, password, request=None):
        if request is None:
            return super().authenticate_credentials(userid, password, request)
        check_login_lockout(request, userid)
        throttle = FailedAuthenticationThrottle()
        wait = throttle.wait_before_trying(request, userid)
        if wait is not None:
            raise exceptions.Throttled(wait)
        try:
            credentials = super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            throttle.failed(request, userid)
            login_failed(request, userid)
            raise
        login_succeeded(request, userid)
        return credentials


class ThrottledBasicScheme(BasicScheme):
    """The OpenAPI security scheme of HTTP Basic, for this subclass (drf-spectacular
    registers an extension on being defined)."""

    target_class = ThrottledBasicAuthentication
