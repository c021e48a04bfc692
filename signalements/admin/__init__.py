"""The back office: the Django admin, one door onto the domain (`signalements/`) beside
the REST API and Open311, none of which it imports. A module per screen: reports (with
their inlines and form), categories, Open311 API keys. Django's autodiscovery imports
this package, which registers each `ModelAdmin`."""

from .api_keys import ApiKeyAdmin
from .categories import CategoryAdmin
from .reports import SignalementAdmin

__all__ = ["ApiKeyAdmin", "CategoryAdmin", "SignalementAdmin"]
