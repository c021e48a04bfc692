"""An exact-fresh cache of the report list and detail, in front of Django.

`ResponseCache` wraps the project's WSGI application (`signalements_project/wsgi.py`).
For an anonymous `GET /api/signalements/` or `GET /api/signalements/{id}/` (no
`Authorization`, no `X-Reporter-Token`, no session cookie: everyone who sends none of
these gets the same answer), it keeps the bytes of the whole response, headers included,
under a key made of:

- the **data version** (`signalements.data_version`), read *before* the request reaches
  Django and so before its data are read: a stored response holds every write committed
  before its version was read, and a write makes the version grow, so a response is
  served only to requests that read the same version, to which it is never stale;
- everything else the response depends on, taken as sent: the path, the raw query string
  (not reordered: `?ordering=a&ordering=b` is not `?ordering=b&ordering=a`), `Accept`
  (JSON or GeoJSON), `Accept-Language` and the cookies (the language), `Host`, the scheme
  and the `X-Forwarded-*` headers (absolute URLs), `Accept-Encoding`, `Origin` (CORS).

A hit is answered without Django: one query (the version) and a dictionary lookup; it
says `X-Cache: hit`. With
`If-None-Match` matching the stored `ETag` (set by Django's ConditionalGetMiddleware: a
strong validator, the MD5 of the exact bytes) the answer is a 304 without a body. Only
complete 200 responses in JSON or GeoJSON without cookies are stored. Every other request
goes to Django untouched, as does every request when the version cannot be read (Django
then answers, or reports the database's trouble itself). Lookups are counted, hits and
misses (`signalements/metrics.py`).

With a read replica (DATABASE_REPLICA_URL, `signalements/replicas.py`), the request's
database is decided first, and the version is read on that database, the one its data
will be read on: a version read on the primary and data read on a replica behind it would
store an old body under a new version. Replayed in commit order, a replica's later reads
are never older than its version, nor are the primary's, where a request's reads may move
after it (a write, the replica failing): a stored body is never older than its version.
A version that the replica cannot give marks it down and is read on the primary. A client
whose reads go to the primary for a while after its write (its cookie) is answered by
Django: its requests would otherwise switch the store between the two databases' versions.

The store is per process and bounded (`RESPONSE_CACHE_MAX_BYTES`, least recently used
first out); entries of an older version can never be read again, so they are dropped as
soon as a newer version is seen; a response is kept from the second time its request is
made (see `Store`), so that one-off requests do not fill it. Anonymous reads are not throttled (the API throttles
writes), so serving them here bypasses no limit.
"""

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.utils.http import parse_etags

from signalements import data_version, metrics, replicas

CACHED_PATHS = re.compile(r"^/api/signalements/(?:[0-9]{1,18}/)?$")
CACHED_CONTENT_TYPES = ("application/json", "application/geo+json")
# What the response depends on besides the path, the query and the data version.
KEY_HEADERS = (
    "HTTP_HOST",
    "SERVER_NAME",
    "SERVER_PORT",
    "SCRIPT_NAME",
    "wsgi.url_scheme",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_ACCEPT",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_COOKIE",
    # CORS (CORS_ALLOWED_ORIGINS): Access-Control-Allow-Origin names the caller's origin.
    "HTTP_ORIGIN",
)
# Credentials: a request carrying any is answered by Django, for its caller.
CREDENTIAL_HEADERS = ("HTTP_AUTHORIZATION", "HTTP_X_REPORTER_TOKEN")
# Counts of lists made under the version read for the request, handed to Django in its
# WSGI environment (`request.META`): the view keeps a list's count there, so that paging
# through a list does not count it again. Emptied with the store when the version grows.
COUNTS_KEY = "signalements.counts"
# Said by every answer from the store (as Varnish and CDNs do).
HIT = ("X-Cache", "hit")
# The route of a request answered from the store, for its log line and metrics (the
# project's observer of requests reads it there: signalements_project/observability.py),
# as Django names the list's and the detail's URL patterns.
ROUTE_KEY = "signalements.route"
ROUTES = {False: "api/signalements/", True: "api/signalements/<pk>/"}
# Headers a 304 keeps from the 200 it stands for (RFC 9110 §15.4.5).
NOT_MODIFIED_HEADERS = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "last-modified", "vary"}
)


@dataclass(frozen=True)
class Entry:
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    etag: str | None

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(name) + len(value) for name, value in self.headers)


