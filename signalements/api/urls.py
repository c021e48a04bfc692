"""The REST API's routes, included under /api/ by the project: the router of the
viewsets, the account endpoints, the CSV export, and the OpenAPI schema with its
documentation pages."""

from django.urls import path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework import permissions, routers

from . import views
from .views import routing as routing_views
from .views.accounts import ApiTokenViewSet
from .views.contact import ContactConfirmView
from .views.subscriptions import AlertsView, ConfirmView, UnsubscribeView


class Router(routers.DefaultRouter):
    """DRF's router, whose browsable index of the API is open to everyone."""

    class APIRootView(routers.APIRootView):
        permission_classes = [permissions.AllowAny]


class RedocView(SpectacularRedocView):
    """Redoc, with no request beyond this server (no Google Fonts, no CDN logo), started
    by a script file rather than an inline script (the Content-Security-Policy allows
    none)."""

    template_name = "signalements/api/redoc.html"


router = Router()
router.register("signalements", views.SignalementViewSet, basename="signalement")
router.register("categories", views.CategoryViewSet, basename="category")
router.register("webhooks", views.WebhookEndpointViewSet, basename="webhook")
# The reporters' verdicts, for agents: the list and the decisions (`feedback/{id}/accept/`).
router.register("feedback", views.FeedbackViewSet, basename="feedback")
router.register("departments", routing_views.DepartmentViewSet, basename="department")
router.register("areas", routing_views.AreaViewSet, basename="area")
router.register("service-levels", routing_views.ServiceLevelViewSet, basename="service-level")
router.register("routing-rules", routing_views.RoutingRuleViewSet, basename="routing-rule")
router.register("reply-templates", routing_views.ReplyTemplateViewSet, basename="reply-template")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's start script comes from `docs/?script` (the Content-Security-Policy
    # allows no inline script).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc/", RedocView.as_view(url_name="schema"), name="redoc"),
    path("auth/token/", views.AuthTokenView.as_view(), name="auth-token"),
    # The caller's own API tokens: the list, and one revoked by its prefix.
    path("auth/tokens/", ApiTokenViewSet.as_view({"get": "list"}), name="auth-tokens-list"),
    re_path(
        rf"^auth/tokens/(?P<prefix>{ApiTokenViewSet.lookup_value_regex})/$",
        ApiTokenViewSet.as_view({"delete": "destroy"}),
        name="auth-tokens-detail",
    ),
    path("me/", views.MeView.as_view(), name="me"),
    path(
        "me/erase-contact-data/",
        views.EraseContactDataView.as_view(),
        name="me-erase-contact-data",
    ),
    # Follows and alerts: an alert asked for, and the links of their emails.
    path("alerts/", AlertsView.as_view(), name="alert-list"),
    path(
        "subscriptions/confirm/<str:token>/",
        ConfirmView.as_view(),
        name="subscription-confirm",
    ),
    path(
        "subscriptions/unsubscribe/<str:token>/",
        UnsubscribeView.as_view(),
        name="subscription-unsubscribe",
    ),
    # The link of a report's first email that confirms its contact address.
    path("contact/confirm/<str:token>/", ContactConfirmView.as_view(), name="contact-confirm"),
    # The reporter's verdict through the "resolved" email's signed link (no login).
    path("feedback/<str:token>/", views.FeedbackLinkView.as_view(), name="feedback-link"),
    # Before the router: its `signalements/{pk}.{format}` route would match this path.
    path("signalements/export.csv", views.export_csv_view, name="signalement-export-csv"),
    *router.urls,
]
