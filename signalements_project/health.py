"""Probes for process managers, load balancers and orchestrators.

- `GET /healthz` (liveness): 200 while the process answers; touches no database, so
  that a database outage does not get healthy servers restarted.
- `GET /readyz` (readiness): 200 when the database and the cache answer, else 503
  naming which does not: take this server out of the pool until they are back. With a
  read replica (DATABASE_REPLICA_URL), `checks.replica` says how it is ("ok", "lagging:
  12.3 s, reads on the primary", "error: OperationalError, reads on the primary"); still
  200 when only the replica is unwell: the primary serves the reads meanwhile
  (signalements/replicas.py).
"""

import time

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from signalements import replicas


@never_cache
@require_safe
def alive(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def ready(request):
    checks = {"database": _check(_database), "cache": _check(_cache)}
    healthy = all(result == "ok" for result in checks.values())
    if replicas.configured():
        checks["replica"] = replicas.status()
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


def _check(probe) -> str:
    try:
        probe()
    except Exception as error:  # any failure means not ready; say which kind
        return f"error: {type(error).__name__}"
    return "ok"


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache() -> None:
    key, value = "signalements:readyz", str(time.monotonic())
    cache.set(key, value, 10)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not keep a value")
