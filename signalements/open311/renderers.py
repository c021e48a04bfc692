"""Open311's two formats, chosen by the URL's suffix (`services.json`, `services.xml`)
whatever the `Accept` header says.

XML is built with ElementTree: UTF-8, with the XML declaration, elements named as in
the GeoReport v2 examples. A list is a root element holding one element per item
(`<services><service>…</service></services>`), an object a root element holding one
element per key; null is an empty element, booleans are `true`/`false`. Characters
that XML 1.0 cannot hold (control characters other than tab and line ends) are
replaced by U+FFFD, so the document always parses.
"""

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from rest_framework import negotiation, renderers

JSON_MEDIA_TYPE = "application/json"
XML_MEDIA_TYPE = "text/xml"
FORMATS = {"json": JSON_MEDIA_TYPE, "xml": XML_MEDIA_TYPE}

# The element of each item of a nested list, named after the list.
ITEM_NAMES = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}
# Everything outside XML 1.0's Char production.
NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def format_of(path: str) -> str:
    """The format a path asks for by its suffix; JSON when it names none we speak."""
    return "xml" if path.endswith(".xml") else "json"


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return NOT_XML_CHAR.sub("\ufffd", str(value))


def _fill(element: ET.Element, value, item_name: str | None) -> None:
    if isinstance(value, Mapping):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), child, ITEM_NAMES.get(key))
    elif isinstance(value, list | tuple):
        for child in value:
            _fill(ET.SubElement(element, item_name or "item"), child, None)
    elif value is not None:
        element.text = _text(value)


def to_xml(data, *, root: str, item: str | None = None) -> bytes:
    """`data` (a list of items, or an object) as an XML document under `root`."""
    element = ET.Element(root)
    _fill(element, data, item)
    buffer = io.BytesIO()
    ET.ElementTree(element).write(buffer, encoding="UTF-8", xml_declaration=True)
    return buffer.getvalue()


class Open311JSONRenderer(renderers.JSONRenderer):
    format = "json"
    media_type = JSON_MEDIA_TYPE
    charset = "utf-8"


class Open311XMLRenderer(renderers.BaseRenderer):
    """Reads the root element's name from the view (`xml_root`, and `xml_item` for the
    items of a list); an error response is `<errors><error>…</error></errors>`."""

    format = "xml"
    media_type = XML_MEDIA_TYPE
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        renderer_context = renderer_context or {}
        response = renderer_context.get("response")
        if response is not None and response.status_code >= 400:
            return to_xml(data, root="errors", item="error")
        view = renderer_context.get("view")
        return to_xml(data, root=view.xml_root, item=getattr(view, "xml_item", None))


class SuffixNegotiation(negotiation.BaseContentNegotiation):
    """The format is the URL's suffix (the `format` URL argument); `Accept` and
    `?format=` are ignored. JSON when there is none (never the case for a routed URL)."""

    def select_parser(self, request, parsers):
        return negotiation.DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(self, request, renderers, format_suffix=None):
        wanted = format_suffix if format_suffix in FORMATS else "json"
        for renderer in renderers:
            if renderer.format == wanted:
                return renderer, renderer.media_type
        return renderers[0], renderers[0].media_type
