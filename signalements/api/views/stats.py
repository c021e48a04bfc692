"""Statistics: `GET /api/signalements/stats/`, over the reports the caller could list
with the same filters (computed by `signalements.stats`)."""

import hashlib
import json

from django.conf import settings
from django.core.cache import cache
from rest_framework.decorators import action
from rest_framework.response import Response

from signalements import reporter_tokens, stats

from ..filters import SignalementStatsFilter
from ..serializers import SignalementStatsSerializer


class StatsActions:
    """Counts by status, category and month, and the median time to resolution."""

    @action(
        detail=False,
        methods=["get"],
        url_path="stats",
        pagination_class=None,
        filterset_class=SignalementStatsFilter,
    )
    def stats(self, request):
        queryset = self.filter_queryset(self.get_queryset())  # a bad filter is a 400 here
        key = public_cache_key(request)
        figures = cache.get(key) if key else None
        if figures is None:
            figures = SignalementStatsSerializer(stats.compute(queryset)).data
            if key:
                cache.set(key, figures, settings.SIGNALEMENT_STATS_CACHE_SECONDS)
        return Response(figures)


def public_cache_key(request) -> str | None:
    """The cache key of an anonymous caller's figures for these parameters, or None
    when they are not cached: for agents and logged-in reporters (fresh figures; a
    reporter's include their own hidden reports) or when `STATS_CACHE_SECONDS` is 0.
    Anonymous callers all see the same public reports, so they share the figures for a
    while: a public dashboard costs one computation per period, not one per viewer."""
    if not settings.SIGNALEMENT_STATS_CACHE_SECONDS:
        return None
    if request.user.is_authenticated or reporter_tokens.presented(request) is not None:
        return None
    params = sorted((name, sorted(values)) for name, values in request.query_params.lists())
    digest = hashlib.sha256(json.dumps(params).encode()).hexdigest()
    return f"signalements:stats:public:{digest}"
