"""Settings for Signalements: one module, driven by environment variables.

Every variable is documented in `.env.example` and in the README. The defaults run on a
laptop with no configuration at all (SQLite file next to manage.py); production sets
`DATABASE_URL`, `SECRET_KEY`, `ALLOWED_HOSTS` and leaves `DEBUG` off.
"""

import re
from datetime import timedelta
from pathlib import Path

import csp.constants as csp
import environ
from corsheaders.defaults import default_headers as cors_default_headers
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local `.env` (never committed) is read when present; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see .env.example).")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # First, so that its admin templates (admin/base_site.html) come before the admin's.
    "signalements",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    # API tokens stored hashed, with an expiry (django-rest-knox, named for the admin).
    "signalements.api_tokens.ApiTokensConfig",
    "simple_history",
    "csp",
    "corsheaders",
    # Background work: Django's tasks API (the django-tasks backport), its database queue.
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    # Tells the request's log line and metrics its route and user (observability.py).
    "signalements_project.observability.RequestContextMiddleware",
    # Safe requests' reads on the replica, a client's on the primary after its writes
    # (signalements/replicas.py). Not used without DATABASE_REPLICA_URL.
    "signalements.replicas.ReplicaMiddleware",
    # A URL over MAX_URL_LENGTH is a 414 before anything parses it (limits.py).
    "signalements_project.limits.UrlLengthMiddleware",
    # Forwarded headers from anyone but our proxy are dropped (proxies.py).
    "signalements_project.proxies.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # CORS headers for CORS_ALLOWED_ORIGINS (security.py), and preflights answered.
    "signalements_project.security.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below whitenoise: static files get neither (they are public and carry no policy).
    "signalements_project.security.ContentSecurityPolicyMiddleware",
    "signalements_project.security.PrivateResponseMiddleware",
    # ETag (MD5 of the exact bytes) on GET responses, and 304 for a matching
    # If-None-Match.
    "django.middleware.http.ConditionalGetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Records who made each change in the report history.
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "signalements_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # The admin door's template tags (its dashboard).
            "libraries": {"signalements_admin": "signalements.admin.templatetags"},
        },
    },
]

WSGI_APPLICATION = "signalements_project.wsgi.application"

# --- Database -------------------------------------------------------------------------
# SQLite by default (zero configuration); PostgreSQL with DATABASE_URL=postgres://...
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Tuned for several concurrent writers (gunicorn workers, threads): write-ahead
    # log so readers never block writers, IMMEDIATE transactions so that a writer takes
    # the lock when its transaction starts (no "database is locked" upgrade deadlock),
    # and a busy timeout so that a writer waits for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=20),
        "init_command": (
            "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;"
        ),
        **DATABASES["default"].get("OPTIONS", {}),
    }
elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # A database that does not answer: give up connecting after this long (a 503, see
    # signalements/availability.py) rather than hang the request.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
# Connections are kept for CONN_MAX_AGE seconds, and checked before reuse. On SQLite too:
# opening one (Django registers its SQL functions on each) cost more than the rest of a
# report's read (measured: a cold detail 910 -> 3,100 req/s, a list page 475 -> 880).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind a pooler in transaction mode (PgBouncer's pool_mode = transaction), each
# transaction may run on another server connection: nothing may outlive one. So no
# server-side cursors (the exports' `.iterator()` would fetch from a cursor declared on
# another connection) and no prepared statements (psycopg's, after `prepare_threshold`
# runs of a query; Django's default, kept even if DATABASE_URL asks otherwise). The
# replica below gets the same. PostgreSQL only.
DATABASE_TRANSACTION_POOLING = env.bool("DATABASE_TRANSACTION_POOLING", default=False)
if DATABASE_TRANSACTION_POOLING:
    if not DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
        raise ImproperlyConfigured(
            "DATABASE_TRANSACTION_POOLING is for PostgreSQL behind a pooler such as "
            "PgBouncer (DATABASE_URL=postgres://...)."
        )
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None

