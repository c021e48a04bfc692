"""API tokens: django-rest-knox's, under a name that reads well in the admin.

A token is made at each login (`POST /api/auth/token/`), shown to its holder that once
and stored hashed: the database holds its SHA-512 digest and its first 15 characters
(`token_key`, by which knox finds the candidates before comparing digests), never the
token. Each one expires `TOKEN_TTL_DAYS` after the login that made it (0: when revoked),
and is never renewed by use: a token that leaked is worth nothing after its date. Its
holder lists their tokens and revokes them through the API (`/api/auth/tokens/`); staff
see them in the admin (`admin/tokens.py`); the API checks them
(`api/authentication.py`).

This module is the app's configuration, named in INSTALLED_APPS in place of `"knox"`:
it imports no model at the top (an app's configuration is read before the models).
"""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def token_name(token) -> str:
    return f"{token.token_key}…"


class ApiTokensConfig(AppConfig):
    name = "knox"
    verbose_name = _("API tokens")

    def ready(self):
        from knox.models import AuthToken

        # A token is named by its first characters wherever it is shown (the admin's
        # pages, messages and history), not by its digest as knox names it: 128 hex
        # digits of no use to anyone.
        AuthToken.__str__ = token_name
