"""Reads on a PostgreSQL streaming replica (DATABASE_REPLICA_URL), and what keeps them
exact enough: a client reads its own writes, a lagging or dead replica is not read.

**What goes where.** Without a replica nothing here runs (the middleware is not used, no
router is installed). With one, each request is given one place for its reads, once,
before anything reads (`decide`, called by the REST API's response cache for the requests
it may answer, else by `ReplicaMiddleware`, first among Django's): the replica
(`"replica"`) when all of these hold, else the primary (`"default"`):

- the request's method is safe (GET, HEAD, OPTIONS);
- the client did not write lately (*read-your-writes*, below);
- this process's last measure found the replica answering, in recovery (a replica, not a
  promoted or mistaken primary) and lagging at most REPLICA_MAX_LAG_SECONDS.

The decision is kept in the WSGI environment (`READS_KEY`, a `Reads`) and in a context
variable that `ReplicaRouter` reads. Writes always go to the primary, as do management
commands, task workers and migrations (no request: no decision). Within a request that
reads the replica, any statement run on the primary (a write, a read inside a
transaction, raw SQL on `django.db.connection`) moves the rest of the request's reads to
the primary: a request never reads older data after newer, and nothing is computed for
the primary from what the replica said afterwards. The response cache reads the data
version on the request's database, so that a stored response is never older than its
version (`signalements/api/response_cache.py`).

**Read-your-writes.** After every request with an unsafe method (whatever its status:
one that failed may have committed before failing, and the rule stays simple), that
client's reads go to the primary for REPLICA_STICKY_SECONDS, whichever app server
answers: a cookie (`STICKY_COOKIE`, the Unix time until which it holds) for clients that
keep cookies, and, for API clients that keep none, the SHA-256 of the credentials they
sent (`Authorization`, `X-Reporter-Token`) recorded for as long in the shared cache
(Django's, Redis in a cluster). Credentials handed out by a write (a login's new token, an
anonymous create's `reporter_token`: `handed_out`) are recorded too, so that the next
request made with them finds them. A credential missing on the replica is looked up again
on the primary (`on_primary`: sessions, tokens), so that a lag longer than the stickiness
never logs anyone out. Read-your-writes is strict while the replica's lag stays under
REPLICA_STICKY_SECONDS: keep REPLICA_MAX_LAG_SECONDS at most that (plus
REPLICA_CHECK_SECONDS) for the guarantee to hold for every read.

**Health and lag**, per process: measured at most every REPLICA_CHECK_SECONDS, by the
request that finds the last measure too old (`LAG_QUERY`: in recovery, and the lag: 0
while the WAL receiver streams and has replayed all it received, else the age of the
last transaction replayed, which grows while it does not stream). A replica that fails
(refused, killed, stopped) is marked down at once by the backend that met the error
(`signalements.replica_database`): a safe request that met it is run again on the primary
(its first answer discarded: a safe request may be run twice), and reads stay on the
primary until a later measure finds the replica back. Only one thread per process at a
time opens a connection to the replica or measures it (`GATE`); the others read the
primary meanwhile rather than wait, so that a replica host that does not answer holds one
request per process at most (DATABASE_CONNECT_TIMEOUT), not all of them.

Seen by operators: `/readyz`'s `checks.replica` (`status`), and in `/metrics`
`signalements_replica_up`, `signalements_replica_lag_seconds` (measured when scraped) and
`signalements_read_requests_total{database}` (`signalements/metrics.py`).
"""

import hashlib
import logging
import math
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import MiddlewareNotUsed
from django.core.signals import request_finished
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from django.http import parse_cookie

from . import metrics

logger = logging.getLogger(__name__)

