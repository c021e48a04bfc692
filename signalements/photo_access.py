"""Who may fetch a report's photo, and the URLs that let them.

Photos are served by Django (`serve`), never by a route that checks nothing. A photo's
URL is `MEDIA_URL` and its stored name (`/media/photos/2026/11/<random>.jpg`; its
thumbnail's likewise), answered after a check:

- a **public** report's photo is served to anyone, on a URL that never changes: the
  anonymous response cache and the reports' ETags stay stable, saved URLs keep working,
  and browsers and shared caches may keep it `PHOTO_PUBLIC_CACHE_SECONDS`;
- a **hidden** report's photo is served with a valid signature, `?expires=…&signature=…`
  (`django.core.signing`: HMAC with `SECRET_KEY`, or one of `SECRET_KEY_FALLBACKS`, and a
  salt of its own), found only in the answers given to those who may see the report (its
  reporter, agents in their scope, the webhooks that admins registered); or to a
  logged-in user who may see the report (the admin's thumbnails, with its session);
- anything else is a 404, as the API answers a report one may not see. The check reads
  the report's visibility at every request: a report hidden after its photo's URL was
  published stops serving it at once (caches keep it `PHOTO_PUBLIC_CACHE_SECONDS` at most).

A signed URL expires at the end of the next window of `PHOTO_URL_TTL_SECONDS` (between
one and two of them after it was handed out): the same URL for everyone within a window,
so that a report read twice gives the same bytes and its ETag changes only with the window
(`signed_until`). Webhook bodies, kept and retried for hours, get
`WEBHOOK_PHOTO_URL_TTL_SECONDS`.

The file is streamed from local storage (`FileResponse`; a HEAD reads only its size), or
sent by nginx after the check (`PHOTO_ACCEL_REDIRECT`: an `X-Accel-Redirect` to an
internal location). Another storage (S3…) is answered with a redirect to the storage's
own URL, which must then be a presigned, expiring one (django-storages' `querystring_auth`
on a private bucket, `querystring_expire` seconds). Every answer says `nosniff`, its type
(the stored one: photos are re-encoded JPEG, PNG or WebP; thumbnails JPEG) and
`Content-Disposition: inline` with a name made of the report's reference, never the
uploaded file's.
"""

import hashlib
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import connections, router
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.utils.http import http_date
from django.views.decorators.http import require_safe

from . import reporter_tokens
from .models import Attachment, Signalement, reference_of
from .photos import FORMATS, THUMBNAIL_FORMAT
from .roles import agent_scope, is_agent

SALT = "signalements.photos"
# What a stored name may be (those of `attachments.attachment_path`, and any name a
# storage writes): anything else is no photo of ours.
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}")
EXPIRES = re.compile(r"[0-9]{1,12}")
SIGNED_EXPIRY = re.compile(r"[?&]expires=([0-9]+)")
EXTENSIONS = {content_type: extension for content_type, extension in FORMATS.values()}
THUMBNAIL_CONTENT_TYPE = FORMATS[THUMBNAIL_FORMAT][0]


def url_prefix() -> str:
    """The path under which photos are served: MEDIA_URL's, or /media/ when MEDIA_URL
    names another host (this server serves them all the same: it checks who asks)."""
    media_url = settings.MEDIA_URL
    if re.match(r"^(https?:)?//", media_url) or not media_url.strip("/"):
        return "/media/"
    return "/" + media_url.strip("/") + "/"


