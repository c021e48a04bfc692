"""What every view of the REST API does first."""

from rest_framework import exceptions


class MethodFirst:
    """A method the resource does not have (TRACE, BREW, a DELETE of a list) is a 405
    with `Allow`, before any credential is asked: DRF checks permissions first, and
    answered such a request from an anonymous client with a 401."""

    def initial(self, request, *args, **kwargs):
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)
