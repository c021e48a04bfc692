"""Headers that protect the server's users, set on every response (the Security section of
settings.py holds the settings; README, "Security").

- `ContentSecurityPolicyMiddleware`: django-csp's middleware. Pages (HTML: the admin,
  Swagger UI, Redoc, DRF's browsable API) get `CONTENT_SECURITY_POLICY`, with the admin
  maps' tile server and the photos' host added to `img-src`; every other response (JSON,
  XML, CSV, JavaScript) gets `default-src 'none'; frame-ancestors 'none'`, a constant:
  nothing in it may load anything or be framed.
- `CorsMiddleware`: django-cors-headers' middleware, off (not even `Vary: Origin`)
  while `CORS_ALLOWED_ORIGINS` is empty.
- `PrivateResponseMiddleware`: `Cache-Control: no-store` on the responses that may carry
  private data, so that no browser or proxy keeps them.
"""

import functools
from urllib.parse import urlsplit

from corsheaders.conf import conf as cors_settings
from corsheaders.middleware import CorsMiddleware as BaseCorsMiddleware
from csp.constants import HEADER
from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings

# Responses that are not pages: they run nothing and show nothing, and nobody frames them.
NOT_A_PAGE_POLICY = "default-src 'none'; frame-ancestors 'none'"


@functools.lru_cache(maxsize=8)
def image_origins(*urls: str) -> tuple[str, ...]:
    """The origins of these absolute URLs or URL templates, for `img-src`: the scheme
    and host (a Leaflet template's subdomain placeholder, `https://{s}.tile.…`, is a
    wildcard). Relative URLs are this server's ('self'), and give nothing."""
    origins = []
    for url in urls:
        parts = urlsplit(url)
        if not parts.netloc:
            continue
        host = parts.netloc.replace("{s}", "*")
        origins.append(f"{parts.scheme}://{host}" if parts.scheme else host)
    return tuple(dict.fromkeys(origins))


def in_settings_order(policy: str) -> str:
    """The policy's directives in the order of CONTENT_SECURITY_POLICY (django-csp
    writes them in a set's order, which changes from one process to the next)."""
    order = list(settings.CONTENT_SECURITY_POLICY["DIRECTIVES"])

    def rank(directive: str) -> int:
        name = directive.split(" ", 1)[0]
        return order.index(name) if name in order else len(order)

    return "; ".join(sorted(policy.split("; "), key=rank))


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the pages' image hosts from the settings, and a
    constant policy for what is not a page (see the module's documentation)."""

    def process_response(self, request, response):
        is_page = response.get("Content-Type", "").startswith("text/html")
        if is_page or HEADER in response or getattr(response, "_csp_exempt", False):
            response = super().process_response(request, response)
            if HEADER in response:
                response[HEADER] = in_settings_order(response[HEADER])
            return response
        response[HEADER] = NOT_A_PAGE_POLICY
        return response

    def get_policy_parts(self, request, response, report_only=False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        images = image_origins(settings.ADMIN_MAP_TILES_URL, settings.MEDIA_URL)
        images += tuple(settings.CSP_EXTRA_IMG_SRC)
        if images:
            update = dict(parts.update or {})
            update["img-src"] = (*update.get("img-src", ()), *images)
            parts.update = update
        return parts


class CorsMiddleware(BaseCorsMiddleware):
    """django-cors-headers' middleware: CORS headers for the origins of
    `CORS_ALLOWED_ORIGINS` on the paths of `CORS_URLS_REGEX`; none at all while that
    list is empty (the default: the API is called from servers and apps, not from other
    sites' pages)."""

    def is_enabled(self, request) -> bool:
        return bool(cors_settings.CORS_ALLOWED_ORIGINS) and super().is_enabled(request)


# Pages reached through a secret link (emailed): whoever has the link sees them, nobody
# else, and no cache should keep them.
SECRET_LINK_VIEWS = frozenset(
    {"feedback-link", "subscription-confirm", "subscription-unsubscribe", "contact-confirm"}
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CREDENTIAL_HEADERS = ("HTTP_AUTHORIZATION", "HTTP_X_REPORTER_TOKEN")


class PrivateResponseMiddleware:
    """`Cache-Control: no-store` on every response that may carry private data:

    - the answers to a request with credentials (a token, HTTP Basic, a reporter token,
      a logged-in session): an agent's list carries contact fields and internal notes,
      `/api/me/` the caller's address, the CSV export everything;
    - the answers to writes (a token from `POST /api/auth/token/`, a new report's
      reporter token, an Open311 request's);
    - the pages of emailed secret links.

    Anonymous reads stay cacheable (their ETags and the response cache work as before).
    Static files never come here (whitenoise answers them first); the admin's pages are
    `never_cache` already."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if self.is_private(request) and "no-store" not in response.get("Cache-Control", ""):
            response["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def is_private(request) -> bool:
        if request.method not in SAFE_METHODS:
            return True
        if any(name in request.META for name in CREDENTIAL_HEADERS):
            return True
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                return True
        match = request.resolver_match
        return match is not None and match.url_name in SECRET_LINK_VIEWS
