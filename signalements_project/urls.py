"""Project routes: the three doors onto the domain (the REST API with its documentation,
Open311, the admin), uploaded photos, and which door answers the errors raised outside
the views (an unknown URL, a crash in a middleware)."""

import re

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views import defaults

from signalements import photo_access
from signalements.api import errors as api_errors
from signalements.open311 import errors as open311_errors

from . import health, observability

urlpatterns = [
    path("healthz", health.alive, name="healthz"),
    path("readyz", health.ready, name="readyz"),
    # Prometheus' scrapes, with METRICS_TOKEN (a 404 without it).
    path("metrics", observability.metrics_view, name="metrics"),
    path("api/", include("signalements.api.urls")),
    path("open311/v2/", include("signalements.open311.urls")),
    # ADMIN_URL: admin/ by default (settings.py, "Security").
    path(settings.ADMIN_URL, admin.site.urls),
    # The admin's choice of language (Django's set_language view, a POST).
    path("i18n/", include("django.conf.urls.i18n")),
]


# Uploaded photos, always through Django: it checks who may have a hidden report's photo
# (a signed URL, or a logged-in user who may see the report), then streams the file or
# hands it to nginx or to the storage (signalements/photo_access.py).
urlpatterns.append(
    re_path(
        rf"^{re.escape(photo_access.url_prefix().lstrip('/'))}(?P<path>.+)$",
        photo_access.serve,
        name="photo",
    )
)


# Errors outside the views: the API's JSON shape under /api/, Open311's (JSON or XML, by
# suffix) under /open311/, and Django's HTML pages elsewhere.


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _is_open311(request) -> bool:
    return request.path.startswith("/open311/")


def bad_request(request, exception):
    if _is_open311(request):
        return open311_errors.bad_request(request, exception)
    if _is_api(request):
        return api_errors.bad_request(request, exception)
    return defaults.bad_request(request, exception)


def not_found(request, exception):
    if _is_open311(request):
        return open311_errors.not_found(request, exception)
    if _is_api(request):
        return api_errors.not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_open311(request):
        return open311_errors.server_error(request)
    if _is_api(request):
        return api_errors.server_error(request)
    return defaults.server_error(request)


handler400 = bad_request
handler404 = not_found
handler500 = server_error