# --- Read replica (signalements/replicas.py) ------------------------------------------
# A PostgreSQL streaming replica of the primary (made by `pg_basebackup -R`): the reads
# of safe requests (GET, HEAD, OPTIONS) go there; writes, transactions, management
# commands and task workers stay on the primary. Empty: no replica, every query on the
# primary (no router, no middleware: as before). After a write, that client's reads go to
# the primary for REPLICA_STICKY_SECONDS (a cookie, and its credentials in the shared
# cache); a replica lagging more than REPLICA_MAX_LAG_SECONDS, or not answering, is not
# read until it catches up; each process measures it every REPLICA_CHECK_SECONDS.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
REPLICA_STICKY_SECONDS = env.float("REPLICA_STICKY_SECONDS", default=5.0)
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=3.0)
REPLICA_CHECK_SECONDS = env.float("REPLICA_CHECK_SECONDS", default=2.0)
if min(REPLICA_STICKY_SECONDS, REPLICA_MAX_LAG_SECONDS, REPLICA_CHECK_SECONDS) < 0:
    raise ImproperlyConfigured(
        "REPLICA_STICKY_SECONDS, REPLICA_MAX_LAG_SECONDS and REPLICA_CHECK_SECONDS are "
        "numbers of seconds (0 or more)."
    )
# Read-your-writes holds when a client's reads leave the primary only once the replica
# has its write: the replica read is at most MAX_LAG behind when measured, and its lag can
# grow for CHECK seconds before the next measure.
if REPLICA_STICKY_SECONDS < REPLICA_MAX_LAG_SECONDS + REPLICA_CHECK_SECONDS:
    raise ImproperlyConfigured(
        "REPLICA_STICKY_SECONDS must be at least REPLICA_MAX_LAG_SECONDS + "
        "REPLICA_CHECK_SECONDS, or a client could read the replica before its own write "
        "reaches it."
    )
if DATABASE_REPLICA_URL:
    _replica = environ.Env.db_url_config(DATABASE_REPLICA_URL)
    _postgresql = "django.db.backends.postgresql"
    if not (
        _replica["ENGINE"].startswith(_postgresql)
        and DATABASES["default"]["ENGINE"].startswith(_postgresql)
    ):
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URL is a PostgreSQL streaming replica of a PostgreSQL "
            "DATABASE_URL (postgres://...)."
        )
    # PostgreSQL's backend, which tells signalements.replicas when the replica fails.
    _replica["ENGINE"] = "signalements.replica_database"
    _replica.setdefault("OPTIONS", {})
    _replica["OPTIONS"].setdefault(
        "connect_timeout", DATABASES["default"]["OPTIONS"]["connect_timeout"]
    )
    _replica["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    _replica["CONN_HEALTH_CHECKS"] = True
    if DATABASE_TRANSACTION_POOLING:
        _replica["DISABLE_SERVER_SIDE_CURSORS"] = True
        _replica["OPTIONS"]["prepare_threshold"] = None
    # The tests' replica is the test database itself.
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
    DATABASE_ROUTERS = ["signalements.replicas.ReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Throttle counters live in the cache. The default is per process; several workers or
# machines need a shared one: REDIS_URL=redis://host:6379/1, or any CACHE_URL
# (e.g. dbcache://signalements_cache after `manage.py createcachetable`).
CACHES = {
    "default": env.cache_url(
        "CACHE_URL", default=env.str("REDIS_URL", default="") or "locmemcache://signalements"
    )
}

# --- Authentication -------------------------------------------------------------------
AUTHENTICATION_BACKENDS = ["signalements.backends.ModelBackend"]
SESSION_ENGINE = "signalements.sessions"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- API tokens and logins ------------------------------------------------------------
# API tokens (django-rest-knox, signalements/api_tokens.py): stored hashed, each valid
# TOKEN_TTL_DAYS days from the login that made it (0: until revoked). Not renewed by use
# (knox's AUTO_REFRESH off): a token that leaked stops working on its date however much
# it is used; a client logs in again for a new one.
TOKEN_TTL_DAYS = env.int("TOKEN_TTL_DAYS", default=30)
if TOKEN_TTL_DAYS < 0:
    raise ImproperlyConfigured("TOKEN_TTL_DAYS must be 0 (no expiry) or a number of days.")
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=TOKEN_TTL_DAYS) if TOKEN_TTL_DAYS else None,
    "AUTO_REFRESH": False,
    "AUTH_HEADER_PREFIX": "Token",
}
# Lockout (signalements/lockout.py): after LOGIN_FAILURE_LIMIT failed logins for one
# account from one client address (admin login, token login, HTTP Basic), that account
# is refused from that address for LOGIN_LOCKOUT_MINUTES, even with the right password.
# 0 disables it. Counted in the cache, as the throttles are (CACHE_URL).
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)

