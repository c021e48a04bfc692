"""Lockout after failed logins, per account and client address.

Every door that checks a password asks here first: the admin's login page, the API's
token login (`POST /api/auth/token/`) and HTTP Basic. After `LOGIN_FAILURE_LIMIT` failed
logins for one account from one client address, that account is refused from that
address for `LOGIN_LOCKOUT_MINUTES`, before any password is checked: the right one is
refused too, so that guessing goes no further. The account from other addresses, and
other accounts from the address, are not affected: nobody can lock a user out of their
own account from elsewhere. A successful login before the limit forgets the failures.
Failures are counted over `LOGIN_LOCKOUT_MINUTES` from the first one.

Counts live in the database (`LoginFailures`, one row per account and address, keyed
by a hash of both): the lockout holds across worker processes and machines whatever the
cache (with the default per-process cache, each of `make serve`'s workers would count
alone, and the limit would be several times `LOGIN_FAILURE_LIMIT`). A failure costs one
small write; a login, one indexed read. Old rows are pruned hourly. The doors say who the
client is (its address, as the throttles read it) and answer a lockout in their own way:
a 429 with `Retry-After` in the API, a message on the admin's page.
"""

import hashlib
import json
import math
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import F, Q
from django.utils.translation import ngettext

from .models import LoginFailures
from .tasks import periodic


def _limit() -> int:
    return settings.LOGIN_FAILURE_LIMIT


def _window() -> timedelta:
    return timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)


def _enabled() -> bool:
    return _limit() > 0 and _window() > timedelta(0)


def _now() -> datetime:
    # From time.time(), which tests move forward.
    return datetime.fromtimestamp(time.time(), tz=UTC)


def _key(username: str, address: str) -> str:
    who = json.dumps([username.casefold(), address])
    return hashlib.sha256(who.encode()).hexdigest()


def locked_for(*, username: str, address: str) -> float | None:
    """Seconds until `username` may try to log in again from `address`; None when it may
    now."""
    if not _enabled():
        return None
    now = _now()
    until = (
        # On the primary, where failures are counted: never a replica behind it.
        LoginFailures.objects.using(DEFAULT_DB_ALIAS)
        .filter(key=_key(username, address), locked_until__gt=now)
        .values_list("locked_until", flat=True)
        .first()
    )
    return None if until is None else (until - now).total_seconds()


def failed(*, username: str, address: str) -> None:
    """One more failed login for `username` from `address`; the one that reaches the limit
    locks the account out from that address."""
    if not _enabled():
        return
    key, now, window = _key(username, address), _now(), _window()
    with transaction.atomic():
        rows = LoginFailures.objects.filter(key=key)
        if not rows.filter(window_ends__gt=now).update(failures=F("failures") + 1):
            # The first failure of a window (or a concurrent one made the row meanwhile).
            if not rows.update(failures=1, window_ends=now + window, locked_until=None):
                try:
                    with transaction.atomic():
                        LoginFailures.objects.create(key=key, failures=1, window_ends=now + window)
                except IntegrityError:
                    rows.update(failures=F("failures") + 1)
        rows.filter(failures__gte=_limit()).update(
            failures=0, window_ends=now, locked_until=now + window
        )


def succeeded(*, username: str, address: str) -> None:
    """A successful login: the failures so far are forgotten (a read when there are none:
    HTTP Basic succeeds on every request)."""
    if not _enabled():
        return
    rows = LoginFailures.objects.using(DEFAULT_DB_ALIAS).filter(
        key=_key(username, address), failures__gt=0
    )
    if rows.exists():
        rows.delete()


@periodic(every=timedelta(hours=1))
def prune_login_failures() -> int:
    """Rows whose window and lockout are over. Returns how many were deleted."""
    now = _now()
    over = Q(window_ends__lte=now) & (Q(locked_until__isnull=True) | Q(locked_until__lte=now))
    return LoginFailures.objects.filter(over).delete()[0]


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
