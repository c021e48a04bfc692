"""Forwarded headers are believed only when they come from our own reverse proxy.

`X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Forwarded-Port`,
`Forwarded` and `X-Real-IP` say who the client is and how it connected; anyone can send
them. They are kept when the server is `BEHIND_PROXY` and the request comes from one of
`FORWARDED_ALLOW_IPS` (addresses or networks; `*` for any, when the network makes sure
only the proxy can connect); otherwise they are removed before anything reads them: the
throttles (which read the client's address in `X-Forwarded-For`, `NUM_PROXIES` deep),
HTTPS detection (`SECURE_PROXY_SSL_HEADER`), absolute URLs.
"""

import functools
import ipaddress

from django.conf import settings

FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_FORWARDED",
    "HTTP_X_REAL_IP",
)


@functools.lru_cache(maxsize=8)
def trusted_networks(values: tuple[str, ...]) -> list | None:
    """The networks of FORWARDED_ALLOW_IPS; None for `*` (any)."""
    if "*" in values:
        return None
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip()]


class TrustedProxyMiddleware:
    """Settings are read at each request (cheap), so that they can change in tests."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not self.from_our_proxy(request.META.get("REMOTE_ADDR", "")):
            for name in FORWARDED_HEADERS:
                request.META.pop(name, None)
        return self.get_response(request)

    def from_our_proxy(self, address: str) -> bool:
        if not settings.BEHIND_PROXY:
            return False
        networks = trusted_networks(tuple(settings.FORWARDED_ALLOW_IPS))
        if networks is None:
            return True
        try:
            client = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(client in network for network in networks)