# --- Internationalisation -------------------------------------------------------------
# French first: the default when a request asks for no language we speak (English
# with `Accept-Language: en`). Source strings are English; the French catalogue is
# signalements/locale (README, "Languages"), listed here so that its translations win
# over other apps' for the same message.
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="fr")
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "signalements" / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Paris")
USE_I18N = True
USE_TZ = True

# --- Static files (served by whitenoise, also under gunicorn) -------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Uploaded photos -----------------------------------------------------------------
# Through Django's storage API: local files under MEDIA_ROOT by default; any storage
# backend by configuration (e.g. django-storages' S3 backend, so that several app
# servers share the photos): MEDIA_STORAGE_BACKEND and its MEDIA_STORAGE_OPTIONS (JSON).
# A relative MEDIA_ROOT is taken from the project directory.
MEDIA_ROOT = BASE_DIR / env.str("MEDIA_ROOT", default="media")
MEDIA_URL = env.str("MEDIA_URL", default="/media/")
STORAGES = {
    "default": {
        "BACKEND": env.str(
            "MEDIA_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": env.json("MEDIA_STORAGE_OPTIONS", default={}),
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Photos access (signalements/photo_access.py) -------------------------------------
# Every photo is served by Django at MEDIA_URL (/media/ when MEDIA_URL is on another
# host), after a check: anyone gets a public report's photos; a hidden report's only
# through a signed URL (handed to those who may see the report, valid between
# PHOTO_URL_TTL_SECONDS and twice that, the same URL within each such window) or to a
# logged-in user who may see the report (the admin).
PHOTO_URL_TTL_SECONDS = env.int("PHOTO_URL_TTL_SECONDS", default=3600)
# Webhook bodies are kept and retried for hours: their signed photo URLs last this long.
WEBHOOK_PHOTO_URL_TTL_SECONDS = env.int("WEBHOOK_PHOTO_URL_TTL_SECONDS", default=7 * 24 * 3600)
# How long browsers and shared caches may keep a public report's photo (a report hidden
# later stops being served by this server at once, by caches after this long).
PHOTO_PUBLIC_CACHE_SECONDS = env.int("PHOTO_PUBLIC_CACHE_SECONDS", default=300)
# Behind nginx: the internal location that serves MEDIA_ROOT (e.g. /protected-media/);
# Django checks, then answers with X-Accel-Redirect and nginx sends the file. Empty: Django
# streams it.
PHOTO_ACCEL_REDIRECT = env.str("PHOTO_ACCEL_REDIRECT", default="")
if PHOTO_URL_TTL_SECONDS < 1 or WEBHOOK_PHOTO_URL_TTL_SECONDS < 1:
    raise ImproperlyConfigured("Photo URLs' lifetimes are at least one second.")

# --- Security (production) ------------------------------------------------------------
# Longest URL served (path and query string); longer is a 414 (limits.py).
MAX_URL_LENGTH = env.int("MAX_URL_LENGTH", default=8192)
# The history's "Revert" would put a report back to any earlier state, past the
# workflow (a resolved report back to `new`, which re-enables its anonymous reporter's
# token): off. Changes go through the form and the workflow's actions.
SIMPLE_HISTORY_REVERT_DISABLED = True
# A reverse proxy in front (nginx, a load balancer): its forwarded headers are believed,
# when they come from FORWARDED_ALLOW_IPS; without it, nobody's are (proxies.py). On by
# itself when NUM_PROXIES is set, as deployments configured before it were.
BEHIND_PROXY = env.bool("BEHIND_PROXY", default=env.int("NUM_PROXIES", default=0) > 0)
FORWARDED_ALLOW_IPS = env.list("FORWARDED_ALLOW_IPS", default=["127.0.0.1", "::1"])
# Django's deployment checklist: with DEBUG off, `manage.py check --deploy --fail-level
# WARNING` passes (tests/test_security.py). Each protection below is on by default with
# DEBUG off and has a variable to turn it off; `make run` (DEBUG=1, plain HTTP on
# loopback) has them off.
# HTTPS as the proxy saw it: its `X-Forwarded-Proto: https` (believed only from
# FORWARDED_ALLOW_IPS, proxies.py). On with BEHIND_PROXY.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("SECURE_PROXY_SSL_HEADER", default=BEHIND_PROXY)
    else None
)
# Plain HTTP is redirected to HTTPS, except the probes, which load balancers and
# orchestrators call on the server's own address (regular expressions of paths without
# their first "/", comma-separated). A server tried on a laptop without a proxy:
# SECURE_SSL_REDIRECT=0.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[r"^healthz$", r"^readyz$"])
# HSTS: a browser that got an HTTPS answer uses only HTTPS for this host for so many
# seconds (a year). Subdomains and the browsers' preload list are the domain owner's
# decision (a city's other sites; leaving the list takes months): off unless asked for,
# and their checks (W005, W021) silenced for that reason.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
# Cookies over HTTPS only, out of the pages' scripts' reach (nothing of ours reads the
# CSRF cookie: the admin's forms, Swagger UI and DRF's pages get the token in the page).
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Other sites learn nothing of our URLs (a report's, an emailed link's token).
SECURE_REFERRER_POLICY = env.str("SECURE_REFERRER_POLICY", default="same-origin")
# Where the admin is served: a path of its own keeps it from the scanners that try
# /admin/ (links are reversed, never written).
ADMIN_URL = env.str("ADMIN_URL", default="admin/").strip("/") + "/"
if not re.fullmatch(r"[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*/", ADMIN_URL):
    raise ImproperlyConfigured("ADMIN_URL is a path such as admin/ or back-office/.")
# Content-Security-Policy (django-csp; signalements_project/security.py): pages load
# scripts from this server only, and no inline script (Swagger UI's and Redoc's start
# from files; an inline one would need nonce="{{ request.csp_nonce }}"). Inline styles
# are allowed: Redoc writes its styles at run time, DRF's pages and the emailed links'
# pages carry style attributes or blocks. Images: this server, data: URLs, the admin
# maps' tile server (ADMIN_MAP_TILES_URL) and the photos' host (MEDIA_URL when it is
# another host) are added by the middleware, plus CSP_EXTRA_IMG_SRC (e.g. an S3
# endpoint that serves the photos). Responses that are not pages get
# `default-src 'none'; frame-ancestors 'none'`.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF, csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF, "data:"],
        "connect-src": [csp.SELF],
        # Redoc's search runs in a worker made from a blob.
        "worker-src": [csp.SELF, "blob:"],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}
CSP_EXTRA_IMG_SRC = env.list("CSP_EXTRA_IMG_SRC", default=[])
# CORS (django-cors-headers; security.py): none by default. The origins listed (e.g.
# https://app.example.org) may call /api/ and /open311/ from their pages, with the
# request headers our clients send, and read the response headers they need.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/(api|open311)/"
CORS_ALLOW_HEADERS = (
    *cors_default_headers,
    "accept-language",
    "if-match",
    "if-none-match",
    "idempotency-key",
    "x-reporter-token",
    "x-request-id",
)
CORS_EXPOSE_HEADERS = (
    "Content-Disposition",
    "ETag",
    "Idempotent-Replayed",
    "Location",
    "Retry-After",
    "X-Count",
    "X-Request-ID",
)

# --- Email (status notifications to reporters) ---------------------------------------
# Printed to the console by default; e.g. EMAIL_URL=smtp+tls://user:password@smtp.example.org:587
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Signalements <noreply@localhost>")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# A failed email is tried again after each of these delays (seconds), then given up.
EMAIL_RETRY_DELAYS = env.list("EMAIL_RETRY_DELAYS", cast=int, default=[60, 300, 1800, 7200])
# The links in emails (a report, a confirmation, an unsubscribe) start with this: the
# address where people reach this server (its public HTTPS address behind a proxy).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# A report's contact_email gets its status and update emails once confirmed: the link of
# the creation email is valid this many days (signalements/contact_confirmation.py).
CONTACT_CONFIRM_DAYS = env.int("CONTACT_CONFIRM_DAYS", default=30)

# --- Logging: everything to stderr, the process manager collects it -----------------
# Plain text lines, or one JSON object per line (LOG_FORMAT=json) for a log collector.
# Every line written while a request runs carries its request id, taken from the
# request's REQUEST_ID_HEADER when sane, else made, and returned in the response; Django's
# lines name the route, never the raw path (signalements_project/observability.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("LOG_FORMAT is either text or json.")
REQUEST_ID_HEADER = env.str("REQUEST_ID_HEADER", default="X-Request-ID")
# The access log: one line per request (method, route, status, duration, user id,
# request id), written by the application: the servers' own (raw paths, with the tokens
# of emailed links) stay off (scripts/serve.sh).
ACCESS_LOG = env.bool("ACCESS_LOG", default=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "signalements_project.observability.RequestLogFilter"}},
    "formatters": {
        "text": {"()": "signalements_project.observability.TextFormatter"},
        "json": {"()": "signalements_project.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "signalements.requests": {"level": "INFO" if ACCESS_LOG else "WARNING"},
        # Django's own lines through the handler above only (its default console handler,
        # under DEBUG, would write the raw paths).
        "django": {"handlers": [], "level": "INFO"},
        # runserver's request lines (raw paths): the access log above replaces them.
        "django.server": {"handlers": ["console"], "level": "CRITICAL", "propagate": False},
    },
}
# GET /metrics (Prometheus): served only with `Authorization: Bearer METRICS_TOKEN`; a
# 404 while it is empty. The counts of several processes are added up through
# PROMETHEUS_MULTIPROC_DIR (an environment variable, set by scripts/serve.sh).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Django REST Framework ------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an unauthenticated request gets `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # API tokens (django-rest-knox: hashed, expiring), `Authorization: Token …`.
        "signalements.api.authentication.TokenAuthentication",
        # HTTP Basic, failed attempts limited per address and username.
        "signalements.api.authentication.ThrottledBasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["signalements.api.throttling.UserWriteThrottle"],
    # The API speaks JSON: one request content type per operation, so generated
    # clients get one body parameter (openapi-python-client issue #1451).
    "DEFAULT_PARSER_CLASSES": ["signalements.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "signalements.api.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=20),
    "DEFAULT_SCHEMA_CLASS": "signalements.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        # Anonymous creates per client IP; an empty value disables the limit.
        "anon_create": env.str("THROTTLE_ANON_CREATE", default="100/hour") or None,
        # Anonymous statistics and searches per client IP (costly reads).
        "anon_expensive_read": env.str("THROTTLE_ANON_EXPENSIVE_READ", default="120/minute")
        or None,
        # Writes per logged-in user, and login attempts per IP.
        "user_write": env.str("THROTTLE_USER_WRITE", default="1000/hour") or None,
        "login": env.str("THROTTLE_LOGIN", default="10/minute") or None,
        # Open311 service requests (POST requests.{json,xml}) per API key.
        "open311_create": env.str("THROTTLE_OPEN311_CREATE", default="1000/hour") or None,
        # Follows and alerts asked for (each sends a confirmation email), per client IP
        # and, apart, per email address.
        "subscribe": env.str("THROTTLE_SUBSCRIBE", default="20/hour") or None,
    },
    # Number of reverse proxies in front of the app, so that throttling sees the
    # client's address in X-Forwarded-For rather than the proxy's; 0 without a proxy:
    # the address of the connection, whatever the client claims.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=1 if BEHIND_PROXY else 0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
    "STRICT_JSON": True,
}

DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "signalements.api.errors.ExceptionHandler",
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
    "ALLOWED_ERROR_STATUS_CODES": ["400", "401", "403", "404", "405", "406", "415", "429"],
}

_ERROR_ENUMS = "drf_standardized_errors.openapi_serializers"
SPECTACULAR_SETTINGS = {
    "TITLE": "Signalements API",
    "DESCRIPTION": (
        "Incident reports (signalements): create, follow and triage them. "
        'Errors share one JSON shape: `{"type", "errors": [{"code", "detail", '
        '"attr"}]}` where `attr` names the field at fault.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "signalements.models.Status",
        "PriorityEnum": "signalements.models.Priority",
        # Alerts (POST /api/alerts/): the area's kinds, one per variant of the request,
        # and what an emailed link names.
        "AlertKindEnum": "signalements.models.Subscription.Area",
        "CircleAlertKindEnum": ["circle"],
        "BoxAlertKindEnum": ["bbox"],
        "SubscriptionLinkKindEnum": ["follow", "alert", "report"],
        "ValidationErrorEnum": f"{_ERROR_ENUMS}.ValidationErrorEnum.choices",
        "ClientErrorEnum": f"{_ERROR_ENUMS}.ClientErrorEnum.choices",
        "ServerErrorEnum": f"{_ERROR_ENUMS}.ServerErrorEnum.choices",
        "ErrorCode401Enum": f"{_ERROR_ENUMS}.ErrorCode401Enum.choices",
        "ErrorCode403Enum": f"{_ERROR_ENUMS}.ErrorCode403Enum.choices",
        "ErrorCode404Enum": f"{_ERROR_ENUMS}.ErrorCode404Enum.choices",
        "ErrorCode405Enum": f"{_ERROR_ENUMS}.ErrorCode405Enum.choices",
        "ErrorCode406Enum": f"{_ERROR_ENUMS}.ErrorCode406Enum.choices",
        "ErrorCode415Enum": f"{_ERROR_ENUMS}.ErrorCode415Enum.choices",
        "ErrorCode429Enum": f"{_ERROR_ENUMS}.ErrorCode429Enum.choices",
        "ErrorCode500Enum": f"{_ERROR_ENUMS}.ErrorCode500Enum.choices",
    },
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "reporterToken": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Reporter-Token",
                "description": "The `reporter_token` that an anonymous create returned: "
                "adds photos to that report and edits it while it is `new`.",
            }
        }
    },
    "POSTPROCESSING_HOOKS": [
        "drf_standardized_errors.openapi_hooks.postprocess_schema_enums",
        "signalements.api.schema.error_attr_patterns",
        "signalements.api.schema.empty_filter_values",
        "signalements.api.schema.strings_without_nul",
        "signalements.api.schema.required_bodies",
    ],
}

