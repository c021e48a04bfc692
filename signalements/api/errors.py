"""The REST API's errors, all in drf-standardized-errors' shape:
`{"type": "client_error", "errors": [{"code", "detail", "attr"}]}`. Raised in the views
(the exception handler below), or outside them under /api/ (an unknown URL, a crash in a
middleware: `not_found` and `server_error`, which the project's URL configuration calls
for paths under /api/)."""

import sys

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import JsonResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_standardized_errors.handler import ExceptionHandler as StandardizedExceptionHandler
from rest_framework import exceptions, status

from signalements import availability


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with the current state of the resource.")
    default_code = "conflict"


# Errors in one answer, at most: a client that sends thousands of wrong values gets the
# first ones (enough to fix and send again), not megabytes of them.
MAX_ERRORS = 100


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "request_too_large"


class ExceptionHandler(StandardizedExceptionHandler):
    """drf-standardized-errors' handler, with Django's refusals of a request body (too
    large, too many fields or files: SuspiciousOperation) as the 400 they are, where
    they would otherwise be an unhandled exception, a 500; and at most MAX_ERRORS
    errors in an answer."""

    def with_expected_media_types(self, exc: exceptions.UnsupportedMediaType):
        """A 415 that says which content types the operation takes."""
        view = self.context.get("view")
        expected = [parser.media_type for parser in view.get_parsers()] if view else []
        if not expected:
            return exc
        given = self.context["request"].content_type or "none"
        detail = gettext('Unsupported media type "%(given)s" in request: send %(expected)s.') % {
            "given": given,
            "expected": gettext(" or ").join(expected),
        }
        return exceptions.UnsupportedMediaType(given, detail=detail)

    def format_exception(self, exc):
        data = super().format_exception(exc)
        if len(data.get("errors", ())) > MAX_ERRORS:
            data["errors"] = data["errors"][:MAX_ERRORS]
        return data

    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if availability.is_unavailability(exc):
            return availability.DatabaseUnavailable()
        if isinstance(exc, exceptions.UnsupportedMediaType):
            return self.with_expected_media_types(exc)
        if isinstance(exc, RequestDataTooBig):
            return RequestTooLarge()
        if isinstance(exc, SuspiciousOperation):
            return exceptions.ParseError(
                gettext("The request is malformed: %(error)s") % {"error": exc}
            )
        return super().convert_known_exceptions(exc)


def _error_body(error_type: str, code: str, detail: str) -> dict:
    return {"type": error_type, "errors": [{"code": code, "detail": detail, "attr": None}]}


def not_found(request, exception=None) -> JsonResponse:
    return JsonResponse(_error_body("client_error", "not_found", gettext("Not found.")), status=404)


def server_error(request) -> JsonResponse:
    if availability.is_unavailability(sys.exc_info()[1]):  # outside the views
        return service_unavailable(request)
    body = _error_body("server_error", "error", gettext("A server error occurred."))
    return JsonResponse(body, status=500)


def service_unavailable(request) -> JsonResponse:
    unavailable = availability.DatabaseUnavailable
    body = _error_body("server_error", unavailable.default_code, str(unavailable.default_detail))
    response = JsonResponse(body, status=503)
    response["Retry-After"] = str(unavailable.wait)
    return response


def uri_too_long(request, detail: str) -> JsonResponse:
    return JsonResponse(_error_body("client_error", "uri_too_long", detail), status=414)


def bad_request(request, exception=None) -> JsonResponse:
    """A request Django refuses before any view: a Host not in ALLOWED_HOSTS, a
    malformed header."""
    body = _error_body("client_error", "bad_request", gettext("Bad request."))
    return JsonResponse(body, status=400)
