"""Rate limits, with rates from settings (`THROTTLE_*` environment variables; an empty
value disables one). Counters live in Django's cache (`CACHE_URL`): a shared cache makes
the limits hold across worker processes and machines. And the API's side of the lockout
after failed logins (`signalements/lockout.py`): who the client is, and the 429."""

import hashlib
import math

from rest_framework import exceptions, permissions
from rest_framework.settings import api_settings
from rest_framework.throttling import (
    AnonRateThrottle,
    BaseThrottle,
    SimpleRateThrottle,
    UserRateThrottle,
)

from signalements import lockout


class SettingsRateMixin:
    def get_rate(self):
        # Read at request time (not import time), so that settings overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class AtomicWindowMixin:
    """Counts requests with the cache's atomic operations (Redis: SETNX and INCR), in a
    window that opens with the first request and lasts the rate's period. DRF's own
    throttles read the history, decide, then write it back: two workers could both
    take the last place (measured: 6 creates let through at 5/minute by 4 workers)."""

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        return self.count(self.key) <= self.num_requests

    def count(self, key: str) -> int:
        """One more in `key`'s window; how many it holds now."""
        self.now = self.timer()
        started = f"{key}:started"
        self.cache.add(started, self.now, self.duration)
        self.cache.add(key, 0, self.duration)
        try:
            count = self.cache.incr(key)
        except ValueError:  # the window closed between the two calls: a new one
            self.cache.add(started, self.now, self.duration)
            self.cache.add(key, 1, self.duration)
            count = 1
        self.window_started = self.cache.get(started, self.now)
        return count

    def wait_for(self, key: str) -> float | None:
        """Seconds until `key`'s window closes when it is full, else None (nothing
        counted)."""
        if self.cache.get(key, 0) < self.num_requests:
            return None
        now = self.timer()
        return max(0.0, self.cache.get(f"{key}:started", now) + self.duration - now)

    def wait(self):
        return max(0.0, self.window_started + self.duration - self.now)


class AnonymousCreateThrottle(AtomicWindowMixin, SettingsRateMixin, AnonRateThrottle):
    """How many reports one anonymous client (by IP address) may create."""

    scope = "anon_create"

    def allow_request(self, request, view):
        if request.method != "POST":
            return True
        return super().allow_request(request, view)


class AnonymousExpensiveReadThrottle(AtomicWindowMixin, SettingsRateMixin, AnonRateThrottle):
    """How many costly reads one anonymous client (by IP address) may make: statistics,
    and searches in the text of every report. (Repeated anonymous reads of the list and
    of a report are answered from memory before they get here.)"""

    scope = "anon_expensive_read"

    def allow_request(self, request, view):
        if request.user.is_authenticated or request.method not in permissions.SAFE_METHODS:
            return True
        if getattr(view, "action", None) != "stats" and "search" not in request.query_params:
            return True
        return super().allow_request(request, view)


class UserWriteThrottle(AtomicWindowMixin, SettingsRateMixin, UserRateThrottle):
    """How many writes (POST, PUT, PATCH, DELETE) one logged-in user may make."""

    scope = "user_write"

    def allow_request(self, request, view):
        if request.method in permissions.SAFE_METHODS or not request.user.is_authenticated:
            return True
        return super().allow_request(request, view)


class LoginThrottle(AtomicWindowMixin, SettingsRateMixin, SimpleRateThrottle):
    """How many login attempts (token requests) one IP address may make."""

    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def client_address(request) -> str:
    """The client's address, as the throttles read it (`NUM_PROXIES` deep in
    `X-Forwarded-For` behind a proxy, else the connection's)."""
    return BaseThrottle().get_ident(request) or ""


class LoginLockedOut(exceptions.Throttled):
    """A 429 with `Retry-After`: too many failed logins for this account from this
    address (`signalements/lockout.py`)."""

    def __init__(self, wait: float):
        super().__init__(detail=lockout.message(wait))
        self.wait = math.ceil(wait)


def check_login_lockout(request, username: str) -> None:
    """Raise LoginLockedOut when `username` is locked out from the client's address."""
    wait = lockout.locked_for(username=username, address=client_address(request))
    if wait is not None:
        raise LoginLockedOut(wait)


def login_failed(request, username: str) -> None:
    lockout.failed(username=username, address=client_address(request))


def login_succeeded(request, username: str) -> None:
    lockout.succeeded(username=username, address=client_address(request))


class FailedAuthenticationThrottle(AtomicWindowMixin, SettingsRateMixin, SimpleRateThrottle):
    """Failed password checks (HTTP Basic), per client address and per username, at the
    login rate, counted as the other throttles count: past it, no more password is
    checked until the window closes."""

    scope = "login"

    def keys(self, request, username: str) -> list[str]:
        return [
            self.cache_format % {"scope": "auth_failed_ip", "ident": self.get_ident(request)},
            self.cache_format
            % {
                "scope": "auth_failed_user",
                # Hashed: a username may hold any character, a cache key may not.
                "ident": hashlib.sha256(username.casefold().encode()).hexdigest(),
            },
        ]

    def wait_before_trying(self, request, username: str) -> float | None:
        """Seconds to wait when the limit is reached, else None."""
        if self.rate is None:
            return None
        waits = [self.wait_for(key) for key in self.keys(request, username)]
        waits = [wait for wait in waits if wait is not None]
        return max(waits) if waits else None

    def failed(self, request, username: str) -> None:
        if self.rate is None:
            return
        for key in self.keys(request, username):
            self.count(key)


class SubscribeThrottle(AtomicWindowMixin, SettingsRateMixin, SimpleRateThrottle):
    """How many follows and alerts may be asked for (each sends a confirmation email):
    per client IP address, as a throttle; per email address, counted apart by the view
    once it has read the address (`wait_for_address`), so that nobody floods one
    mailbox from many addresses."""

    scope = "subscribe"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def wait_for_address(self, email: str) -> float | None:
        """Count one more request for `email`; seconds to wait if it is one too many,
        else None."""
        if self.rate is None:
            return None
        key = self.cache_format % {
            "scope": f"{self.scope}_address",
            "ident": hashlib.sha256(email.strip().casefold().encode()).hexdigest(),
        }
        if self.count(key) <= self.num_requests:
            return None
        return self.wait()