# --- Signalements ---------------------------------------------------------------------
# How far in the future a report's `date` may be, to allow for clients' clock skew.
SIGNALEMENT_DATE_CLOCK_SKEW = timedelta(
    seconds=env.int("SIGNALEMENT_DATE_CLOCK_SKEW_SECONDS", default=300)
)

# `?near=lat,lon&radius=m`: the radius when none is given, and the largest allowed.
SIGNALEMENT_NEAR_DEFAULT_RADIUS_M = env.int("NEAR_DEFAULT_RADIUS_M", default=1000)
SIGNALEMENT_NEAR_MAX_RADIUS_M = env.int("NEAR_MAX_RADIUS_M", default=50_000)
# Possible duplicates: open reports of the same category this close, this recent.
SIGNALEMENT_DUPLICATE_RADIUS_M = env.int("DUPLICATE_RADIUS_M", default=50)
SIGNALEMENT_DUPLICATE_WINDOW_DAYS = env.int("DUPLICATE_WINDOW_DAYS", default=30)

# Background work (signalements/tasks.py): the database queue, run by `manage.py worker`
# (make worker); "immediate" runs each task inline when it is enqueued (the tests, or a
# deployment that wants no worker, at the cost of emails sent during the request).
TASKS_BACKEND = env.str("TASKS_BACKEND", default="database")
TASKS = {
    "default": {
        "BACKEND": {
            "database": "django_tasks_db.DatabaseBackend",
            "immediate": "django_tasks.backends.immediate.ImmediateBackend",
        }[TASKS_BACKEND]
    }
}
# A task still running after this long is taken for abandoned (its worker died) and run
# again by another worker.
TASKS_ABANDONED_AFTER_SECONDS = env.int("TASKS_ABANDONED_AFTER_SECONDS", default=600)
# Finished task results are kept this many days (failed ones longer: admins look into
# them), then deleted by the workers' hourly job.
TASKS_KEEP_DAYS = env.int("TASKS_KEEP_DAYS", default=7)
TASKS_KEEP_FAILED_DAYS = env.int("TASKS_KEEP_FAILED_DAYS", default=30)

