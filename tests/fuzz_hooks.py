"""Schemathesis hooks for the live fuzzing run (tests/test_fuzz_live.py), loaded by the
`schemathesis run` command through SCHEMATHESIS_HOOKS.

`positive_data_acceptance` says that every request the schema allows must be accepted.
The schema tells the truth wherever OpenAPI can say it (bounds, lengths, patterns,
choices, empty filter values); the API also has rules that a JSON Schema cannot state.
A schema-valid request refused for those rules alone, each recognised by the error code
the API answers with, is not a failure; any other refusal still is. The rules, and why
OpenAPI cannot state them:
"""

import json
import re
from urllib.parse import parse_qsl, urlsplit

import schemathesis
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

# A JSON scalar written as text in a query string.
SCALAR_AS_TEXT = re.compile(r"true|false|null|-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")

RULES_OPENAPI_CANNOT_STATE = {
    # A date may not be in the future: the bound is today, which a schema cannot name.
    "future_date": "date",
    # A category must exist and be active, an assignee must be an agent, an original an
    # existing report: the schema cannot list the current codes, users and reports.
    "does_not_exist": "category/assigned_to/duplicate_of/categories/department",
    # A reply template is one the admins saved (its code, from the current list).
    "unknown_template": "template",
    # An If-Match must be the report's current ETag, which a schema cannot know.
    "precondition_failed": "If-Match",
    # A report's extra answers depend on its category's fields, set by the admins.
    "unknown_field": "extra.*",
    "too_many_keys": "extra",
    "required": "extra.*",
    "invalid_choice": "extra.*",
    # …and a cursor is a position the server wrote (in its `next` and `previous` links):
    # a schema cannot tell a real one from any other string.
    "invalid": "extra.*/cursor",
    "max_length": "extra.*",
    # Latitude and longitude go together (a dependency between two fields).
    "incomplete_location": "latitude/longitude",
    # `radius` needs `near` (a dependency between two parameters).
    "near_required": "radius",
    # A cursor walks the orderings on a unique key only, and page numbers reach
    # LIST_MAX_OFFSET reports deep, `page` times `page_size` (dependencies between two
    # parameters).
    "unsupported_ordering": "cursor",
    "max_value": "page",
    # An Idempotency-Key belongs to the one request first sent with it.
    "idempotency_key_reused": "Idempotency-Key",
    "idempotency_key_in_use": "Idempotency-Key",
    # Wrong credentials (which users exist, and their passwords).
    "invalid_credentials": "non_field_errors",
    # A date-time whose UTC time falls outside years 1 to 9999 (RFC 3339 allows any
    # offset on any date; the schema's `date-time` format cannot bound the instant).
    "overflow": "date/date_after/date_before/created_after/created_before",
    # A point (`near`) or a box (`in_bbox`, an alert's `bbox`): numbers in one string or
    # list, within the earth's ranges; a pattern cannot bound numbers, nor a list's items
    # each their own.
    "format": "near/in_bbox",
    "range": "near/in_bbox/bbox",
    # An alert's box: its minimums not above its maximums (numbers in a list).
    "order": "bbox",
    # A photo upload's files must be images (a schema says "binary").
    "not_an_image": "photos.*",
    "corrupt": "photos.*",
    "empty": "photos.*",
    "too_many_photos": "photos",
    # Only agents write internal notes (a rule of the caller's role, not of the data).
    "agents_only": "is_internal",
    # An anonymous follower gives their address; a logged-in one may leave it out (their
    # account's): a rule of the caller, not of the data.
    "email_required": "email",
    # The category's code is unique.
    "unique": "code",
    # A webhook URL's host must resolve to public addresses only: what a name resolves to
    # is the DNS's, not the schema's.
    "unsafe_url": "url",
    # A report's original must be another report than itself (a relation between the
    # body and the path).
    "self": "duplicate_of",
}


