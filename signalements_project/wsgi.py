"""WSGI entry point (`make serve`'s server: signalements_project.wsgi:application).

Django, behind the REST API's response cache (RESPONSE_CACHE, on by default), which
answers repeated anonymous reads of the report list and detail without Django, never
stale (see signalements/api/response_cache.py)."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "signalements_project.settings")

application = get_wsgi_application()

if settings.RESPONSE_CACHE:
    from signalements.api.response_cache import ResponseCache

    application = ResponseCache(application)
