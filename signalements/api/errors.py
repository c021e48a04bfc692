"""Errors raised outside DRF views (unknown URL, crash in middleware) still get the
API's JSON error shape under /api/, and Open311's error shape under /open311/; other
pages keep Django's HTML error pages."""

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import JsonResponse
from django.views import defaults
from drf_standardized_errors.handler import ExceptionHandler as StandardizedExceptionHandler
from rest_framework import exceptions

from .open311 import errors as open311_errors


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _is_open311(request) -> bool:
    return request.path.startswith("/open311/")


def _error_body(error_type: str, code: str, detail: str) -> dict:
    return {"type": error_type, "errors": [{"code": code, "detail": detail, "attr": None}]}


def bad_request(request, exception):
    if _is_open311(request):
        return open311_errors.bad_request(request, exception)
    return defaults.bad_request(request, exception)


def json_not_found(request, exception):
    if _is_open311(request):
        return open311_errors.not_found(request, exception)
    if _is_api(request):
        return JsonResponse(_error_body("client_error", "not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def json_server_error(request):
    if _is_open311(request):
        return open311_errors.server_error(request)
    if _is_api(request):
        body = _error_body("server_error", "error", "A server error occurred.")
        return JsonResponse(body, status=500)
    return defaults.server_error(request)


class ExceptionHandler(StandardizedExceptionHandler):
    """drf-standardized-errors' handler, with Django's refusals of a request body (too
    large, too many fields or files: SuspiciousOperation) as the 400 they are, where
    they would otherwise be an unhandled exception, a 500."""

    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, RequestDataTooBig):
            return exceptions.ParseError("The request is too large.")
        if isinstance(exc, SuspiciousOperation):
            return exceptions.ParseError(f"The request is malformed: {exc}")
        return super().convert_known_exceptions(exc)
