"""Project routes: the REST API and its documentation, Open311, and the admin."""

import re

from django.conf import settings
from django.contrib import admin
from django.http import Http404
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from signalements.errors import bad_request, json_not_found, json_server_error

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/", include("signalements.urls")),
    path("open311/v2/", include("signalements.open311.urls")),
    path("admin/", admin.site.urls),
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

handler400 = bad_request
handler404 = json_not_found
handler500 = json_server_error