def _error_codes(response) -> set[tuple[str, str | None]]:
    try:
        data = json.loads(response.content)
    except ValueError:
        return set()
    if not isinstance(data, dict):
        return set()
    return {(error.get("code"), error.get("attr")) for error in data.get("errors", [])}


def _for_a_rule_openapi_cannot_state(code: str, attr: str | None) -> bool:
    """Whether an error is one of RULES_OPENAPI_CANNOT_STATE: its code, on one of the
    rule's places (`extra.*`: any answer; a rule about fields alone also takes an error
    without a field)."""
    where = RULES_OPENAPI_CANNOT_STATE.get(code)
    if where is None:
        return False
    places = where.split("/")
    prefixes = [place[:-2] for place in places if place.endswith(".*")]
    fields = [place for place in places if not place.endswith(".*")]
    if any((attr or "").startswith(f"{prefix}.") or attr == prefix for prefix in prefixes):
        return True
    return attr in fields or (attr is None and not prefixes)


@schemathesis.check
def positive_data_acceptance_but_rules_openapi_cannot_state(ctx, response, case):
    """`positive_data_acceptance`, but for refusals by RULES_OPENAPI_CANNOT_STATE alone."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except AssertionError:
        codes = _error_codes(response)
        if codes and all(_for_a_rule_openapi_cannot_state(*code) for code in codes):
            return None
        raise


def _null_in_query(case, response) -> bool:
    """Whether the generated query holds a null (alone or in a list): on the wire it is
    the text `null`, which is a valid value (a category code `null` may exist)."""
    for value in (case.query or {}).values():
        if value is None or (isinstance(value, list | tuple) and None in value):
            return True
    # As sent: a null nested anywhere in a value arrives as the text `null`.
    url = getattr(getattr(response, "request", None), "url", "") or ""
    return any(value == "null" for _, value in parse_qsl(urlsplit(url).query))


def _empty_sort_key(response) -> bool:
    """Whether the query's `ordering` has an empty key (`?ordering=id,` or `?ordering=,`):
    the list ignores it on purpose (a trailing comma is a common slip), where the
    schema's list of keys does not include the empty one."""
    url = getattr(getattr(response, "request", None), "url", "") or ""
    return any(
        name == "ordering" and "" in value.split(",")
        for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True)
    )


def _scalar_for_text_in_query(case, response) -> bool:
    """Whether the query gives a boolean or a number to a parameter whose values are text:
    on the wire it is the text `false`, `0`…, which may be a valid code
    (`?department=false`). Read from the generated case, and from the URL as sent (the
    stateful phase hands the check a query already written as text)."""
    texts = set()
    for parameter in case.operation.query:
        schema = parameter.definition.get("schema", {})
        if schema.get("type") == "string" or schema.get("items", {}).get("type") == "string":
            texts.add(parameter.name)
    for name, value in (case.query or {}).items():
        values = value if isinstance(value, list | tuple) else [value]
        if name in texts and any(isinstance(item, bool | int | float) for item in values):
            return True
    url = getattr(getattr(response, "request", None), "url", "") or ""
    return any(
        name in texts and SCALAR_AS_TEXT.fullmatch(value)
        for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True)
    )


@schemathesis.check
def negative_data_rejection_but_nulls_in_queries(ctx, response, case):
    """`negative_data_rejection`, but for a query whose only fault is a null, a boolean or
    a number where text is expected (a query string carries text only: `null`, `false`,
    `0` are valid codes) or an empty sort key (ignored by design); and a 412 is a
    refusal too (a write whose If-Match does not match is refused before its body is
    read, as RFC 9110 allows: nothing is written)."""
    try:
        return negative_data_rejection(ctx, response, case)
    except AssertionError:
        if (
            _null_in_query(case, response)
            or _empty_sort_key(response)
            or _scalar_for_text_in_query(case, response)
            or response.status_code == 412
        ):
            return None
        raise
