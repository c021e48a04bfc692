"""When the database cannot be reached (PostgreSQL stopped or restarting, the network to
it down, SQLite's lock held past its busy timeout), every door answers a 503 in its own
error shape, with `Retry-After`, instead of a 500 and a traceback in the log. The server
itself keeps running: the next request opens a new connection (CONN_HEALTH_CHECKS), so
service resumes by itself when the database is back. A PostgreSQL connection attempt
gives up after DATABASE_CONNECT_TIMEOUT seconds.
"""

from django.db import InterfaceError, OperationalError
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status

RETRY_AFTER_SECONDS = 5


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _(
        "The service is unavailable for a moment (its database cannot be reached). "
        "Retry in a few seconds."
    )
    default_code = "service_unavailable"
    wait = RETRY_AFTER_SECONDS  # Retry-After


def is_unavailability(error: BaseException | None) -> bool:
    """Whether an exception says the database cannot be reached (or is locked), rather
    than a mistake in a query."""
    return isinstance(error, OperationalError | InterfaceError)
