"""Open311 errors: `[{"code": 400, "description": "lat: A valid number is required."}]`
in JSON, `<errors><error><code>400</code><description>…</description></error></errors>`
in XML. `code` is the HTTP status; each description starts with the parameter at fault
when there is one. Every error under /open311/ has this shape: the views' (through
`exception_handler`) and Django's own 404, 400 and 500 (through `error_response`)."""

import sys
from collections.abc import Mapping

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from signalements import availability

from .renderers import FORMATS, format_of, to_xml


def _descriptions(detail, prefix: str = "") -> list[str]:
    """DRF error details (nested dicts and lists) as flat "param: message" lines."""
    if isinstance(detail, Mapping):
        lines = []
        for key, value in detail.items():
            # The index of a list's item (`status=a,b`) is left out: the list is named.
            if isinstance(key, int) or key in ("non_field_errors", None):
                name = prefix
            else:
                name = str(key)
            lines += _descriptions(value, prefix=name)
        return lines
    if isinstance(detail, list | tuple):
        return [line for item in detail for line in _descriptions(item, prefix)]
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def error_list(code: int, detail) -> list[dict]:
    return [{"code": code, "description": line} for line in _descriptions(detail)]


def _as_api_exception(exc: Exception) -> exceptions.APIException | None:
    if isinstance(exc, exceptions.APIException):
        return exc
    if availability.is_unavailability(exc):
        return availability.DatabaseUnavailable()
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        too_large = exceptions.APIException(_("The request body is too large."))
        too_large.status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        return too_large
    if isinstance(exc, SuspiciousOperation):  # e.g. too many fields
        return exceptions.ParseError(_("The request is malformed."))
    return None


def exception_handler(exc: Exception, context) -> Response | None:
    """DRF's exception handler for the Open311 views; None (a 500) for anything else."""
    api_exception = _as_api_exception(exc)
    if api_exception is None:
        return None
    headers = {}
    if getattr(api_exception, "wait", None):
        headers["Retry-After"] = str(int(api_exception.wait))
    return Response(
        error_list(api_exception.status_code, api_exception.detail),
        status=api_exception.status_code,
        headers=headers,
    )


def error_response(request, code: int, description: str) -> HttpResponse:
    """An Open311 error outside the views (unknown URL, Django's error handlers), in the
    format the path's suffix asks for."""
    body = [{"code": code, "description": description}]
    fmt = format_of(request.path)
    if fmt == "xml":
        content = to_xml(body, root="errors", item="error")
    else:
        content = JSONRenderer().render(body)
    return HttpResponse(content, status=code, content_type=f"{FORMATS[fmt]}; charset=utf-8")


def not_found(request, exception=None) -> HttpResponse:
    return error_response(request, status.HTTP_404_NOT_FOUND, _("Not found."))


def bad_request(request, exception=None) -> HttpResponse:
    return error_response(request, status.HTTP_400_BAD_REQUEST, _("Bad request."))


def server_error(request) -> HttpResponse:
    if availability.is_unavailability(sys.exc_info()[1]):  # outside the views
        unavailable = availability.DatabaseUnavailable
        response = error_response(request, unavailable.status_code, str(unavailable.default_detail))
        response["Retry-After"] = str(unavailable.wait)
        return response
    return error_response(request, status.HTTP_500_INTERNAL_SERVER_ERROR, _("Server error."))
