"""WSGI entry point (`make serve`'s server: signalements_project.wsgi:application).

Django, behind the REST API's response cache (RESPONSE_CACHE, on by default), which
answers repeated anonymous reads of the report list and detail without Django, never
stale (see signalements/api/response_cache.py), inside the observer of every request
(request id, log line, metrics: signalements_project/observability.py)."""

import gc
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "signalements_project.settings")

application = get_wsgi_application()

if settings.RESPONSE_CACHE:
    from signalements.api.response_cache import ResponseCache

    application = ResponseCache(application)

# Outside the cache, so that every request is seen: its request id (X-Request-ID), its
# log line and its metrics (signalements_project/observability.py).
from signalements_project.observability import RequestObserver  # noqa: E402

application = RequestObserver(application)

# What a loaded Django is made of (modules, settings, URL patterns, serializers' fields)
# lives as long as the process: out of the collector's sight, a full collection no longer
# walks it. At a million reports the statistics' full collections took 70-90 ms each (the
# p99 of all reports' statistics: 108 ms, against a p50 of 35); frozen, 8 ms (p99 45).
gc.freeze()
