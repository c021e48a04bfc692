"""Statistics: `GET /api/signalements/stats/`, over the reports the caller could list
with the same filters (computed by `signalements.stats`)."""

import hashlib
import json

from django.conf import settings
from django.core.cache import cache
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from rest_framework.decorators import action
from rest_framework.response import Response

from signalements import reporter_tokens, stats
from signalements.languages import active_language
from signalements.roles import is_agent

from ..filters import SignalementStatsFilter, search_words
from ..serializers import SignalementStatsSerializer


class StatsActions:
    """Counts by status, category, department and month, the median time to
    resolution, the service levels kept, and (for agents) the reporters' verdicts."""

    @action(
        detail=False,
        methods=["get"],
        url_path="stats",
        pagination_class=None,
        filterset_class=SignalementStatsFilter,
    )
    def stats(self, request):
        # The filters, read once: for the figures and for the shared figures' key. A bad
        # filter is a 400, as DjangoFilterBackend answers it.
        filterset = DjangoFilterBackend().get_filterset(request, self.get_queryset(), self)
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        key = public_cache_key(request, filterset)
        figures = cache.get(key) if key else None
        if figures is None:
            computed = stats.compute(filterset.qs, with_satisfaction=is_agent(request.user))
            figures = SignalementStatsSerializer(computed).data
            if key:
                cache.set(key, figures, settings.SIGNALEMENT_STATS_CACHE_SECONDS)
        return Response(figures)


def public_cache_key(request, filterset) -> str | None:
    """The cache key of an anonymous caller's figures for these filters, or None when
    they are not cached: for agents, logged-in reporters and the holder of a valid
    reporter token (their figures include their own hidden reports), or when
    `STATS_CACHE_SECONDS` is 0. Anonymous callers all see the same public reports, so
    they share the figures for a while: a public dashboard costs one computation per
    period, not one per viewer. The key holds the filters' values as the filters read
    them (another parameter, another spelling of the same search, another order of a
    list: the same figures, the same key), and the language (of the statuses' labels)."""
    if not settings.SIGNALEMENT_STATS_CACHE_SECONDS:
        return None
    if request.user.is_authenticated or reporter_tokens.signalement_id(request) is not None:
        return None
    given = set(request.query_params)
    values = {}
    for name, value in filterset.form.cleaned_data.items():
        if name not in given or value in (None, "", [], ()):
            continue
        if name == "search":
            value = sorted(word.casefold() for word in search_words(value))
        elif isinstance(value, list | tuple | set | frozenset) and name != "near":
            value = sorted(map(str, value))
        values[name] = value
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()
    # The statuses' labels are in the request's language.
    return f"signalements:stats:public:{active_language()}:{digest}"
