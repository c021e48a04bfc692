"""Project routes: the three doors onto the domain (the REST API with its documentation,
Open311, the admin), uploaded photos, and which door answers the errors raised outside
the views (an unknown URL, a crash in a middleware)."""

import re

from django.conf import settings
from django.contrib import admin
from django.http import Http404
from django.urls import include, path, re_path
from django.views import defaults
from django.views.static import serve

from signalements.api import errors as api_errors
from signalements.open311 import errors as open311_errors

from . import health

urlpatterns = [
    path("healthz", health.alive, name="healthz"),
    path("readyz", health.ready, name="readyz"),
    path("api/", include("signalements.api.urls")),
    path("open311/v2/", include("signalements.open311.urls")),
    path("admin/", admin.site.urls),
    # The admin's choice of language (Django's set_language view, a POST).
    path("i18n/", include("django.conf.urls.i18n")),
]


def serve_media(request, path):
    """Uploaded photos, from MEDIA_ROOT: in development, or on a single server without
    a proxy (SERVE_MEDIA). Otherwise the proxy or the storage (e.g. S3) serves them."""
    if not settings.SERVE_MEDIA:
        raise Http404(path)
    return serve(request, path, document_root=settings.MEDIA_ROOT)


if not re.match(r"^(https?:)?//", settings.MEDIA_URL):  # not served from another host
    urlpatterns.append(
        re_path(rf"^{re.escape(settings.MEDIA_URL.lstrip('/'))}(?P<path>.+)$", serve_media)
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