# Webhooks (signalements/webhooks.py): a failed delivery is tried again after each of
# these delays (seconds: 1 min, 5 min, 30 min, 2 h, 6 h), then given up; each attempt
# waits this long for an answer at most; an endpoint failing for this many hours with no
# success is disabled. Private, loopback… addresses are refused unless allowed (tests,
# an intranet). The sweeper (`manage.py worker`) looks for deliveries to (re)start every
# WEBHOOK_SWEEP_SECONDS.
WEBHOOK_RETRY_DELAYS = tuple(
    timedelta(seconds=float(delay))
    for delay in env.list("WEBHOOK_RETRY_DELAYS", default=["60", "300", "1800", "7200", "21600"])
)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_DISABLE_AFTER_HOURS = env.float("WEBHOOK_DISABLE_AFTER_HOURS", default=24.0)
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)
WEBHOOK_SWEEP_SECONDS = env.float("WEBHOOK_SWEEP_SECONDS", default=60.0)
# A webhook event whose deliveries are all finished is deleted after this many days.
WEBHOOK_KEEP_DAYS = env.int("WEBHOOK_KEEP_DAYS", default=30)

# Follows and alerts (signalements/subscriptions.py): a confirmation link is valid this
# many days (a subscription still unconfirmed after them is deleted by anonymize_reports);
# daily alert digests are due from this hour of the day (TIME_ZONE) on.
SUBSCRIPTION_CONFIRM_DAYS = env.int("SUBSCRIPTION_CONFIRM_DAYS", default=7)
ALERT_DIGEST_HOUR = env.int("ALERT_DIGEST_HOUR", default=7)

