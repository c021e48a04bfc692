"""Statistics: `GET /api/signalements/stats/`, over the reports the caller could list
with the same filters (computed by `signalements.stats`, from the rollup of reports when
the caller's reports and filters are among those it counts: `signalements.rollup`)."""

import hashlib
import json

from django.conf import settings
from django.core.cache import cache
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from rest_framework.decorators import action
from rest_framework.response import Response

from signalements import reporter_tokens, rollup, stats
from signalements.languages import active_language
from signalements.roles import agent_scope, is_agent

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
            computed = stats.compute(
                filterset.qs,
                with_satisfaction=is_agent(request.user),
                rollup_filters=rollup_filters(request, filterset),
            )
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


# The filters the rollup counts by; any other one given, the figures are computed from
# the reports.
ROLLUP_FILTERS = {"status", "category", "department", "created_after", "created_before"}


def rollup_filters(request, filterset, *, ignored=frozenset()) -> rollup.Filters | None:
    """The caller's reports with these filters (None: none given; `ignored`: filters
    that do not choose reports, e.g. the list's `ordering`), as the rollup's filters;
    None when the rollup cannot count them: a reporter's own hidden reports, an agent
    limited to their departments (and the reports assigned to them), a search, a
    place…"""
    user = request.user
    if is_agent(user):
        if agent_scope(user) is not None:
            return None
        public_only = False
    elif user.is_authenticated or reporter_tokens.signalement_id(request) is not None:
        return None
    else:
        public_only = True
    cleaned = filterset.form.cleaned_data if filterset is not None else {}
    given = {
        name: value
        for name, value in cleaned.items()
        if name not in ignored and value not in (None, "", [], ())
    }
    if not given.keys() <= ROLLUP_FILTERS:
        return None

    def ids(name):  # (the filter's own lookup of the codes: made once)
        codes = given.get(name)
        return None if codes is None else filterset.filters[name].ids_of(codes)

    return rollup.Filters(
        public_only=public_only,
        statuses=tuple(given["status"]) if "status" in given else None,
        category_ids=ids("category"),
        department_ids=ids("department"),
        created_after=given.get("created_after"),
        created_before=given.get("created_before"),
    )
