"""Safe retries: a write sent with an `Idempotency-Key` header happens once.

A citizen's app posts a report, the answer is lost on a bad connection, the app sends
the same request again with the same key: the second request gets the first one's
response (status and body, with `Idempotent-Replayed: true`) and writes nothing. As in
Stripe's API:

- the key is 1 to 255 printable ASCII characters (a UUID is a good one); it belongs to
  its caller: a user, an Open311 API key, or an anonymous client (its address, and the
  reporter token it sends), so that nobody replays someone else's response;
- the first request's response is stored in the same transaction as its write: both
  happen, or neither (a crash, a 4xx or a 5xx stores nothing, and the key can be used
  again);
- the same key with another request (method, path or data) is a 422;
- a retry sent while the first request still runs waits for it, then gets its
  response; after `IDEMPOTENCY_WAIT_SECONDS` it gets a 409 instead (PostgreSQL: the
  retry waits on the key's row; SQLite runs one write at a time, so a retry always
  finds the first one finished);
- responses are kept `IDEMPOTENCY_KEY_TTL_HOURS` (24), then pruned: a few at each keyed
  write, all of them by `manage.py prune_idempotency_keys`.

A secret in the response (an anonymous reporter's token) is not stored: it is derived
from the key, the caller and a random salt with the server's SECRET_KEY, and written
again into the body of a replay.

Views use it as a decorator of their handler (`@idempotent`): the REST API's create,
comments, transitions and photo uploads, and Open311's create.
"""

import base64
import contextlib
import functools
import hashlib
import json
import re
import secrets

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, OperationalError, connections, router, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.settings import api_settings

from .models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")
# The response headers a replay gives back (the middlewares add theirs again).
KEPT_HEADERS = ("Content-Type", "Location", "Cache-Control")
# A derived secret's place in a stored body: JSON and XML never hold a raw NUL byte.
SECRET_MARK = re.compile(rb"\x00([a-z-]{1,40})\x00")
# Expired keys deleted by each keyed write, at most.
PRUNED_PER_WRITE = 100
# PostgreSQL: waiting for a lock too long (lock_timeout).
LOCK_NOT_AVAILABLE = "55P03"


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = _(
        "This Idempotency-Key was already used with another request (method, path or "
        "data). Use a new key for a new request."
    )
    default_code = "idempotency_key_reused"


