import os
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from rest_framework.test import APIClient

from signalements.api.response_cache import ResponseCache
from signalements.models import AGENTS_GROUP
from signalements_project.observability import RequestObserver

from .factories import UserFactory

LOCALE = Path(__file__).resolve().parent.parent / "signalements" / "locale"

# The scale-out tests start a whole cluster of their own (scripts/cluster.sh): they run
# under `make test-cluster`, not in the suite.
collect_ignore = [] if os.environ.get("CLUSTER_TESTS") else ["cluster"]


def pytest_configure(config):
    """The catalogues compiled (`make test` runs `make messages` first; a bare `pytest`
    gets them here): French is the default language, the tests read it. Compiled to a
    temporary file, then moved into place, so that a concurrent run never reads half a
    file."""
    compiled = False
    for po in LOCALE.glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        partial = mo.with_name(f".{mo.name}.{os.getpid()}")
        subprocess.run(["msgfmt", "--check", "-o", str(partial), str(po)], check=True)
        os.replace(partial, mo)
        compiled = True
    if compiled:
        # Django read the catalogues while setting up, before these were compiled: a
        # change of LOCALE_PATHS makes it read them again.
        with override_settings(LOCALE_PATHS=list(settings.LOCALE_PATHS)):
            pass


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache: every test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests create many users: the production hasher would spend seconds on each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _static_files_without_manifest(settings):
    """Production serves hashed static files listed in a manifest that `collectstatic`
    writes; tests render pages without running it."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _media_in_a_temporary_directory(settings, tmp_path):
    """Uploaded photos go to a directory of the test's own, never into the project."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def agent_user(db):
    user = UserFactory(username="agent", is_staff=True)
    user.groups.add(Group.objects.get(name=AGENTS_GROUP))
    return user


@pytest.fixture
def agent_client(agent_user):
    client = APIClient()
    client.force_authenticate(agent_user)
    return client


@pytest.fixture
def superuser(db):
    return UserFactory(username="chef", is_staff=True, is_superuser=True)


@pytest.fixture
def superuser_client(superuser):
    client = APIClient()
    client.force_authenticate(superuser)
    return client


@pytest.fixture
def reporter(db):
    return UserFactory(username="citizen")


@pytest.fixture
def user_client(reporter):
    """A logged-in reporter."""
    client = APIClient()
    client.force_authenticate(reporter)
    return client


@pytest.fixture
def stack(db):
    """The served WSGI stack, as wsgi.py builds it: the observer, the response cache,
    Django (whose request signals keep the test's transaction open, as its test client's
    do)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield RequestObserver(ResponseCache(WSGIHandler(), max_bytes=16 * 1024 * 1024))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
