"""Rate limits, with rates from settings (`THROTTLE_*` environment variables; an empty
value disables one). Counters live in Django's cache (`CACHE_URL`): a shared cache makes
the limits hold across worker processes and machines."""

from rest_framework import permissions
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


class SettingsRateMixin:
    def get_rate(self):
        # Read at request time (not import time), so that settings overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class AnonymousCreateThrottle(SettingsRateMixin, AnonRateThrottle):
    """How many reports one anonymous client (by IP address) may create."""

    scope = "anon_create"

    def allow_request(self, request, view):
        if request.method != "POST":
            return True
        return super().allow_request(request, view)


class UserWriteThrottle(SettingsRateMixin, UserRateThrottle):
    """How many writes (POST, PUT, PATCH, DELETE) one logged-in user may make."""

    scope = "user_write"

    def allow_request(self, request, view):
        if request.method in permissions.SAFE_METHODS or not request.user.is_authenticated:
            return True
        return super().allow_request(request, view)


class LoginThrottle(SettingsRateMixin, SimpleRateThrottle):
    """How many login attempts (token requests) one IP address may make."""

    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
