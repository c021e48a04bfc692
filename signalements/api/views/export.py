"""`GET /api/signalements/export.csv`: the list as a CSV download, for agents (the file
is written by `signalements.exports`, which the admin's export action shares)."""

from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer

from signalements.exports import csv_response

from .. import schema
from ..permissions import IsAgent
from .reports import SignalementViewSet


@schema.signalements_export
class SignalementExportViewSet(SignalementViewSet):
    """`GET /api/signalements/export.csv`: the list as a CSV download, for agents.

    A subclass, so that the export always selects what the list does (its
    `get_queryset` and `filterset_class`). Bound to its own URL, declared before the
    router's, whose `signalements/{pk}.{format}` route would take `export.csv` for a
    report's id."""

    permission_classes = [IsAuthenticated, IsAgent]
    pagination_class = None
    renderer_classes = [JSONRenderer]

    def get_renderers(self):
        # The CSV is written by `csv_response`, not rendered: renderers only render
        # errors, in JSON.
        return [renderer() for renderer in self.renderer_classes]

    def perform_content_negotiation(self, request, force=False):
        # `Accept: text/csv` (or anything else) must not be a 406: errors are JSON.
        return super().perform_content_negotiation(request, force=True)

    def export_csv(self, request):
        return csv_response(self.filter_queryset(self.get_queryset()))


export_csv_view = SignalementExportViewSet.as_view({"get": "export_csv"})
