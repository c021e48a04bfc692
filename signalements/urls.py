"""The REST API's routes (included under /api/ by the project)."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("signalements", views.SignalementViewSet, basename="signalement")
router.register("categories", views.CategoryViewSet, basename="category")

urlpatterns = [
    path("auth/token/", views.AuthTokenView.as_view(), name="auth-token"),
    path("me/", views.MeView.as_view(), name="me"),
    *router.urls,
]
