"""A report's history: `/api/signalements/{id}/history/`."""

from rest_framework.decorators import action
from rest_framework.response import Response

from signalements import history
from signalements.roles import is_agent

from ..serializers import HistoryEntrySerializer


class HistoryActions:
    """Who changed what, when: every change for agents, the status changes and their
    public notes for everyone else."""

    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def history(self, request, pk=None):
        signalement = self.get_object()
        entries = history.entries_for(signalement, full=is_agent(request.user))
        return Response(HistoryEntrySerializer(entries, many=True).data)
