"""The REST API's routes (included under /api/ by the project)."""

from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("signalements", views.SignalementViewSet, basename="signalement")
router.register("categories", views.CategoryViewSet, basename="category")

urlpatterns = router.urls
