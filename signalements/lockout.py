"""Lockout after failed logins, per account and client address.

Every door that checks a password asks here first: the admin's login page, the API's
token login (`POST /api/auth/token/`) and HTTP Basic. After `LOGIN_FAILURE_LIMIT` failed
logins for one account from one client address, that account is refused from that
address for `LOGIN_LOCKOUT_MINUTES`, before any password is checked: the right one is
refused too, so that guessing goes no further. The account from other addresses, and
other accounts from the address, are not affected: nobody can lock a user out of their
own account from elsewhere. A successful login before the limit forgets the failures.
Failures are counted over `LOGIN_LOCKOUT_MINUTES` from the first one.

Counts live in Django's cache (`CACHE_URL`), as the throttles' do: no database write per
failure, and a shared cache (Redis) makes them hold across workers and machines. The
doors say who the client is (its address, as the throttles read it) and answer a lockout
in their own way: a 429 with `Retry-After` in the API, a message on the admin's page.
"""

import hashlib
import json
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import ngettext


def _limit() -> int:
    return settings.LOGIN_FAILURE_LIMIT


def _seconds() -> int:
    return settings.LOGIN_LOCKOUT_MINUTES * 60


def _enabled() -> bool:
    return _limit() > 0 and _seconds() > 0


def _key(kind: str, username: str, address: str) -> str:
    # Hashed: a username may hold any character, a cache key may not.
    who = json.dumps([username.casefold(), address])
    return f"login_{kind}_{hashlib.sha256(who.encode()).hexdigest()}"


def locked_for(*, username: str, address: str) -> float | None:
    """Seconds until `username` may try to log in again from `address`; None when it may
    now."""
    if not _enabled():
        return None
    until = cache.get(_key("locked", username, address))
    if until is None:
        return None
    left = until - time.time()
    return left if left > 0 else None


def failed(*, username: str, address: str) -> None:
    """One more failed login for `username` from `address`; the one that reaches the limit
    locks the account out from that address."""
    if not _enabled():
        return
    key, seconds = _key("failures", username, address), _seconds()
    cache.add(key, 0, seconds)
    try:
        failures = cache.incr(key)
    except ValueError:  # the count expired between the two calls: a new one
        cache.add(key, 1, seconds)
        failures = 1
    if failures >= _limit():
        cache.set(_key("locked", username, address), time.time() + seconds, seconds)
        cache.delete(key)


def succeeded(*, username: str, address: str) -> None:
    """A successful login: the failures so far are forgotten."""
    if _enabled():
        cache.delete(_key("failures", username, address))


def message(wait: float) -> str:
    """What a locked-out client is told, with the minutes left."""
    minutes = max(1, math.ceil(wait / 60))
    return ngettext(
        "Too many failed login attempts for this account from your address: try again in "
        "%(minutes)d minute.",
        "Too many failed login attempts for this account from your address: try again in "
        "%(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}
