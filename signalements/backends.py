"""Authentication backends."""

from django.contrib.auth import backends


class ModelBackend(backends.ModelBackend):
    """No user name contains NUL, and PostgreSQL cannot even look one up (a 500 for
    HTTP Basic credentials such as base64("\\x00:x"))."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if isinstance(username, str) and "\x00" in username:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
