"""What operators see of the served process: a request id on every request, one log line
per request (the access log), logs as JSON lines (LOG_FORMAT=json), the request metrics,
and `GET /metrics` for Prometheus (`signalements/metrics.py` says what is counted).

`RequestObserver` wraps the whole WSGI application (`wsgi.py`), outside the response
cache, so that the requests that the cache answers without Django are seen too. For each
request it:

- takes the id from the incoming `X-Request-ID` (REQUEST_ID_HEADER) when it is a sane
  one (1 to 128 letters, digits and `.`, `_`, `:`, `-`), else makes one (uuid4, hex);
  returns it in the response's `X-Request-ID`; and keeps it in a context variable while
  the request runs, where `RequestLogFilter` finds it for every log line written;
- when the response is sent, writes the request's line to the `signalements.requests`
  logger (ACCESS_LOG): method, route, status, duration in ms, user id, request id; and
  counts the request in `signalements_http_request_duration_seconds`.

The route is the URL pattern that answered, as `api/signalements/<pk>/`: never the raw
path, which may hold the signed tokens of emailed links (`api/feedback/<token>/`), nor the
query string. `RequestContextMiddleware` (Django) finds it and the user once the view
answered; the response cache says its own (`ROUTE_KEY`).

Django's own lines carry the raw path ("Not Found: /api/feedback/…/"): `RequestLogFilter`
puts the route in its place. The JSON lines leave out the request object that Django
attaches to them; an error's line has its type, message and traceback as fields, with
PostgreSQL's `DETAIL:` lines taken out of both (they quote the row's values: emails,
phone numbers).
"""

import functools
import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from signalements import metrics
from signalements.api.response_cache import ROUTE_KEY

access_logger = logging.getLogger("signalements.requests")

SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Routes left out of the request metrics: the probes and the scrapes.
UNMEASURED_ROUTES = frozenset({"healthz", "readyz", "metrics"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(slots=True)
class RequestInfo:
    """What the log lines and the metrics say of the request being served."""

    id: str
    route: str | None = None
    user_id: int | None = None


current: ContextVar[RequestInfo | None] = ContextVar("signalements_request", default=None)


def current_request_id() -> str | None:
    info = current.get()
    return info.id if info is not None else None


# --- Routes -----------------------------------------------------------------------------

# A regular expression's named group (a group inside it too), and a path converter.
NAMED_GROUP = re.compile(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)")
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


@functools.lru_cache(maxsize=1024)
def readable_route(pattern: str) -> str:
    """A URL pattern as people write it: `api/signalements/(?P<pk>[^/.]+)/$` and
    `api/feedback/<str:token>/` become `api/signalements/<pk>/` and
    `api/feedback/<token>/`."""
    route = CONVERTER.sub(r"<\1>", NAMED_GROUP.sub(r"<\1>", pattern))
    route = route.replace("/?$", "/").replace("^", "").replace("$", "")
    return re.sub(r"\\(.)", r"\1", route)  # `\.` is a dot


def route_of(request) -> str | None:
    match = getattr(request, "resolver_match", None)
    return readable_route(match.route) if match is not None and match.route else None


def user_id_of(request) -> int | None:
    try:
        user = getattr(request, "user", None)
        return user.pk if user is not None and user.is_authenticated else None
    except Exception:  # the user could not be read (the database is down): say none
        return None


# --- The WSGI middleware ----------------------------------------------------------------


class RequestObserver:
    """WSGI middleware around the whole application: see the module's documentation."""

    def __init__(self, app: Callable):
        self.app = app
        self.header = settings.REQUEST_ID_HEADER
        self.environ_key = "HTTP_" + self.header.upper().replace("-", "_")

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        given = environ.get(self.environ_key, "")
        info = RequestInfo(given if SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex)
        current.set(info)
        status = [500]

        def start_with_id(status_line, headers, exc_info=None):
            status[0] = int(status_line[:3])
            return start_response(status_line, [*headers, (self.header, info.id)], exc_info)

        def done():
            self.finish(info, environ, status[0], started)

        try:
            result = self.app(environ, start_with_id)
        except BaseException:
            done()
            raise
        file_wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(result, list) or (
            isinstance(file_wrapper, type) and isinstance(result, file_wrapper)
        ):  # nothing left to compute (a file the server sends as it likes)
            done()
            return result
        return ClosingBody(result, done)

    def finish(self, info: RequestInfo, environ: dict, status: int, started: float) -> None:
        duration = time.perf_counter() - started
        route = info.route or environ.get(ROUTE_KEY)
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in METHODS else "other"  # a bounded set of labels
        if route not in UNMEASURED_ROUTES:
            metrics.REQUEST_DURATION.labels(
                method=method, route=route or "unmatched", status=str(status)
            ).observe(duration)
        if access_logger.isEnabledFor(logging.INFO):
            access_logger.info(
                "%s %s %s %.1f ms",
                method,
                route or "-",
                status,
                duration * 1000,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                    "user_id": info.user_id,
                    "request_id": info.id,
                },
            )
        current.set(None)


class ClosingBody:
    """A response body that calls `done` once the server closes it (all sent)."""

    def __init__(self, result: Iterable[bytes], done: Callable[[], None]):
        self.result = result
        self.done = done

    def __iter__(self):
        return iter(self.result)

    def close(self) -> None:
        try:
            if hasattr(self.result, "close"):
                self.result.close()
        finally:
            self.done()


class RequestContextMiddleware:
    """Django middleware (first in MIDDLEWARE): once the view answered, tells the
    request's `RequestInfo` its route and its user."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        info = current.get()
        if info is not None:
            info.route = route_of(request)
            info.user_id = user_id_of(request)
        return response


# --- Logging ----------------------------------------------------------------------------

DATABASE_DETAIL = re.compile(r"^\s*DETAIL:.*$\n?", re.MULTILINE)


def without_database_detail(text: str) -> str:
    """PostgreSQL's `DETAIL:` lines quote the row at fault ("Key (email)=(…)", "Failing
    row contains (…)"): taken out of errors' messages and tracebacks."""
    return DATABASE_DETAIL.sub("", text)


class RequestLogFilter(logging.Filter):
    """On the console handler: every line gets `request_id` (the request being served,
    or None); Django's lines about a request name its route, not its path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        request = getattr(record, "request", None)
        path = getattr(request, "path", None)
        if path and isinstance(record.args, tuple):
            escaped = path.encode("unicode_escape").decode("ascii")  # as log_response has it
            route = route_of(request) or "(unmatched path)"
            record.args = tuple(route if arg in (path, escaped) else arg for arg in record.args)
        return True


class TextFormatter(logging.Formatter):
    """The plain text lines: the message, after `[request id]` inside a request."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"[{request_id}] {text}" if request_id else text

    def formatException(self, ei) -> str:
        return without_database_detail(super().formatException(ei))


class JsonFormatter(OrjsonFormatter):
    """One JSON object per line: `time`, `level`, `logger`, `message`, `request_id`, the
    record's extra fields (the access line's `method`, `route`, `status`, `duration_ms`,
    `user_id`), and for an error `error_type`, `error_message` and `traceback`."""

    def __init__(self, *args, **kwargs):
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "traceback"},
            timestamp="time",
            # Django's request object (its path, its headers) is never written.
            reserved_attrs=[*RESERVED_ATTRS, "request"],
        )

    def add_fields(self, log_data, record, message_dict) -> None:
        super().add_fields(log_data, record, message_dict)
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            log_data["error_type"] = f"{type(error).__module__}.{type(error).__qualname__}"
            log_data["error_message"] = without_database_detail(str(error)).strip()

    def formatException(self, ei) -> str:
        return without_database_detail(super().formatException(ei))


# --- GET /metrics ------------------------------------------------------------------------


def _refused(code: str, detail: str, status: int) -> JsonResponse:
    response = JsonResponse(
        {"type": "client_error", "errors": [{"code": code, "detail": detail, "attr": None}]},
        status=status,
    )
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@never_cache
@require_safe
def metrics_view(request):
    """The metrics in Prometheus' text format, for `Authorization: Bearer METRICS_TOKEN`
    (compared in constant time). Without METRICS_TOKEN, there is no such page (404)."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return _refused(
            "not_authenticated",
            gettext("Send the metrics token: Authorization: Bearer <token>."),
            401,
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return _refused("authentication_failed", gettext("Invalid metrics token."), 401)
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
