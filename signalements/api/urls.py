"""The REST API's routes (included under /api/ by the project)."""

from django.urls import path
from rest_framework import permissions, routers

from . import exports, views


class Router(routers.DefaultRouter):
    """DRF's router, whose browsable index of the API is open to everyone."""

    class APIRootView(routers.APIRootView):
        permission_classes = [permissions.AllowAny]


router = Router()
router.register("signalements", views.SignalementViewSet, basename="signalement")
router.register("categories", views.CategoryViewSet, basename="category")

urlpatterns = [
    path("auth/token/", views.AuthTokenView.as_view(), name="auth-token"),
    path("me/", views.MeView.as_view(), name="me"),
    path(
        "me/erase-contact-data/",
        views.EraseContactDataView.as_view(),
        name="me-erase-contact-data",
    ),
    # Before the router: its `signalements/{pk}.{format}` route would match this path.
    path("signalements/export.csv", exports.export_csv_view, name="signalement-export-csv"),
    *router.urls,
]
