"""A URL longer than MAX_URL_LENGTH (8,192 characters, path and query string) is a 414,
in the error shape of the door it was sent to, before anything parses it. (The server
itself, granian, answers a 414 without a body beyond about 64 KB: those never get
here.)"""

from django.conf import settings
from django.http import HttpResponse
from django.utils import translation
from django.utils.translation import gettext

from signalements.api import errors as api_errors
from signalements.open311 import errors as open311_errors

STATUS = 414


class UrlLengthMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.MAX_URL_LENGTH
        length = len(request.META.get("PATH_INFO", "")) + len(request.META.get("QUERY_STRING", ""))
        if length <= limit:
            return self.get_response(request)
        # Before LocaleMiddleware: the language the request asks for is looked up here.
        with translation.override(translation.get_language_from_request(request)):
            detail = gettext(
                "The URL is too long (at most %(limit)d characters, with its query string)."
            ) % {"limit": limit}
        path = request.META.get("PATH_INFO", "")
        if path.startswith("/open311/"):
            return open311_errors.error_response(request, STATUS, detail)
        if path.startswith("/api/"):
            return api_errors.uri_too_long(request, detail)
        return HttpResponse(detail, status=STATUS, content_type="text/plain; charset=utf-8")