REPLICA = "replica"
DEFAULT = DEFAULT_DB_ALIAS
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Where a request's `Reads` is kept in its WSGI environment (`request.META`).
READS_KEY = "signalements.reads"
STICKY_COOKIE = "signalements_read_primary"
STICKY_CACHE_PREFIX = "signalements:read-primary:"
# The credentials a client may send, and their header in the WSGI environment.
CREDENTIAL_HEADERS = {
    "Authorization": "HTTP_AUTHORIZATION",
    "X-Reporter-Token": "HTTP_X_REPORTER_TOKEN",
}
# In recovery (a replica), and its lag in seconds (NULL: unknown, nothing replayed yet).
# The WAL receiver's status is shown to privileged roles only; others see its pid.
LAG_QUERY = """
SELECT pg_is_in_recovery(),
       CASE WHEN NOT pg_is_in_recovery() THEN 0
            WHEN COALESCE((SELECT COALESCE(status = 'streaming', pid IS NOT NULL)
                           FROM pg_stat_wal_receiver), false)
                 AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())
       END
"""


class NotAReplica(DatabaseError):
    """The replica's database is not in recovery: a primary (promoted, or named by
    mistake), whose data may part from the real primary's. Not read."""


def configured() -> bool:
    return REPLICA in settings.DATABASES


# --- The process's view of the replica ----------------------------------------------------


