"""Pagination of the API's lists.

Every list is paginated by page number, with parameters validated: `page=abc` or
`page_size=0` is a 400 naming the parameter (DRF's default silently ignores a bad page
size).

The report list also speaks keyset ("cursor") pagination, and counts without scanning:

- **Cursor**: `?cursor=` (empty: the first page) answers `{"next", "previous",
  "results"}`, whose links carry the cursor of the page after (before) this one. A page is
  found through the index of its order (the position of its first report), so a page
  10,000 pages deep costs what the first does, and a report created meanwhile neither
  shifts the pages nor appears twice. It follows the default order (`-created_at`) or
  `ordering=created_at`, `-id`, `id`.
- **Count**: `count` is exact when it is cheap: when at most `LIST_COUNT_EXACT_MAX`
  reports match (counting stops past that number), or when the maintained counters of the
  reports (by status, category, department: `signalements.rollup`) answer the filters.
  Beyond, on PostgreSQL, it is the planner's estimate, and the response says
  `X-Count: estimate` (else `X-Count: exact`); `?count=exact` asks for the exact
  number whatever it costs. SQLite, which keeps no estimate, counts exactly.
- **Page numbers** go as deep as `LIST_MAX_OFFSET` reports (100,000 by default): a page
  beyond is a 400 naming `page` that points to the cursor, since reaching it means reading
  every report before it.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from rest_framework import pagination, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.utils.urls import remove_query_param, replace_query_param

from signalements.models import fits_in_utc


class PaginationParameters(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, required=False)


class CountedApartPaginator(Paginator):
    """Django's paginator, but a page is never cut at the count: the count is read apart
    from the page (another statement, so another moment under concurrent writes; from
    the maintained counters; or the planner's estimate), and a count lower than the rows
    would drop the page's last reports (found by tests/test_response_cache_live.py: a
    count of 1 read before a second report committed cut a page read after it)."""

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        return self._get_page(self.object_list[bottom : bottom + self.per_page], number, self)


class PageNumberPagination(pagination.PageNumberPagination):
    django_paginator_class = CountedApartPaginator
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        self.validate_parameters(request)
        return super().paginate_queryset(queryset, request, view)

    def validate_parameters(self, request) -> None:
        parameters = PaginationParameters(
            data={
                name: request.query_params[name]
                for name in (self.page_query_param, self.page_size_query_param)
                if name in request.query_params
            }
        )
        parameters.is_valid(raise_exception=True)

    def get_schema_operation_parameters(self, view):
        """DRF's parameters, with the bounds enforced above (the schema tells the truth:
        `page=0` is refused)."""
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] in (self.page_query_param, self.page_size_query_param):
                parameter["schema"]["minimum"] = 1
        return parameters

    def get_page_size(self, request):
        requested = request.query_params.get(self.page_size_query_param)
        if requested is None:
            return self.page_size
        return min(int(requested), self.max_page_size)


# --- Counting ---------------------------------------------------------------------------


class Rows:
    """What the report list paginates, as the paginator needs it: its slices, and its
    count under the count policy (`count()`, after which `count_is_exact` says which it
    was). Subclasses say how to count exactly, up to a bound, and by estimate."""

    count_is_exact = True

    def __init__(self, *, exact: bool = False, counters=None):
        # `exact`: `?count=exact`; `counters`: a callable giving the maintained counters'
        # exact count, or None when they cannot answer these filters.
        self.exact = exact
        self.counters = counters

    def count(self) -> int:
        if self.exact:
            return self.count_exactly()
        if self.counters is not None and (found := self.counters()) is not None:
            return found
        bound = settings.LIST_COUNT_EXACT_MAX
        found = self.count_at_most(bound + 1)
        if found <= bound:
            return found
        estimate = self.estimate()
        if estimate is None:  # SQLite: no estimate kept
            return self.count_exactly()
        self.count_is_exact = False
        return max(estimate, found)

    def count_exactly(self) -> int:
        raise NotImplementedError

    def count_at_most(self, limit: int) -> int:
        raise NotImplementedError

    def estimate(self) -> int | None:
        raise NotImplementedError


class QuerysetRows(Rows):
    """A queryset's rows (the report list's ids, when the lean SQL does not apply)."""

    def __init__(self, queryset, **kwargs):
        super().__init__(**kwargs)
        self.queryset = queryset

    def __getitem__(self, page: slice):
        return list(self.queryset[page])

    def count_exactly(self) -> int:
        return self.queryset.count()

    def count_at_most(self, limit: int) -> int:
        return self.queryset.order_by()[:limit].count()

    def estimate(self) -> int | None:
        queryset = self.queryset.order_by()
        if connections[queryset.db].vendor != "postgresql":
            return None
        return plan_rows(queryset.explain(format="json"))


def plan_rows(explained: str | list) -> int:
    """The rows PostgreSQL's planner expects the top of an `EXPLAIN (FORMAT JSON)` plan
    to return: its text (`QuerySet.explain`) or as psycopg reads it (parsed)."""
    plans = json.loads(explained) if isinstance(explained, str) else explained
    return int(plans[0]["Plan"]["Plan Rows"])


# --- Cursors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """Where a cursor page starts: after (or, `before`, ahead of) the report whose sort
    key is `key` and id `pk`."""

    key: datetime | int
    pk: int
    before: bool = False

    def encode(self) -> str:
        key = self.key.isoformat() if isinstance(self.key, datetime) else str(self.key)
        text = f"{'b' if self.before else 'a'}|{key}|{self.pk}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str, *, by_date: bool) -> "Position":
        """The position a cursor names; ValueError when it names none (or a position in
        another order than `by_date`'s)."""
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            text = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
        except (UnicodeError, binascii.Error, ValueError) as error:
            raise ValueError("not base64") from error
        direction, key, pk = text.split("|")
        if direction not in ("a", "b") or not pk.isdigit() or len(pk) > 18:
            raise ValueError("malformed")
        if by_date:
            key = datetime.fromisoformat(key)
            if key.tzinfo is None or not fits_in_utc(key):
                raise ValueError("not an aware datetime")
        else:
            if key != pk:
                raise ValueError("an id cursor names the id")
            key = int(key)
        return cls(key, int(pk), direction == "b")


def cursor_after(created_at: datetime, pk: int) -> str:
    """The cursor whose page starts right after the report (`created_at`, `pk`) in the
    list's default order (newest first): what a `next` link carries."""
    return Position(created_at, pk).encode()


# The orders a cursor follows: the query's ordering, as the ordering filter leaves it
# (the id last), to (sort key, descending).
CURSOR_ORDERINGS = {
    (): ("created_at", True),
    ("-created_at", "-id"): ("created_at", True),
    ("created_at", "id"): ("created_at", False),
    ("-id",): ("id", True),
    ("id",): ("id", False),
}


CURSOR_MAX_LENGTH = 200


class InvalidCursor(ValidationError):
    def __init__(self, message, code: str = "invalid"):
        super().__init__({"cursor": [message]}, code=code)


class SignalementPagination(PageNumberPagination):
    """The report list's: page numbers by default, keyset pages with `?cursor=`, and the
    count policy (see the module's documentation)."""

    cursor_query_param = "cursor"
    count_query_param = "count"

    # Set by `start()`, for the view.
    cursor: Position | None = None
    keyed: tuple[str, bool] = ("created_at", True)

    def uses_cursor(self, request) -> bool:
        return self.cursor_query_param in request.query_params

    def exact_count_requested(self, request) -> bool:
        value = request.query_params.get(self.count_query_param)
        if not value:  # absent or empty: the policy
            return False
        if value != "exact":
            raise ValidationError(
                {self.count_query_param: [_("The only value is “exact”.")]}, code="invalid_choice"
            )
        return True

    # --- page numbers -------------------------------------------------------------------

    def paginate_queryset(self, queryset, request, view=None):
        self.validate_parameters(request)
        page_number = request.query_params.get(self.page_query_param)
        if page_number is not None:
            offset = (int(page_number) - 1) * self.get_page_size(request)
            if offset >= settings.LIST_MAX_OFFSET:
                raise ValidationError(
                    {
                        self.page_query_param: [
                            _(
                                "Pages start at most %(max)d reports deep: go further with "
                                "cursor pagination (?cursor=)."
                            )
                            % {"max": settings.LIST_MAX_OFFSET}
                        ]
                    },
                    code="max_value",
                )
        return super().paginate_queryset(queryset, request, view)

    # --- cursors ------------------------------------------------------------------------

    def keyset(self, queryset, request):
        """The queryset of the cursor's page: filtered to the reports after (before) the
        cursor's position, in the page's order, one more than a page (whether another
        page follows). Validates the parameters (a 400 naming `cursor`)."""
        self.validate_parameters(request)
        self.request = request
        self.page_size = self.get_page_size(request)
        ordering = tuple(
            item if isinstance(item, str) else None for item in queryset.query.order_by
        )
        if ordering not in CURSOR_ORDERINGS:
            raise InvalidCursor(
                _(
                    "Cursor pagination follows ordering=-created_at (the default), "
                    "created_at, -id or id."
                ),
                code="unsupported_ordering",
            )
        self.keyed = key, descending = CURSOR_ORDERINGS[ordering]
        given = request.query_params[self.cursor_query_param]
        self.cursor = None
        if given:
            try:
                if len(given) > CURSOR_MAX_LENGTH:
                    raise ValueError("too long")
                self.cursor = Position.decode(given, by_date=key == "created_at")
            except ValueError:
                raise InvalidCursor(_("Invalid cursor.")) from None
        backwards = self.cursor is not None and self.cursor.before
        # Walking back: the reports ahead of the position, nearest first.
        newest_first = descending != backwards
        if self.cursor is not None:
            queryset = queryset.filter(self._beyond(self.cursor, newest_first))
        order = [f"{'-' if newest_first else ''}{key}"]
        if key != "id":
            order.append(f"{'-' if newest_first else ''}id")
        return queryset.order_by(*order)

    def _beyond(self, position: Position, newest_first: bool) -> Q:
        """The reports that come after `position` when walking `newest_first` (or not):
        the sort key up to the position's (an index range, in order), then past its id
        among equal keys."""
        key = self.keyed[0]
        less, more = ("lt", "gt") if newest_first else ("gt", "lt")
        if key == "id":
            return Q(**{f"id__{less}": position.pk})
        up_to = Q(**{f"{key}__{less}e": position.key})
        return up_to & (Q(**{f"{key}__{less}": position.key}) | Q(**{f"id__{less}": position.pk}))

    def cursor_page(self, reports: list[dict]) -> list[dict]:
        """The page's reports, in the list's order, from the `keyset()` queryset's first
        rows (one more than a page); sets the links."""
        backwards = self.cursor is not None and self.cursor.before
        more = len(reports) > self.page_size
        reports = reports[: self.page_size]
        if backwards:
            reports.reverse()
        url = self.request.build_absolute_uri()
        self.next_link = self.previous_link = None
        if not reports:
            # Past the end (ahead of the start): a link back to what lies before (after).
            if self.cursor is not None:
                turned = Position(self.cursor.key, self.cursor.pk, not backwards)
                link = self._link(url, turned)
                if backwards:
                    self.next_link = link
                else:
                    self.previous_link = link
            return reports
        if more or backwards:
            self.next_link = self._link(url, self._position(reports[-1], before=False))
        if more if backwards else self.cursor is not None:
            self.previous_link = self._link(url, self._position(reports[0], before=True))
        return reports

    def _position(self, report: dict, *, before: bool) -> Position:
        key = self.keyed[0]
        value = report["id"] if key == "id" else parse_datetime(report[key])
        return Position(value, report["id"], before)

    def _link(self, url: str, position: Position) -> str:
        url = remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.cursor_query_param, position.encode())

    def get_cursor_response_data(self, results) -> dict:
        return {"next": self.next_link, "previous": self.previous_link, "results": results}

    # --- schema -------------------------------------------------------------------------

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        parameters.append(
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Keyset pagination: empty for the first page, then the "
                "value carried by the `next` and `previous` links. The page then has no "
                "`count`. Follows `ordering=-created_at` (default), `created_at`, `-id` or "
                "`id`; `page` is ignored.",
                "schema": {"type": "string", "maxLength": CURSOR_MAX_LENGTH},
            }
        )
        parameters.append(
            {
                "name": self.count_query_param,
                "required": False,
                "in": "query",
                "description": "`exact`: count the reports exactly, however many they "
                "are. Otherwise `count` is exact up to "
                f"{settings.LIST_COUNT_EXACT_MAX:,} reports or when the maintained "
                "counters answer the filters, and beyond that PostgreSQL's estimate "
                "(the `X-Count` header says `exact` or `estimate`).",
                "schema": {"type": "string", "enum": ["exact"]},
            }
        )
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["description"] = (
                    "A page number (at most "
                    f"{settings.LIST_MAX_OFFSET:,} reports deep: use `cursor` beyond)."
                )
        return parameters

    def get_paginated_response_schema(self, schema):
        answer = super().get_paginated_response_schema(schema)
        answer["required"] = ["next", "previous", "results"]
        answer["properties"]["count"]["description"] = (
            "Number of reports across all pages (see `count`): absent from cursor pages."
        )
        return answer


def parse_datetime(text: str) -> datetime:
    """A date as the API writes it (ISO 8601, `Z` for UTC) back to a datetime."""
    return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