class KeyInUse(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _(
        "A request with this Idempotency-Key is still being processed. Retry it later: "
        "it will get that request's response."
    )
    default_code = "idempotency_key_in_use"


def key_of(request) -> str | None:
    """The request's key, None without the header; a 400 naming the header when it is
    not a key."""
    value = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if value is None:
        return None
    if not KEY_PATTERN.fullmatch(value):
        raise exceptions.ValidationError(
            {HEADER: [_("Must be 1 to 255 printable ASCII characters (a UUID, for example).")]},
            code="invalid",
        )
    return value


def scope_of(request) -> str:
    """Who the caller is, as far as keys go: the user, the Open311 API key, or an
    anonymous client (its address and the reporter token it sends)."""
    from . import reporter_tokens

    user = request.user
    if user.is_authenticated:
        return f"user:{user.pk}"
    auth = getattr(request, "auth", None)
    if auth is not None and getattr(auth, "pk", None) is not None:
        return f"{auth._meta.label_lower}:{auth.pk}"
    token = reporter_tokens.presented(request)
    token_digest = reporter_tokens.digest(token) if token else ""
    return f"anonymous:{client_address(request)}:{token_digest}"


def client_address(request) -> str:
    """The client's address as the throttles count it: the connection's, or behind our
    proxy (`NUM_PROXIES`; others' forwarded headers are dropped by
    `signalements_project/proxies.py`) the one it forwards."""
    remote = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    proxies = api_settings.NUM_PROXIES
    if not forwarded or not proxies:
        return remote
    addresses = [address.strip() for address in forwarded.split(",")]
    return addresses[-min(proxies, len(addresses))]


def fingerprint(request) -> str:
    """The SHA-256 of what the request asks: method, path (with its query string, e.g.
    a transition's `?template=`) and data (parsed, so that a multipart body sent again
    with another boundary is the same request; files by their content)."""
    canonical = json.dumps(
        [request.method, _path_and_query(request), _canonical(request.data)],
        sort_keys=True,
        ensure_ascii=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _path_and_query(request) -> str:
    query = request.META.get("QUERY_STRING", "")
    return f"{request.path}?{query}" if query else request.path


def _canonical(data):
    if isinstance(data, MultiValueDict):
        return {str(name): [_canonical(value) for value in data.getlist(name)] for name in data}
    if isinstance(data, dict):
        return {str(name): _canonical(value) for name, value in data.items()}
    if isinstance(data, list | tuple):
        return [_canonical(value) for value in data]
    if isinstance(data, UploadedFile):
        content = hashlib.sha256()
        for chunk in data.chunks():
            content.update(chunk)
        data.seek(0)
        return {"file": data.name, "type": data.content_type, "sha256": content.hexdigest()}
    return data


class Idempotency:
    """One keyed request: claims its key, or finds the response to replay."""

    def __init__(self, *, scope: str, key: str, using: str):
        self.scope = scope
        self.key = key
        self.using = using
        self.digest = hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()
        self.salt = secrets.token_hex(16)
        self.derived: dict[str, str] = {}

    def derive(self, purpose: str) -> str:
        """A secret for this request (`purpose`: e.g. "reporter-token"), the same for its
        replays, 43 URL-safe characters like `secrets.token_urlsafe(32)`."""
        if purpose not in self.derived:
            digest = salted_hmac(
                f"signalements.idempotency.{purpose}",
                f"{self.salt}\n{self.scope}\n{self.key}",
                algorithm="sha256",
            ).digest()
            self.derived[purpose] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return self.derived[purpose]

    def claim(self, fingerprint: str) -> IdempotencyKey | None:
        """Inside the write's transaction: None when the key is this request's (its row
        is written, and committed with the write); the stored response when the request
        was made before. 422 for the key of another request, 409 when the first request
        does not finish within IDEMPOTENCY_WAIT_SECONDS."""
        for _attempt in range(3):
            now = timezone.now()
            try:
                with self._waiting(), transaction.atomic(using=self.using):
                    IdempotencyKey.objects.using(self.using).create(
                        digest=self.digest,
                        fingerprint=fingerprint,
                        salt=self.salt,
                        status_code=0,  # written with the response, before the commit
                        body=b"",
                        expires_at=now + settings.IDEMPOTENCY_KEY_TTL,
                    )
                return None
            except IntegrityError:
                pass  # made before: its response, below
            except OperationalError as error:
                if getattr(error.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                    raise KeyInUse({HEADER: [KeyInUse.default_detail]}) from None
                raise
            found = IdempotencyKey.objects.using(self.using).filter(digest=self.digest).first()
            if found is None:
                continue  # its request failed meanwhile: the key is free again
            if found.expires_at <= now:
                IdempotencyKey.objects.using(self.using).filter(
                    pk=found.pk, expires_at__lte=now
                ).delete()
                continue
            if found.fingerprint != fingerprint:
                raise KeyReused({HEADER: [KeyReused.default_detail]})
            self.salt = found.salt
            return found
        raise KeyInUse({HEADER: [KeyInUse.default_detail]})

    def _waiting(self):
        """PostgreSQL: the key's insert waits for a first request still running (on the
        unique index) at most IDEMPOTENCY_WAIT_SECONDS."""
        connection = connections[self.using]
        if connection.vendor != "postgresql":
            return contextlib.nullcontext()
        return _LockTimeout(connection, settings.IDEMPOTENCY_WAIT_SECONDS)

    def keep(self, response) -> None:
        """Stores the first response, in the write's transaction."""
        body = response.content
        for purpose, secret in self.derived.items():
            body = body.replace(secret.encode(), b"\x00" + purpose.encode() + b"\x00")
        headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
        IdempotencyKey.objects.using(self.using).filter(digest=self.digest).update(
            status_code=response.status_code, headers=headers, body=body
        )
        prune(using=self.using, limit=PRUNED_PER_WRITE)

    def replay(self, stored: IdempotencyKey) -> HttpResponse:
        body = SECRET_MARK.sub(
            lambda match: self.derive(match[1].decode()).encode(), bytes(stored.body)
        )
        response = HttpResponse(body, status=stored.status_code)
        for name, value in stored.headers.items():
            response[name] = value
        response[REPLAYED_HEADER] = "true"
        return response


class _LockTimeout:
    def __init__(self, connection, seconds: float):
        self.connection = connection
        self.milliseconds = max(1, int(seconds * 1000))

    def __enter__(self):
        with self.connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = {self.milliseconds}")
        return self

    def __exit__(self, *exc_info):
        with self.connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
        return False


def prune(*, using: str = "default", limit: int | None = None) -> int:
    """Deletes expired keys (`limit` of them at most); returns how many."""
    expired = IdempotencyKey.objects.using(using).filter(expires_at__lte=timezone.now())
    if limit is not None:
        expired = IdempotencyKey.objects.using(using).filter(
            pk__in=list(expired.values_list("pk", flat=True)[:limit])
        )
    return expired.delete()[0]


def idempotent(handler):
    """Decorates a view's handler of POST: with an `Idempotency-Key`, the write and its
    response are stored together, and a retry gets the response again. `view` is a DRF
    view: its `finalize_response` renders the response as it will be sent."""

    @functools.wraps(handler)
    def keyed(view, request, *args, **kwargs):
        if request.method != "POST":
            return handler(view, request, *args, **kwargs)
        key = key_of(request)
        if key is None:
            return handler(view, request, *args, **kwargs)
        using = router.db_for_write(IdempotencyKey)
        call = Idempotency(scope=scope_of(request), key=key, using=using)
        request_fingerprint = fingerprint(request)
        with transaction.atomic(using=using):
            stored = call.claim(request_fingerprint)
            if stored is not None:
                return call.replay(stored)
            request.idempotency = call
            response = handler(view, request, *args, **kwargs)
            response = view.finalize_response(request, response, *args, **kwargs)
            if hasattr(response, "render"):
                response.render()
            if 200 <= response.status_code < 300:
                call.keep(response)
            else:  # nothing is kept: the key may be used again
                transaction.set_rollback(True, using=using)
            return response

    keyed.idempotent = True  # for the OpenAPI schema
    return keyed


def derived_secret(request, purpose: str) -> str | None:
    """The secret for `purpose` derived from the request's key, None for a request
    without one (the caller then makes a random secret)."""
    call = getattr(request, "idempotency", None)
    return call.derive(purpose) if call is not None else None
