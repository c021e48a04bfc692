"""Rate limits. Counters live in Django's cache (`CACHE_URL`): a shared cache makes
the limits hold across worker processes and machines."""

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle


class AnonymousCreateThrottle(AnonRateThrottle):
    """Limits how many reports one anonymous client (by IP address) may create.
    The rate is `THROTTLE_ANON_CREATE`; an empty value disables the limit."""

    scope = "anon_create"

    def get_rate(self):
        # Read at request time (not import time), so that settings overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        if request.method != "POST":
            return True
        return super().allow_request(request, view)
