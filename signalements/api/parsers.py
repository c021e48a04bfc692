"""The API's JSON parser: DRF's, with a body nested too deep refused as the parse error it
is (Python's JSON decoder recurses once per level: 20,000 nested arrays were a
RecursionError, a 500). No report field nests more than a few levels."""

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.parsers import JSONParser as DRFJSONParser


class JSONParser(DRFJSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("JSON parse error - nested too deeply.")) from None