class Store:
    """Responses by key, least recently used dropped first beyond `max_bytes`; all of
    them dropped when a newer data version is seen (they cannot be read any more).

    A response is admitted only when its request (the key less the version) was seen
    before (a "doorkeeper"): requests made once (a crawler's pages, a counter in the
    query string) pass through without filling the memory; those asked again, as a map
    or an app polling a list does, are kept from their second time on, and from their
    first time after a write."""

    SEEN_MAX = 50_000  # requests remembered by the doorkeeper (their hashes)

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.seen: OrderedDict[int, None] = OrderedDict()
        # Counts of lists under the current version (see COUNTS_KEY), by scope.
        self.counts: dict[tuple, int] = {}
        self.size = 0
        self.version = -1
        self.lock = threading.Lock()

    def admits(self, key: tuple) -> bool:
        """Whether a response to this request (key without the version) may be kept:
        yes if the request was seen before; it is remembered either way."""
        request = hash(key[1:])
        with self.lock:
            if request in self.seen:
                self.seen.move_to_end(request)
                return True
            self.seen[request] = None
            if len(self.seen) > self.SEEN_MAX:
                self.seen.popitem(last=False)
            return False

    def get(self, key: tuple) -> Entry | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def see(self, version: int) -> None:
        """A newer version makes every entry unreadable: they go. An older one means the
        data went back (a database restored from a backup): they go too, as the numbers
        will come again with other data."""
        if version != self.version:
            with self.lock:
                if version != self.version:
                    self.version = version
                    self.entries.clear()
                    self.counts = {}
                    self.size = 0

    def put(self, key: tuple, entry: Entry) -> None:
        if entry.size > self.max_bytes:
            return
        with self.lock:
            if key[0] < self.version:  # computed under a version already superseded
                return
            previous = self.entries.pop(key, None)
            if previous is not None:
                self.size -= previous.size
            self.entries[key] = entry
            self.size += entry.size
            while self.size > self.max_bytes:
                _, dropped = self.entries.popitem(last=False)
                self.size -= dropped.size


class ResponseCache:
    """WSGI middleware: see the module's documentation."""

    def __init__(self, app: Callable, *, max_bytes: int | None = None, using: str = "default"):
        self.app = app
        self.using = using
        self.store = Store(settings.RESPONSE_CACHE_MAX_BYTES if max_bytes is None else max_bytes)
        self.session_cookie = settings.SESSION_COOKIE_NAME + "="

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not self.is_cacheable(environ):
            return self.app(environ, start_response)
        # With a replica, the request's reads go to one database, decided now: the
        # version is read there, before the data (signalements/replicas.py).
        reads = replicas.decide(environ)
        if reads is not None and reads.sticky:  # its client's own: Django answers
            return self.app(environ, start_response)
        try:
            version = self.version(reads)
        except Exception:  # Django answers, and reports the database's trouble itself
            return self.app(environ, start_response)
        self.store.see(version)
        key = (version, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
        key += tuple(environ.get(name) for name in KEY_HEADERS)
        entry = self.store.get(key)
        if entry is not None:
            metrics.CACHE_HIT.inc()
            environ[ROUTE_KEY] = ROUTES[environ["PATH_INFO"] != "/api/signalements/"]
            replicas.finished(reads)
            return self.answer(entry, environ, start_response, extra=[HIT])
        metrics.CACHE_MISS.inc()
        entry = self.compute(environ)
        if isinstance(entry, tuple):  # not storable: answered as Django answered
            status, headers, body = entry
            start_response(status, headers)
            return [body]
        if self.store.admits(key):
            self.store.put(key, entry)
        return self.answer(entry, environ, start_response)

    def version(self, reads: "replicas.Reads | None") -> int:
        """The data version, on the database the request reads. A replica that does not
        answer is marked down and the request reads the primary (its version too)."""
        if reads is None or reads.database == self.using:
            return data_version.current(self.using)
        try:
            return data_version.current(reads.database)
        except Exception as error:
            replicas.fall_back(reads, error)
        return data_version.current(self.using)

    def is_cacheable(self, environ: dict) -> bool:
        if environ.get("REQUEST_METHOD") != "GET":
            return False
        if not CACHED_PATHS.match(environ.get("PATH_INFO", "")):
            return False
        if any(environ.get(name) for name in CREDENTIAL_HEADERS):
            return False
        cookies = environ.get("HTTP_COOKIE", "")
        return self.session_cookie not in cookies

    def compute(self, environ: dict) -> Entry | tuple:
        """Django's full answer (a 200 if it can be one: the client's conditional header
        is left out, and applied to the stored response instead), with the store's
        counts of lists under this version (COUNTS_KEY)."""
        environ = {name: value for name, value in environ.items() if name != "HTTP_IF_NONE_MATCH"}
        environ[COUNTS_KEY] = self.store.counts
        captured = []

        def capture(status, headers, exc_info=None):
            captured[:] = [status, headers]
            return lambda data: None  # Django's responses do not use write()

        result = self.app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, headers = captured
        names = {name.lower(): value for name, value in headers}
        storable = (
            status.startswith("200 ")
            and "set-cookie" not in names
            and names.get("content-type", "").split(";")[0].strip() in CACHED_CONTENT_TYPES
        )
        if not storable:
            return status, headers, body
        return Entry(status=status, headers=list(headers), body=body, etag=names.get("etag"))

    def answer(
        self, entry: Entry, environ: dict, start_response: Callable, extra: list = ()
    ) -> list[bytes]:
        if entry.etag and self.not_modified(entry.etag, environ.get("HTTP_IF_NONE_MATCH")):
            headers = [(n, v) for n, v in entry.headers if n.lower() in NOT_MODIFIED_HEADERS]
            start_response("304 Not Modified", [*headers, *extra])
            return []
        start_response(entry.status, [*entry.headers, *extra])
        return [entry.body]

    @staticmethod
    def not_modified(etag: str, if_none_match: str | None) -> bool:
        """RFC 9110 §13.1.2: a weak comparison, `*` matching any current representation."""
        if not if_none_match:
            return False
        wanted = parse_etags(if_none_match)
        if "*" in wanted:
            return True
        plain = etag.removeprefix("W/")
        return any(candidate.removeprefix("W/") == plain for candidate in wanted)
