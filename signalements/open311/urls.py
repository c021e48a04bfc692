"""Open311 GeoReport v2 routes (included under /open311/v2/ by the project). Every
resource has a `.json` and a `.xml` form; anything else here is an Open311 404."""

from django.urls import re_path

from . import views

app_name = "open311"

FORMAT = r"\.(?P<format>json|xml)$"
CODE = r"(?P<service_code>[-a-zA-Z0-9_]+)"
REQUEST_ID = r"(?P<service_request_id>[-a-zA-Z0-9_]+)"

urlpatterns = [
    re_path(rf"^discovery{FORMAT}", views.DiscoveryView.as_view(), name="discovery"),
    re_path(rf"^services{FORMAT}", views.ServiceListView.as_view(), name="services"),
    re_path(
        rf"^services/{CODE}{FORMAT}",
        views.ServiceDefinitionView.as_view(),
        name="service-definition",
    ),
    re_path(rf"^requests{FORMAT}", views.ServiceRequestListView.as_view(), name="requests"),
    re_path(rf"^requests/{REQUEST_ID}{FORMAT}", views.ServiceRequestView.as_view(), name="request"),
    re_path(r"^$", views.unknown_url, name="root"),
    re_path(r"", views.unknown_url),
]