# Departments, areas and service levels (signalements/routing.py, service_levels.py).
# A report whose category has no service level is due this many calendar days after it
# was filed (0: never due); before service levels, the dashboard's "overdue" age.
SIGNALEMENT_OVERDUE_DAYS = env.int("OVERDUE_DAYS", default=7)
# Working days leave out weekends and this country's public holidays (ISO 3166 code of
# the `holidays` package; empty: weekends only), and its subdivision's if given.
SIGNALEMENT_SLA_HOLIDAYS_COUNTRY = env.str("SLA_HOLIDAYS_COUNTRY", default="FR")
SIGNALEMENT_SLA_HOLIDAYS_SUBDIVISION = env.str("SLA_HOLIDAYS_SUBDIVISION", default="")
# The reporter's verdict (signalements/feedback.py): after a resolution, its reporter
# says "fixed" or "not fixed" during this many days (the emailed links expire with them).
SIGNALEMENT_FEEDBACK_DAYS = env.int("FEEDBACK_DAYS", default=14)
# AGENT_SCOPE=department: agents see and triage only the reports of their departments
# (and those assigned to them); "all" (default): every report. Superusers see all.
SIGNALEMENT_AGENT_SCOPE = env.str("AGENT_SCOPE", default="all")
if SIGNALEMENT_AGENT_SCOPE not in ("all", "department"):
    raise ImproperlyConfigured("AGENT_SCOPE is either all or department.")
# Each agent gets a daily email of the open overdue reports of their departments (and
# those assigned to them) from this hour on (in TIME_ZONE; -1: none), signalements/overdue.py.
OVERDUE_DIGEST_HOUR = env.int("OVERDUE_DIGEST_HOUR", default=7)