def expiry(ttl: int, now: float | None = None) -> int:
    """When a URL signed `now` expires (a Unix time): the end of the window of `ttl`
    seconds after the current one."""
    now = time.time() if now is None else now
    return (int(now) // ttl + 2) * ttl


def _signed(name: str, expires: int | str) -> str:
    return f"{name}:{expires}"


class Links:
    """The URLs of photos in one answer: plain for a public report's, signed with one
    expiry for a hidden report's. `absolute` makes a path absolute (the request's
    `build_absolute_uri`, or the public address); `ttl`: `PHOTO_URL_TTL_SECONDS` unless
    given; `now`: the time they are handed out (the current time unless given)."""

    def __init__(
        self,
        absolute: Callable[[str], str] | None = None,
        *,
        ttl: int | None = None,
        now: float | None = None,
    ):
        self.prefix = url_prefix()
        self.absolute = absolute
        self.expires = expiry(ttl or settings.PHOTO_URL_TTL_SECONDS, now)
        self.signer = signing.Signer(salt=SALT)

    def url(self, name: str, *, public: bool) -> str:
        path = self.prefix + quote(name)
        if not public:
            signature = self.signer.signature(_signed(name, self.expires))
            path = f"{path}?expires={self.expires}&signature={signature}"
        return self.absolute(path) if self.absolute is not None else path


def signed_until(report: dict) -> str | None:
    """The expiry of the signed photo URLs in a report's representation (the API's), or
    None when it has none (a public report, or no photo): what its ETag must change with."""
    if report.get("is_public", True):
        return None
    for photo in report.get("attachments") or ():
        found = SIGNED_EXPIRY.search(photo.get("url", ""))
        if found:
            return found.group(1)
    return None


def signature_valid(name: str, expires: str, signature: str, *, now: float | None = None) -> bool:
    """Whether `signature` is ours for `name` until `expires`, and that is not past."""
    if not EXPIRES.fullmatch(expires) or not signature or len(signature) > 100:
        return False
    if int(expires) <= (time.time() if now is None else now):
        return False
    try:
        value = signing.Signer(salt=SALT).unsign(f"{_signed(name, expires)}:{signature}")
    except signing.BadSignature:
        return False
    return value == _signed(name, expires)


def may_see(request, *, report_id: int, reporter_id: int | None) -> bool:
    """Whether the caller (logged in, or holding the report's reporter token) may see the
    report, as the API decides: agents in their scope, its reporter."""
    if reporter_tokens.signalement_id(request) == report_id:
        return True
    user = request.user
    if not user.is_authenticated:
        return False
    if is_agent(user):
        scope = agent_scope(user)
        return scope is None or Signalement.objects.filter(scope, pk=report_id).exists()
    return reporter_id is not None and reporter_id == user.pk


# The SQL that finds a photo by its name, written once per database and column(s): the
# ORM's compilation was a third of a photo's time (0.25 of 0.77 ms).
_lookups: dict[tuple[str, tuple[str, ...]], str] = {}


def _lookup(connection, columns: tuple[str, ...]) -> str:
    key = (connection.alias, columns)
    found = _lookups.get(key)
    if found is None:
        quote = connection.ops.quote_name
        photo = lambda name: "a." + quote(Attachment._meta.get_field(name).column)  # noqa: E731
        report = lambda name: "s." + quote(Signalement._meta.get_field(name).column)  # noqa: E731
        sqlite = connection.vendor == "sqlite"
        when = (lambda column: f"CAST({column} AS TEXT)") if sqlite else (lambda column: column)
        selected = [
            photo("id"),
            photo("file"),
            photo("content_type"),
            when(photo("created_at")),
            photo("signalement"),
            report("is_public"),
            report("reporter"),
            when(report("created_at")),
        ]
        found = _lookups[key] = (
            f"SELECT {', '.join(selected)} FROM {quote(Attachment._meta.db_table)} a "
            f"JOIN {quote(Signalement._meta.db_table)} s ON {report('id')} = {photo('signalement')} "
            f"WHERE {' OR '.join(f'{photo(column)} = %s' for column in columns)}"
        )
    return found


def _datetime(value) -> datetime:
    if isinstance(value, str):  # SQLite's text, in UTC
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


def _find(name: str) -> tuple | None:
    """The photo stored as `name` (as a photo or as a thumbnail), with its report's
    visibility: (id, file name, content type, created at, report id, public, reporter id,
    report created at), or None."""
    if name.startswith("photos/"):
        columns = ("file",)
    elif name.startswith("thumbnails/"):
        columns = ("thumbnail",)
    else:
        columns = ("file", "thumbnail")
    connection = connections[router.db_for_read(Attachment)]
    with connection.cursor() as cursor:
        cursor.execute(_lookup(connection, columns), [name] * len(columns))
        row = cursor.fetchone()
    if row is None:
        return None
    pk, file_name, content_type, created_at, report_id, public, reporter_id, report_created = row
    return (
        pk,
        file_name,
        content_type,
        _datetime(created_at),
        report_id,
        bool(public),
        reporter_id,
        _datetime(report_created),
    )


@require_safe
def serve(request, path: str):
    """A photo or a thumbnail (GET, HEAD), if the caller may have it; a 404 otherwise."""
    if not NAME.fullmatch(path) or ".." in path:
        raise Http404
    found = _find(path)
    if found is None:
        raise Http404
    pk, file_name, content_type, created_at, report_id, public, reporter_id, report_created = found
    expires = request.GET.get("expires", "")
    if public:
        cache_control = f"public, max-age={settings.PHOTO_PUBLIC_CACHE_SECONDS}"
    elif signature_valid(path, expires, request.GET.get("signature", "")):
        cache_control = f"private, max-age={max(0, int(expires) - int(time.time()))}"
    elif may_see(request, report_id=report_id, reporter_id=reporter_id):
        cache_control = "private, no-cache"
    else:
        raise Http404
    thumbnail = path != file_name
    if thumbnail:
        content_type = THUMBNAIL_CONTENT_TYPE
    response = _file_response(request, path, content_type)
    response["X-Content-Type-Options"] = "nosniff"
    if response.status_code != 200:  # to the storage's URL, which expires: asked each time
        response["Cache-Control"] = "no-cache"
        return response
    reference = reference_of(report_id, report_created)
    kind = "thumbnail" if thumbnail else "photo"
    extension = EXTENSIONS.get(content_type, "bin")
    response["Content-Disposition"] = f'inline; filename="{reference}-{kind}-{pk}.{extension}"'
    response["Cache-Control"] = cache_control
    # A stored file never changes (a new photo is a new name): 304s for revalidations.
    response["Last-Modified"] = http_date(created_at.timestamp())
    response["ETag"] = '"' + hashlib.sha256(path.encode()).hexdigest()[:20] + '"'
    return response


def _file_response(request, name: str, content_type: str):
    storage = default_storage
    if not isinstance(storage, FileSystemStorage):
        # Another storage (S3…) sends the file: to its own URL, presigned and expiring.
        return HttpResponseRedirect(storage.url(name))
    if settings.PHOTO_ACCEL_REDIRECT:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = "/" + settings.PHOTO_ACCEL_REDIRECT.strip("/") + "/" + name
        return response
    try:
        if request.method == "HEAD":
            response = HttpResponse(content_type=content_type)
            response["Content-Length"] = str(storage.size(name))
            return response
        return FileResponse(storage.open(name, "rb"), content_type=content_type)
    except FileNotFoundError:
        raise Http404 from None