class Health:
    """What this process last measured of the replica: answering, and its lag."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.checked = -math.inf  # time.monotonic() of the last measure
        self.lag: float | None = None
        self.error: str | None = None  # the exception's name when it failed

    def due(self) -> bool:
        return time.monotonic() - self.checked >= settings.REPLICA_CHECK_SECONDS

    def usable(self) -> bool:
        return (
            self.error is None
            and self.lag is not None
            and self.lag <= settings.REPLICA_MAX_LAG_SECONDS
        )

    def measured(self, lag: float | None) -> None:
        self.lag, self.error, self.checked = lag, None, time.monotonic()

    def down(self, error: BaseException) -> None:
        if self.error is None:
            logger.warning(
                "The replica failed (%s): reads go to the primary.", type(error).__name__
            )
        self.lag, self.error, self.checked = None, type(error).__name__, time.monotonic()


health = Health()
# Held by the one thread that connects to the replica or measures it (see the module).
GATE = threading.Lock()


def measure(alias: str = REPLICA) -> float | None:
    """The replica's lag in seconds, now (None: unknown); NotAReplica, or the database's
    error when it does not answer."""
    with connections[alias].cursor() as cursor:
        cursor.execute(LAG_QUERY)
        in_recovery, lag = cursor.fetchone()
    if not in_recovery:
        raise NotAReplica("The replica's database is not in recovery.")
    return None if lag is None else max(0.0, float(lag))


def measure_now() -> float | None:
    """Measure the replica (on this thread's connection), record it, return the lag;
    raises as `measure` does, after marking the replica down."""
    try:
        lag = measure()
    except Exception as error:
        health.down(error)
        _close_replica()
        raise
    health.measured(lag)
    return lag


def refresh() -> None:
    """Measure the replica if the last measure is too old, unless another thread of this
    process is at it (or connecting): then the last measure stands."""
    if not health.due() or not GATE.acquire(blocking=False):
        return
    try:
        if health.due():
            try:
                measure_now()
            except Exception:  # recorded by measure_now
                pass
    finally:
        GATE.release()


def status() -> str:
    """`/readyz`'s word on the replica."""
    refresh()
    if health.error is not None:
        return f"error: {health.error}, reads on the primary"
    if health.lag is None:
        if health.checked == -math.inf:
            return "unknown (being measured), reads on the primary"
        return "lagging: unknown, reads on the primary"
    if health.lag > settings.REPLICA_MAX_LAG_SECONDS:
        return f"lagging: {health.lag:.1f} s, reads on the primary"
    return "ok"


def _close_replica() -> None:
    try:
        connections[REPLICA].close()
    except Exception:  # a connection already broken: nothing to close
        pass


def _connected() -> bool:
    """Whether this thread has a connection to the replica, making one if no other
    thread is making one (a host that does not answer holds one request at most)."""
    connection = connections[REPLICA]
    if connection.connection is not None:
        return True
    if not GATE.acquire(blocking=False):
        return False
    try:
        connection.ensure_connection()  # a failure marks the replica down (the backend)
    except DatabaseError:
        return False
    finally:
        GATE.release()
    return True


def failed(error: BaseException, *, connecting: bool = False) -> None:
    """The replica's backend met `error` (`signalements.replica_database`): the replica
    is marked down when it is an outage (not a query's own error, such as a conflict with
    recovery), and the request that met it, if it was reading the replica, will be run
    again on the primary."""
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    outage = connecting or sqlstate is None or sqlstate[:2] == "08" or sqlstate[:3] == "57P"
    if outage:
        health.down(error)
    reads = current.get()
    if reads is not None and reads.database == REPLICA:
        reads.failed = True


def watch(execute, sql, params, many, context):
    """The replica connections' execute wrapper: statements that fail tell `failed`."""
    try:
        return execute(sql, params, many, context)
    except (OperationalError, InterfaceError) as error:
        failed(error)
        raise


# --- Each request's decision ------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Reads:
    """Where one request's reads go (`database`), and what happened to them."""

    database: str
    safe: bool
    sticky: bool = False  # the client wrote lately: its reads on the primary
    failed: bool = False  # the replica failed under it: to be run again on the primary
    counted: bool = False
    handed_out: list[str] = field(default_factory=list)  # sticky-cache keys to record

    def to_primary(self) -> None:
        self.database = DEFAULT


current: ContextVar[Reads | None] = ContextVar("signalements_reads", default=None)


def decide(environ: dict) -> Reads | None:
    """The request's `Reads`, decided on its first call (see the module) and kept in its
    environment; None without a replica."""
    if not configured():
        return None
    reads = environ.get(READS_KEY)
    if reads is None:
        safe = environ.get("REQUEST_METHOD", "") in SAFE_METHODS
        reads = Reads(database=DEFAULT, safe=safe)
        if safe:
            if _sticky(environ):
                reads.sticky = True
            else:
                refresh()
                if health.usable() and _connected():
                    reads.database = REPLICA
        environ[READS_KEY] = reads
    current.set(reads)
    return reads


def fall_back(reads: Reads, error: BaseException | None = None) -> None:
    """The replica failed before anything of the answer was made from it: the request
    reads the primary from now on."""
    if error is not None:
        health.down(error)
    reads.failed = False
    reads.to_primary()


def finished(reads: Reads | None, *, forget: bool = True) -> None:
    """The request is answered: counted by where its reads went, and forgotten."""
    if reads is not None and reads.safe and not reads.counted:
        reads.counted = True
        database = "replica" if reads.database == REPLICA else "primary"
        metrics.READ_REQUESTS.labels(database=database).inc()
    if forget:
        current.set(None)


@receiver(request_finished)
def _forget(sender, **kwargs) -> None:
    current.set(None)


# --- Read-your-writes -------------------------------------------------------------------


def _credential_key(header: str, value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if header == "Authorization":  # the scheme's case is the client's
        scheme, _, credentials = value.partition(" ")
        value = f"{scheme.lower()} {credentials.strip()}"
    digest = hashlib.sha256(f"{header}\0{value}".encode("utf-8", "surrogateescape"))
    return STICKY_CACHE_PREFIX + digest.hexdigest()


def _credential_keys(environ: dict) -> list[str]:
    keys = (
        _credential_key(header, environ.get(name, ""))
        for header, name in CREDENTIAL_HEADERS.items()
    )
    return [key for key in keys if key]


def _sticky(environ: dict) -> bool:
    """Whether the client wrote less than REPLICA_STICKY_SECONDS ago (its cookie, or its
    credentials in the shared cache). A cache that does not answer: yes (the primary)."""
    if settings.REPLICA_STICKY_SECONDS <= 0:
        return False
    cookies = environ.get("HTTP_COOKIE", "")
    if STICKY_COOKIE in cookies:
        try:
            if float(parse_cookie(cookies).get(STICKY_COOKIE, "")) > time.time():
                return True
        except ValueError:  # not ours: ignored
            pass
    keys = _credential_keys(environ)
    if not keys:
        return False
    try:
        return bool(cache.get_many(keys))
    except Exception:
        return True


def handed_out(header: str, value: str) -> None:
    """A write hands this credential to its client (`header`: "Authorization", with its
    scheme, or "X-Reporter-Token"): its next reads with it go to the primary too."""
    reads = current.get()
    if reads is not None and (key := _credential_key(header, value)):
        reads.handed_out.append(key)


def stick(request, response, reads: Reads) -> None:
    """After an unsafe request: the client's reads on the primary for a while."""
    seconds = settings.REPLICA_STICKY_SECONDS
    if seconds <= 0:
        return
    response.set_cookie(
        STICKY_COOKIE,
        str(math.ceil(time.time() + seconds)),
        max_age=math.ceil(seconds),
        path="/",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    keys = _credential_keys(request.META) + reads.handed_out
    if keys:
        try:
            cache.set_many(dict.fromkeys(keys, 1), timeout=math.ceil(seconds))
        except Exception:  # the cache's trouble is /readyz's to report
            logger.warning("The shared cache did not record a client's recent write.")


def on_primary(queryset):
    """The same query on the primary when `queryset` reads the replica, else None: for
    credentials (a session, a token) that a replica behind may not have yet."""
    if not configured() or queryset.db == DEFAULT:
        return None
    return queryset.using(DEFAULT)


# --- Django's side ----------------------------------------------------------------------


class ReplicaMiddleware:
    """First in MIDDLEWARE (after the request observer's): the request's `Reads` for the
    router; a safe request that the replica failed under is run again on the primary; an
    unsafe one makes its client sticky. Not used without a replica."""

    def __init__(self, get_response):
        if not configured():
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request):
        reads = decide(request.META)
        response = self.get_response(request)
        if reads.failed:  # only a request reading the replica can fail there
            fall_back(reads)
            response = self.get_response(type(request)(request.environ))
        if not reads.safe:
            stick(request, response, reads)
        # A streamed body reads its rows as it is sent: the decision holds until then
        # (forgotten at request_finished).
        finished(reads, forget=not response.streaming)
        return response


class ReplicaRouter:
    """Reads where the request's `Reads` says (see the module); everything else on the
    primary. Installed only with a replica (DATABASE_ROUTERS)."""

    def db_for_read(self, model, **hints):
        reads = current.get()
        if reads is None or reads.database != REPLICA:
            return DEFAULT
        if connections[DEFAULT].in_atomic_block:
            reads.to_primary()
            return DEFAULT
        return REPLICA

    def db_for_write(self, model, **hints):
        reads = current.get()
        if reads is not None:
            reads.to_primary()
        return DEFAULT

    def allow_relation(self, obj1, obj2, **hints):
        if {obj1._state.db, obj2._state.db} <= {DEFAULT, REPLICA, None}:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT


def _on_primary_statement(execute, sql, params, many, context):
    """The primary's execute wrapper (with a replica): a request reading the replica that
    runs a statement on the primary reads the primary from then on."""
    reads = current.get()
    if reads is not None and reads.database == REPLICA:
        reads.to_primary()
    return execute(sql, params, many, context)


@receiver(connection_created)
def _watch_the_primary(sender, connection, **kwargs) -> None:
    if connection.alias != DEFAULT or not configured():
        return
    if _on_primary_statement not in connection.execute_wrappers:
        # First, so that `with connection.execute_wrapper(...)` blocks take off their own.
        connection.execute_wrappers.insert(0, _on_primary_statement)
