"""The REST API's views, a module per resource: reports (with their sub-resources as
actions: attachments, comments, history, stats, transition), the CSV export, categories,
accounts, webhook endpoints."""

from .accounts import AuthTokenView, EraseContactDataView, MeView
from .categories import CategoryViewSet
from .export import SignalementExportViewSet, export_csv_view
from .feedback import FeedbackLinkView, FeedbackViewSet
from .reports import SignalementViewSet
from .webhooks import WebhookEndpointViewSet

__all__ = [
    "AuthTokenView",
    "CategoryViewSet",
    "EraseContactDataView",
    "FeedbackLinkView",
    "FeedbackViewSet",
    "MeView",
    "SignalementExportViewSet",
    "SignalementViewSet",
    "WebhookEndpointViewSet",
    "export_csv_view",
]
