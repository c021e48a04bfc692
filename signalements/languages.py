"""The languages the product speaks (settings.LANGUAGES: French first, English), and the
one a report's reporter is written to in: the language of the request that created it.
"""

from django.conf import settings
from django.utils import translation


def supported(code: str | None) -> str | None:
    """The code of LANGUAGES that `code` falls back to (`en-us` -> `en`), or None."""
    if not code:
        return None
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return None


def default_language() -> str:
    """The site's language (`LANGUAGE_CODE`, `fr` unless configured otherwise)."""
    return supported(settings.LANGUAGE_CODE) or settings.LANGUAGES[0][0]


def active_language() -> str:
    """The language of the current request (LocaleMiddleware chose it from the
    `Accept-Language` header), or the site's outside a request."""
    return supported(translation.get_language()) or default_language()


def language_for(code: str | None) -> str:
    """A stored language made safe to activate: one we speak, else the site's."""
    return supported(code) or default_language()