# The admin's maps: the tile server (a URL template for Leaflet; empty: no tiles, the
# reports drawn on a blank background) and the attribution its licence asks for.
ADMIN_MAP_TILES_URL = env.str(
    "ADMIN_MAP_TILES_URL", default="https://tile.openstreetmap.org/{z}/{x}/{y}.png"
)
ADMIN_MAP_ATTRIBUTION = env.str(
    "ADMIN_MAP_ATTRIBUTION",
    default='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>',
)
# Retention: reports in these (closed) statuses, closed more than this many days ago,
# lose their contact data and reporter (`manage.py anonymize_reports`, daily from cron).
SIGNALEMENT_RETENTION_DAYS = env.int("RETENTION_DAYS", default=365)
SIGNALEMENT_RETENTION_STATUSES = env.list("RETENTION_STATUSES", default=["resolved", "rejected"])

# Photos of a report: how many, how large (bytes of the uploaded file), how many pixels
# (width × height: larger images, decompression bombs among them, are refused).
SIGNALEMENT_MAX_ATTACHMENTS = env.int("ATTACHMENTS_MAX_PER_REPORT", default=5)
SIGNALEMENT_ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
SIGNALEMENT_ATTACHMENT_MAX_PIXELS = env.int("ATTACHMENT_MAX_PIXELS", default=24_000_000)
# The secret an anonymous reporter gets with their new report, to add photos to it (and
# edit it) while it is `new`: valid this long.
SIGNALEMENT_REPORTER_TOKEN_TTL = timedelta(hours=env.int("REPORTER_TOKEN_TTL_HOURS", default=24))
# Writes sent with an `Idempotency-Key` (signalements/idempotency.py): their responses
# are kept this long for retries; a retry made while the first request still runs waits
# this many seconds for it (PostgreSQL) before a 409.
IDEMPOTENCY_KEY_TTL = timedelta(hours=env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24))
IDEMPOTENCY_WAIT_SECONDS = env.float("IDEMPOTENCY_WAIT_SECONDS", default=10.0)
# No lost updates (signalements/api/preconditions.py): a PUT, PATCH or transition whose
# `If-Match` is not the report's ETag is a 412; with this on, one without it is a 428.
REQUIRE_IF_MATCH = env.bool("REQUIRE_IF_MATCH", default=False)

# --- Open311 GeoReport v2 (/open311/v2/) ----------------------------------------------
# The jurisdiction this server answers for: when set, a request naming another
# `jurisdiction_id` is a 404 (one naming none, or this one, is served).
OPEN311_JURISDICTION_ID = env.str("OPEN311_JURISDICTION_ID", default="")
# Returned with every service request (`agency_responsible`, `service_notice`); null
# when empty.
OPEN311_AGENCY_RESPONSIBLE = env.str("OPEN311_AGENCY_RESPONSIBLE", default="")
OPEN311_SERVICE_NOTICE = env.str("OPEN311_SERVICE_NOTICE", default="")
# Service discovery (`discovery.{json,xml}`): whom to contact, how to get an API key.
OPEN311_CONTACT = env.str("OPEN311_CONTACT", default="")
OPEN311_KEY_SERVICE = env.str(
    "OPEN311_KEY_SERVICE",
    default="API keys are issued by the administrators of this server.",
)
# Anonymous callers' statistics (`/api/signalements/stats/`) are shared through the
# cache for this many seconds (0: computed on every call); agents and reporters always
# get fresh figures.
SIGNALEMENT_STATS_CACHE_SECONDS = env.int("STATS_CACHE_SECONDS", default=60)

# The report list (signalements/api/pagination.py): its `count` is exact up to this many
# reports (beyond, PostgreSQL's estimate, unless the maintained counters answer or the
# client asks `?count=exact`); page numbers reach at most this many reports deep
# (further: `?cursor=`).
LIST_COUNT_EXACT_MAX = env.int("LIST_COUNT_EXACT_MAX", default=10_000)
LIST_MAX_OFFSET = env.int("LIST_MAX_OFFSET", default=100_000)

# --- Response cache (signalements/api/response_cache.py) ---------------------------------
# Anonymous reads of the report list and detail are answered from memory, keyed by the
# data version that database triggers bump in every write: never stale. Per process,
# at most this many bytes.
RESPONSE_CACHE = env.bool("RESPONSE_CACHE", default=True)
RESPONSE_CACHE_MAX_BYTES = env.int("RESPONSE_CACHE_MAX_BYTES", default=64 * 1024 * 1024)
