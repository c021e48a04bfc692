"""Open311 credentials: the `api_key` form field of a POST, and nothing else (no
session, token or password), so that a browser's session cookie can never write through
Open311 and CSRF does not concern these views. Keys are managed in the admin."""

from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions, permissions
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from signalements.models import ApiKey, hash_api_key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """A POST authenticates with the `api_key` of its form body: the request's user is
    the key's user and `request.auth` the `ApiKey`. A missing, unknown or revoked key, or
    one whose user is inactive, is a 403 (no `WWW-Authenticate` scheme exists for it).
    Other methods read public data and carry no credentials."""

    def authenticate(self, request):
        if request.method != "POST":
            return None
        values = request.data.getlist("api_key") if hasattr(request.data, "getlist") else []
        if len(values) > 1:
            raise exceptions.ParseError({"api_key": [_("Give one value.")]})
        raw_key = values[0].strip() if values else ""
        if not raw_key:
            raise exceptions.AuthenticationFailed({"api_key": [_("This field is required.")]})
        api_key = (
            ApiKey.objects.select_related("user").filter(key_hash=hash_api_key(raw_key)).first()
        )
        if api_key is None or not api_key.is_usable():
            raise exceptions.AuthenticationFailed({"api_key": [_("Invalid or revoked key.")]})
        now = timezone.now()
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
        return api_key.user, api_key


class HasApiKey(permissions.BasePermission):
    """Reads are public; writes need an API key."""

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or isinstance(request.auth, ApiKey)


class ApiKeyThrottle(SimpleRateThrottle):
    """How many service requests one API key may create (`THROTTLE_OPEN311_CREATE`)."""

    scope = "open311_create"

    def get_rate(self):
        # Read at request time (not import time), so that settings overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        if request.method != "POST" or not isinstance(request.auth, ApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"key-{request.auth.pk}"}
