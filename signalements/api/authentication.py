"""HTTP Basic authentication, with failed attempts limited.

Each attempt costs a password hash (PBKDF2, a quarter of a second of CPU): unlimited,
nine guesses a second keep two workers busy, and a password can be guessed at leisure.
Failed attempts are counted per client address and per username (`THROTTLE_LOGIN`, as
for token requests); past the limit, a 429 answers before any password is checked, until
the oldest failure leaves the window. Tokens and sessions are the recommended ways in;
Basic stays for the scripts that use it.
"""

from drf_spectacular.authentication import BasicScheme
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication

from .throttling import FailedAuthenticationThrottle


class ThrottledBasicAuthentication(BasicAuthentication):
    def authenticate_credentials(self, userid, password, request=None):
        throttle = FailedAuthenticationThrottle()
        if request is not None:
            wait = throttle.wait_before_trying(request, userid)
            if wait is not None:
                raise exceptions.Throttled(wait)
        try:
            return super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            if request is not None:
                throttle.failed(request, userid)
            raise


class ThrottledBasicScheme(BasicScheme):
    """The OpenAPI security scheme of HTTP Basic, for this subclass (drf-spectacular
    registers an extension on being defined)."""

    target_class = ThrottledBasicAuthentication
