import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from .factories import UserFactory


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache: every test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _static_files_without_manifest(settings):
    """Production serves hashed static files listed in a manifest that `collectstatic`
    writes; tests render pages without running it."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def staff_user(db):
    return UserFactory(username="agent", is_staff=True)


@pytest.fixture
def staff_client(staff_user):
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


@pytest.fixture
def user_client(db):
    client = APIClient()
    client.force_authenticate(UserFactory(username="citizen"))
    return client
