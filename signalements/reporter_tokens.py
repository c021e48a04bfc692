"""Reporter tokens: how an anonymous reporter proves that a new report is theirs.

The 201 response of an anonymous create carries a secret, once. Sent back in the
`X-Reporter-Token` header, it lets its holder add photos to that report and edit it, as
a logged-in reporter may, while the report is `new` and for a limited time
(`REPORTER_TOKEN_TTL_HOURS`). Only its SHA-256 is stored: a database leak gives no usable
token (the secret has 256 random bits, so a fast hash is enough).
"""

import hashlib
import secrets

from django.conf import settings
from django.utils import timezone

from . import idempotency, replicas
from .models import Signalement, Status

HEADER = "X-Reporter-Token"
# A token is 43 URL-safe characters; anything much longer is not one.
MAX_LENGTH = 128


def issue(request=None) -> tuple[str, dict]:
    """A new secret, and the fields that store it on the report. Random, or for a
    request sent with an `Idempotency-Key`, derived from it (a retry of the request gets
    the same secret back; see `idempotency.py`)."""
    token = (request and idempotency.derived_secret(request, "reporter-token")) or (
        secrets.token_urlsafe(32)
    )
    return token, {
        "reporter_token_hash": digest(token),
        "reporter_token_expires_at": timezone.now() + settings.SIGNALEMENT_REPORTER_TOKEN_TTL,
    }


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def presented(request) -> str | None:
    """The token the request carries, if any."""
    value = request.headers.get(HEADER, "").strip()
    return value or None


def signalement_id(request) -> int | None:
    """The id of the report whose valid token the request carries: a `new` report whose
    token has not expired. Looked up once per request."""
    if not hasattr(request, "_reporter_token_signalement_id"):
        token = presented(request)
        found = None
        if token and len(token) <= MAX_LENGTH and token.isascii():
            reports = Signalement.objects.filter(
                reporter_token_hash=digest(token),
                reporter_token_expires_at__gt=timezone.now(),
                status=Status.NEW,
            ).values_list("pk", flat=True)
            found = reports.first()
            # A token that a replica behind the primary does not have yet (replicas.py).
            if found is None and (primary := replicas.on_primary(reports)) is not None:
                found = primary.first()
        request._reporter_token_signalement_id = found
    return request._reporter_token_signalement_id
