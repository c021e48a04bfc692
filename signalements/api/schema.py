"""The REST API's OpenAPI schema: how it is generated (drf-standardized-errors'
AutoSchema, which documents error responses, plus anonymous access where our permission
classes allow it), then what each endpoint promises, one decorator per view."""

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema
from drf_standardized_errors.openapi_serializers import ClientErrorEnum
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import serializers

from signalements import exports, idempotency

from . import preconditions
from .renderers import SignalementFeatureCollectionSerializer
from .serializers import (
    AttachmentSerializer,
    AttachmentUploadSerializer,
    CommentSerializer,
    CreatedSignalementSerializer,
    ErasedContactDataSerializer,
    HistoryEntrySerializer,
    MeSerializer,
    SignalementSerializer,
    SignalementStatsSerializer,
    SimilarSignalementSerializer,
    TokenRequestSerializer,
    TokenSerializer,
    TransitionSerializer,
)
from .serializers.routing import RoutingDryRunSerializer
from .serializers.subscriptions import (
    BoxAlertSerializer,
    CircleAlertSerializer,
    ConfirmationSerializer,
    FollowSerializer,
    SubscriptionAcceptedSerializer,
    UnsubscriptionSerializer,
)
from .serializers.webhooks import (
    CreatedWebhookEndpointSerializer,
    WebhookSecretSerializer,
)

# An anonymous reporter's secret for their new report (see `signalements/reporter_tokens.py`); declared
# in SPECTACULAR_SETTINGS["APPEND_COMPONENTS"].
REPORTER_TOKEN_SCHEME = "reporterToken"


class AutoSchema(StandardizedErrorsAutoSchema):
    def get_auth(self):
        """drf-spectacular marks an operation as open to anonymous clients (`{}` in its
        security list) only for DRF's own AllowAny/IsAuthenticatedOrReadOnly; our
        permission classes say so through `allows_anonymous(request_method, view)`, and
        which operations an anonymous reporter's token opens through
        `allows_reporter_token(request_method, view)`."""
        auth = super().get_auth()
        permissions = self.view.get_permissions()

        def any_allows(question: str) -> bool:
            return any(
                getattr(permission, question, lambda method, view: False)(self.method, self.view)
                for permission in permissions
            )

        if {} not in auth and any_allows("allows_anonymous"):
            auth.append({})
        if any_allows("allows_reporter_token"):
            auth.append({REPORTER_TOKEN_SCHEME: []})
        return auth

    def _idempotent(self) -> bool:
        """Whether the operation's handler takes an `Idempotency-Key`
        (`signalements.idempotency.idempotent`)."""
        if self.method != "POST":
            return False
        name = getattr(self.view, "action", None) or self.method.lower()
        return getattr(getattr(type(self.view), name, None), "idempotent", False)

    def _conditional(self) -> bool:
        """Whether the operation takes an `If-Match` (`api/preconditions.py`)."""
        actions = getattr(self.view, "if_match_actions", ())
        return (
            self.method in ("PUT", "PATCH", "POST")
            and getattr(self.view, "action", None) in actions
        )

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self._conditional():
            parameters.append(
                OpenApiParameter(
                    preconditions.HEADER,
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    required=False,
                    description="The report's `ETag` (from `GET` of the report, or the "
                    "answer of the last write): the write is made only if the report has "
                    "not changed since (else 412), so that no change is lost. `*` matches "
                    "any version. Required when the server sets `REQUIRE_IF_MATCH` (else "
                    "428).",
                )
            )
        if self._idempotent():
            parameters.append(
                OpenApiParameter(
                    idempotency.HEADER,
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    required=False,
                    pattern="^[ -~]{1,255}$",  # idempotency.KEY_PATTERN
                    description="Makes a retry safe: the same request sent again with "
                    "the same key (by the same caller, within "
                    "`IDEMPOTENCY_KEY_TTL_HOURS`, 24) gets the first response again, "
                    "with `Idempotent-Replayed: true`, and writes nothing. 1 to 255 "
                    "printable ASCII characters; a UUID is a good key.",
                )
            )
        return parameters

    def _get_extra_validation_errors(self):
        errors = super()._get_extra_validation_errors()
        if self._idempotent():  # a malformed key: a 400 naming the header
            errors = {**errors, idempotency.HEADER: {"invalid"}}
        return errors

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction=direction)
        if direction != "response":
            return responses
        added = []
        if self._conditional():
            added += [
                (
                    "412",
                    "The report changed since the `If-Match` ETag was read: read it "
                    "again, then retry.",
                ),
                ("428", "`If-Match` is missing, and this server requires it (`REQUIRE_IF_MATCH`)."),
            ]
        if self._idempotent():
            added += [
                (
                    "409",
                    "A request with the same Idempotency-Key is still being processed: "
                    "retry later.",
                ),
                (
                    "422",
                    "The Idempotency-Key was already used with another request (method, "
                    "path or data).",
                ),
            ]
        for code, description in added:
            if code in responses:
                responses[code]["description"] += f" Or: {description[0].lower()}{description[1:]}"
            else:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ConflictErrorSerializer, description=description), code
                )
        return responses


# Query parameters that are not filters: an empty value is not "no filter" for them.
NOT_FILTERS = {"page", "page_size"}


def empty_filter_values(result, generator, request, public):
    """A filter sent empty (`?status=&category=`, as a form sends it) filters nothing:
    the schema says so (`allowEmptyValue`), so that clients and fuzzers know an empty
    value is accepted. Not a required parameter (the dry run's `signalement`): it must be
    given, not empty."""
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method != "get":
                continue
            for parameter in operation.get("parameters", []):
                if (
                    parameter.get("in") == "query"
                    and parameter["name"] not in NOT_FILTERS
                    and not parameter.get("required")
                ):
                    parameter["allowEmptyValue"] = True
    return result


NO_NUL = "^[^\\u0000]*$"
# What Python's str.strip() removes (DRF trims text): a text that must not be blank has
# one character besides these (and no NUL).
PYTHON_WHITESPACE = (
    "\\t\\n\\u000b\\f\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
NOT_BLANK = f"^[^\\u0000]*[^\\u0000{PYTHON_WHITESPACE}][^\\u0000]*$"


def strings_without_nul(result, generator, request, public):
    """Text never holds a NUL byte (PostgreSQL cannot store one; the API refuses it with
    `null_characters_not_allowed`): every free string of a request body, and of a query,
    says so; a body's text that may not be blank says that too."""

    def free(schema) -> bool:
        return schema.get("type") == "string" and not {"pattern", "format", "enum"} & set(schema)

    def mark(schema):
        if not isinstance(schema, dict):
            return
        if free(schema) and not schema.get("readOnly"):
            schema["pattern"] = NOT_BLANK if schema.get("minLength", 0) >= 1 else NO_NUL
        for child in schema.get("properties", {}).values():
            mark(child)
        mark(schema.get("items"))
        mark(schema.get("additionalProperties"))
        for child in [*schema.get("allOf", []), *schema.get("anyOf", []), *schema.get("oneOf", [])]:
            mark(child)

    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            mark(component)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and free(parameter.get("schema", {})):
                    parameter["schema"]["pattern"] = NO_NUL
    return result


def error_attr_patterns(result, generator, request, public):
    """drf-standardized-errors names the errors of list items and dict values with
    placeholders (`extra_fields.INDEX.code`, `extra.KEY`). The real `attr` holds the
    index or key (`extra.lamp_id`): document it as a pattern, not a one-value enum.

    The list of an operation's possible errors (a `oneOf`) then loses its discriminator
    on `attr`: a discriminator maps exact values, and its mapping named the placeholder
    (`extra.KEY`) as if it were the value. Generated clients believed it (openapi-typescript
    typed such an error's `attr` as the literal `"extra.KEY"`, so that a client could not
    even compare it with `"extra.lamp_id"`); without it, they tell the errors apart by
    their `attr` (one value, or the pattern)."""
    components = result.get("components", {}).get("schemas", {})
    patterned = set()
    for name, component in components.items():
        attr = component.get("properties", {}).get("attr", {})
        values = attr.get("enum", [])
        if not name.endswith("ErrorComponent") or len(values) != 1:
            continue
        parts = values[0].split(".")
        if "INDEX" not in parts and "KEY" not in parts:
            continue
        pattern = r"\.".join(
            r"\d+" if part == "INDEX" else r"[\s\S]*" if part == "KEY" else re.escape(part)
            for part in parts
        )
        component["properties"]["attr"] = {
            "type": "string",
            "pattern": f"^{pattern}$",
            "description": f"`{values[0]}`, with the actual index or key.",
        }
        patterned.add(f"#/components/schemas/{name}")
    for component in components.values():
        discriminator = component.get("discriminator", {})
        if discriminator.get("propertyName") == "attr" and patterned & set(
            discriminator.get("mapping", {}).values()
        ):
            del component["discriminator"]
    return result


# Operations whose body cannot be left out, although drf-spectacular does not mark it
# required: a `oneOf` of serializers (PolymorphicProxySerializer) gives it no required
# field to go by. Without the mark, a client may send no body, and the 400 that answers
# it contradicts the schema (found by the live fuzzer).
BODY_REQUIRED = {"alerts_create"}


def required_bodies(result, generator, request, public):
    """`requestBody.required` for the operations of BODY_REQUIRED."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and operation.get("operationId") in BODY_REQUIRED:
                operation.get("requestBody", {})["required"] = True
    return result


# --- What the endpoints promise --------------------------------------------------------
#
# The views say what they do; this section says what the schema documents for them:
# summaries, descriptions, operationIds of custom actions, responses, and the error codes
# that drf-standardized-errors cannot discover from the serializers (those raised by the
# models' validation, by the pagination, by a form's `clean()`). Each viewset or view
# carries one decorator from here (`@schema.signalements`…).


def documented(*, operations: dict, validation_errors: list[tuple] = ()):
    """A class decorator documenting a view: `operations` as for drf-spectacular's
    `extend_schema_view` (an action or method name, with an `extend_schema` or a list of
    them, one per HTTP method), and `validation_errors` as rows of
    `(error codes, field name, {"actions": …, "methods": …})` for
    drf-standardized-errors' `extend_validation_errors`, in the order they are listed."""

    def decorate(view):
        inherited = {}
        for name, decorators in operations.items():
            method = view.__dict__.get(name)
            if method is None:
                inherited[name] = decorators
                continue
            # Defined on the view itself (even a method bound only by `as_view({...})`,
            # which `extend_schema_view` does not know): documented in place.
            for decorator in decorators if isinstance(decorators, list) else [decorators]:
                decorator(method)
        if inherited:  # list, create… and the mixins' actions: isolated copies
            view = extend_schema_view(**inherited)(view)
        for codes, field_name, scope in reversed(validation_errors):
            view = extend_validation_errors(codes, field_name=field_name, **scope)(view)
        return view

    return decorate


class ConflictErrorSerializer(serializers.Serializer):
    """The 409 error body, in the shape of every other error."""

    class ErrorSerializer(serializers.Serializer):
        code = serializers.CharField()
        detail = serializers.CharField()
        attr = serializers.CharField(allow_null=True)

    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = ErrorSerializer(many=True)


WRITE_ACTIONS = ["create", "update", "partial_update"]
# An integer parameter longer than 1000 characters is refused as `max_string_length`.
PAGINATION_ERROR_CODES = ["invalid", "min_value", "max_string_length"]
PAGINATION_ERRORS = [
    (PAGINATION_ERROR_CODES, "page", {"actions": ["list"]}),
    (PAGINATION_ERROR_CODES, "page_size", {"actions": ["list"]}),
]
# The report list's (`api/pagination.SignalementPagination`): pages at most
# LIST_MAX_OFFSET reports deep, cursors, `count=exact`.
REPORT_PAGINATION_ERRORS = [
    ([*PAGINATION_ERROR_CODES, "max_value"], "page", {"actions": ["list"]}),
    (PAGINATION_ERROR_CODES, "page_size", {"actions": ["list"]}),
    (["invalid", "unsupported_ordering"], "cursor", {"actions": ["list"]}),
    (["invalid_choice"], "count", {"actions": ["list"]}),
]

signalements = documented(
    operations={
        "list": extend_schema(
            summary="List reports: public ones, your own, or all for agents",
            parameters=[
                OpenApiParameter(
                    "format",
                    str,
                    enum=["json", "geojson"],
                    description="`geojson`: the page as a GeoJSON FeatureCollection (RFC "
                    "7946), as with `Accept: application/geo+json`. Takes precedence over "
                    "`Accept`.",
                ),
                OpenApiParameter(
                    "X-Count",
                    str,
                    location=OpenApiParameter.HEADER,
                    response=[200],
                    enum=["exact", "estimate"],
                    description="Whether `count` is exact or PostgreSQL's estimate (see "
                    "the `count` parameter). Absent from cursor pages, which have no "
                    "`count`.",
                ),
            ],
            responses={
                (200, "application/json"): OpenApiResponse(
                    SignalementSerializer,
                    description="One page of reports. In GeoJSON (`?format=geojson` or "
                    "`Accept: application/geo+json`): the same page as a FeatureCollection of "
                    "Point features, coordinates `[longitude, latitude]`; a report without a "
                    "location is a feature with a null geometry; `count`, `next` and "
                    "`previous` as in JSON. Errors are always JSON (`application/json`). "
                    "With `cursor`: `next`, `previous` and the reports, no `count`.",
                ),
                (200, "application/geo+json"): SignalementFeatureCollectionSerializer,
            },
        ),
        "create": extend_schema(
            summary="Create a report (open to anonymous clients)",
            responses={201: CreatedSignalementSerializer},
        ),
        "retrieve": extend_schema(summary="Read a report"),
        "update": extend_schema(
            summary="Replace a report's editable fields (agents; its reporter while new)"
        ),
        "partial_update": extend_schema(
            summary="Change some of a report's fields (agents; its reporter while new)"
        ),
        "destroy": extend_schema(summary="Delete a report (admins)"),
        "similar": extend_schema(
            operation_id="signalements_similar",
            summary="Possible duplicates of a report: open, same category, nearby, recent",
            responses=SimilarSignalementSerializer(many=True),
        ),
        "attachments": [
            extend_schema(
                methods=["GET"],
                operation_id="signalements_attachments_list",
                summary="A report's photos",
                responses=AttachmentSerializer(many=True),
            ),
            extend_schema(
                methods=["POST"],
                operation_id="signalements_attachments_create",
                summary="Add photos to a report (agents; its reporter while it is new)",
                description="`multipart/form-data` with one or several files in `photos`. "
                "Only JPEG, PNG and WebP images are accepted, judged by their content; each "
                "is stored re-encoded without metadata (EXIF, GPS position), upright, with a "
                "thumbnail. Limits: `ATTACHMENTS_MAX_PER_REPORT` photos per report, "
                "`ATTACHMENT_MAX_BYTES` per file, `ATTACHMENT_MAX_PIXELS` per image. A "
                "refused file is a 400 whose `attr` is `photos.<index>` and whose detail "
                "starts with the file name; nothing is stored then. An anonymous reporter "
                "authenticates with the `X-Reporter-Token` header that the create returned.",
                request=AttachmentUploadSerializer,  # multipart/form-data: the action's parser
                responses={201: AttachmentSerializer(many=True)},
            ),
        ],
        "attachment": extend_schema(
            operation_id="signalements_attachments_destroy",
            summary="Remove a photo (agents; the report's reporter while it is new)",
            parameters=[OpenApiParameter("attachment_id", int, OpenApiParameter.PATH)],
            request=None,
            responses={204: None},
        ),
        "stats": extend_schema(
            operation_id="signalements_stats",
            summary="Statistics of the reports you can see, with the list's filters",
            description="Counts by status, by category and by month (created, resolved), "
            "and the median time to resolution, over the reports the list would return with "
            "the same filters: all of them for agents, public ones (and your own) for "
            "everyone else. Not paginated; `ordering` does not apply.",
            filters=True,
            responses=SignalementStatsSerializer,
        ),
        "transition": extend_schema(
            operation_id="signalements_transition",
            summary="Move a report through the workflow (agents)",
            request=TransitionSerializer,
            parameters=[
                OpenApiParameter(
                    "template",
                    str,
                    OpenApiParameter.QUERY,
                    pattern=r"^[-a-zA-Z0-9_]{0,64}$",
                    description="The code of a reply template: the note is its text filled "
                    "for the report (`{reference}`, `{category}`, `{due_at}`), followed by "
                    "the body's `note` on a new line when there is one. An unknown or "
                    "inactive template, or one for another category or target status, is a "
                    "400 naming `template`.",
                )
            ],
            responses={
                200: SignalementSerializer,
                409: OpenApiResponse(
                    ConflictErrorSerializer,
                    description="The workflow does not allow this move; the detail names "
                    "the allowed next statuses.",
                ),
            },
        ),
        "history": extend_schema(
            operation_id="signalements_history",
            summary="A report's history: who changed what, when",
            description="Agents see every change; everyone else sees the status changes "
            "and their public notes.",
            responses=HistoryEntrySerializer(many=True),
        ),
        "comments": [
            extend_schema(
                methods=["GET"],
                operation_id="signalements_comments_list",
                summary="A report's public updates (and, for agents, internal notes)",
                responses=CommentSerializer(many=True),
            ),
            extend_schema(
                methods=["POST"],
                operation_id="signalements_comments_create",
                summary="Add a public update (reporter on their report, agents) or an "
                "internal note (agents)",
                request=CommentSerializer,
                responses={201: CommentSerializer},
            ),
        ],
        "follow": extend_schema(
            operation_id="signalements_follow",
            summary="Follow a report's public updates by email (anyone who may see it)",
            description="Its status changes and public updates are emailed to `email` once "
            "the address is confirmed by the link sent to it (valid "
            "`SUBSCRIPTION_CONFIRM_DAYS`). Logged in, `email` may be left out: the "
            "account's own address follows at once. Every email has a one-click "
            "unsubscribe link. The answer is the same whether the address followed the "
            "report already or not, and never holds an address. Limited per client and "
            "per address (`THROTTLE_SUBSCRIBE`).",
            request=FollowSerializer,
            responses={202: SubscriptionAcceptedSerializer},
        ),
    },
    # Codes raised by model validation (`Signalement.clean()`, model field validators),
    # by the filters' form and by the photos' checks.
    validation_errors=[
        # An anonymous caller must give the address (a logged-in one has their account's).
        (["email_required"], "email", {"actions": ["follow"]}),
        (["future_date"], "date", {"actions": WRITE_ACTIONS}),
        (
            ["invalid", "max_length", "unknown_template", "template_not_applicable"],
            "template",
            {"actions": ["transition"]},
        ),
        (["near_required"], "radius", {"actions": ["list", "stats"]}),
        (["max_words"], "search", {"actions": ["list", "stats"]}),
        (
            [
                "unknown_field",
                "required",
                "invalid",
                "invalid_choice",
                "max_length",
                "null_characters_not_allowed",
            ],
            "extra.KEY",
            {"actions": WRITE_ACTIONS},
        ),
        (["invalid", "too_many_keys"], "extra", {"actions": WRITE_ACTIONS}),
        (["incomplete_location"], "latitude", {"actions": WRITE_ACTIONS}),
        (["incomplete_location"], "longitude", {"actions": WRITE_ACTIONS}),
        *REPORT_PAGINATION_ERRORS,
        # Photos refused by `photos.process`, and one too many.
        (
            ["not_an_image", "corrupt", "file_too_large", "too_many_pixels", "empty"],
            "photos.INDEX",
            {"actions": ["attachments"], "methods": ["post"]},
        ),
        (["too_many_photos"], "photos", {"actions": ["attachments"], "methods": ["post"]}),
    ],
)

EXPORT_DESCRIPTION = f"""\
The reports matching the same filters as the list (`status`, `in_bbox`, `search`,
`ordering`…), in the same order, all of them (no pagination), as a CSV download streamed
in constant memory.

UTF-8 with a byte order mark (for Excel), comma-separated, CRLF line ends, and a
header row in the request's language (`Accept-Language`; French by default): in English,
the columns' names, which scripts can rely on:

    {",".join(exports.COLUMNS)}

Dates in ISO 8601 with their offset; `status` and `priority` as labels in the request's
language; `category` as
its name and `category_code` as its code; `assigned_to` as a username; an empty cell
for none. A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return
is prefixed with `'` so that spreadsheets do not evaluate it.

Errors (an invalid filter is a 400 naming the parameter) are JSON."""

signalements_export = documented(
    operations={
        "export_csv": extend_schema(
            operation_id="signalements_export_csv",
            summary="Export the reports as CSV (agents), with the list's filters",
            description=EXPORT_DESCRIPTION,
            filters=True,
            parameters=[
                OpenApiParameter(
                    "Content-Disposition",
                    str,
                    OpenApiParameter.HEADER,
                    response=[200],
                    required=True,
                    pattern=r'^attachment; filename="signalements-\d{8}\.csv"$',
                    description='`attachment; filename="signalements-YYYYMMDD.csv"` (today).',
                )
            ],
            responses={
                (200, "text/csv"): OpenApiResponse(
                    OpenApiTypes.STR, description="The CSV file (UTF-8 with BOM)."
                ),
            },
        ),
    },
    # By method: drf-standardized-errors only knows the router's actions by name.
    validation_errors=[
        (["near_required"], "radius", {"methods": ["get"]}),
        (["max_words"], "search", {"methods": ["get"]}),
    ],
)

categories = documented(
    operations={
        "list": extend_schema(summary="List categories (active ones, or all for agents)"),
        "create": extend_schema(summary="Create a category (admins)"),
        "retrieve": extend_schema(summary="Read a category"),
        "update": extend_schema(summary="Replace a category (admins)"),
        "partial_update": extend_schema(summary="Change some of a category's fields (admins)"),
        "destroy": extend_schema(
            summary="Delete a category that no report uses (admins)",
            responses={
                204: None,
                409: OpenApiResponse(
                    ConflictErrorSerializer, description="Reports still use this category."
                ),
            },
        ),
    },
    validation_errors=[
        (["unique", "null", "not_a_list"], "extra_fields", {"actions": WRITE_ACTIONS}),
        (
            ["invalid_choices", "null", "not_a_list"],
            "extra_fields.INDEX.choices",
            {"actions": WRITE_ACTIONS},
        ),
        (["null", "invalid"], "extra_fields.INDEX.choices.INDEX", {"actions": WRITE_ACTIONS}),
        (["null", "invalid"], "extra_fields.INDEX", {"actions": WRITE_ACTIONS}),
        *PAGINATION_ERRORS,
    ],
)

auth_token = documented(
    operations={
        "post": extend_schema(
            operation_id="auth_token_create",
            summary="Get an API token for a username and password",
            description="Each login makes a new token, shown this once (the server keeps "
            "only its digest), valid until its `expiry` (`TOKEN_TTL_DAYS` days; null: "
            "until revoked). After `LOGIN_FAILURE_LIMIT` failed logins for one account "
            "from one address, that account is refused from that address for "
            "`LOGIN_LOCKOUT_MINUTES` (a 429 with `Retry-After`), even with the right "
            "password.",
            request=TokenRequestSerializer,
            responses={200: TokenSerializer},
        ),
        "delete": extend_schema(
            operation_id="auth_token_destroy",
            summary="Revoke all your API tokens",
            description="Every token of yours stops working (a logout everywhere). To "
            "revoke one token alone: `DELETE /api/auth/tokens/{prefix}/`.",
            request=None,
            responses={204: None},
        ),
    },
    validation_errors=[(["invalid_credentials"], "non_field_errors", {"methods": ["post"]})],
)

auth_tokens = documented(
    operations={
        "list": extend_schema(
            summary="List your API tokens",
            description="The tokens of yours that still work, newest first, named by "
            "their first characters (`prefix`): the tokens themselves are never shown "
            "again. `current` marks the one this request was made with.",
        ),
        "destroy": extend_schema(
            summary="Revoke one of your API tokens",
            description="The token with this `prefix` stops working. Another user's "
            "token, or an unknown prefix, is a 404.",
            responses={204: None},
        ),
    },
    validation_errors=PAGINATION_ERRORS,
)

me = documented(
    operations={
        "get": extend_schema(
            operation_id="me_retrieve", summary="Who am I?", responses=MeSerializer
        )
    }
)

erase_contact_data = documented(
    operations={
        "post": extend_schema(
            operation_id="me_erase_contact_data_create",
            summary="Erase the contact data of your reports",
            description="Blanks `contact_name`, `contact_email` and `contact_phone` on every "
            "report you filed, also in their history, blanks the comments of your verdicts "
            'on them ("fixed" or "not fixed"), records the erasure in each '
            "report's history, and deletes your follows and alerts (asked for while "
            "logged in, or at your account's address or your reports' contact addresses). "
            "You stay their reporter: you still see them, and status emails go to your "
            "account's email. Calling it again erases nothing more (`erased`: 0).",
            request=None,
            responses=ErasedContactDataSerializer,
        )
    }
)

webhooks = documented(
    operations={
        "list": extend_schema(summary="List webhook endpoints (admins)"),
        "create": extend_schema(
            summary="Register a webhook endpoint (admins)",
            description="The answer holds the endpoint's signing `secret`, shown this once. "
            "The URL's host must resolve to public addresses only (else a 400 naming "
            "`url`, code `unsafe_url`), unless the server sets `WEBHOOK_ALLOW_PRIVATE`.",
            responses={201: CreatedWebhookEndpointSerializer},
        ),
        "retrieve": extend_schema(summary="Read a webhook endpoint (admins)"),
        "update": extend_schema(summary="Replace a webhook endpoint (admins)"),
        "partial_update": extend_schema(
            summary="Change some of a webhook endpoint's fields (admins)"
        ),
        "destroy": extend_schema(
            summary="Delete a webhook endpoint and its deliveries (admins)",
            responses={204: None},
        ),
        "rotate_secret": extend_schema(
            operation_id="webhooks_rotate_secret",
            summary="Give a webhook endpoint a new signing secret (admins)",
            description="The new secret is shown this once; the old one signs no more "
            "(deliveries attempted from now on are signed with the new one).",
            request=None,
            responses={200: WebhookSecretSerializer},
        ),
    },
    validation_errors=[
        (["unsafe_url"], "url", {"actions": WRITE_ACTIONS}),
        (["max_length"], "categories", {"actions": WRITE_ACTIONS}),
        *PAGINATION_ERRORS,
    ],
)

# --- Follows and alerts ------------------------------------------------------------------

ALERTS_DESCRIPTION = """\
New public reports with a location, in a circle (`kind: circle`: `lat`, `lng`,
`radius_m` up to `NEAR_MAX_RADIUS_M`, as the list's `near`) or a box (`kind: bbox`:
`bbox` as the list's `in_bbox`), of the given `categories` (codes; none: all), emailed
to `email` one by one (`frequency: immediate`) or in one digest a day (`daily`, from
`ALERT_DIGEST_HOUR`, when there is anything new).

Nothing is sent before the address is confirmed by the link sent to it (valid
`SUBSCRIPTION_CONFIRM_DAYS`), unless it is the logged-in account's own address. Every
email has a one-click unsubscribe link. The answer is the same whether the address had
this alert already or not, and never holds an address. Limited per client and per
address (`THROTTLE_SUBSCRIBE`)."""

alerts = documented(
    operations={
        "post": extend_schema(
            operation_id="alerts_create",
            summary="Ask for email alerts about new reports in an area (anyone)",
            description=ALERTS_DESCRIPTION,
            request=PolymorphicProxySerializer(
                component_name="Alert",
                serializers={"circle": CircleAlertSerializer, "bbox": BoxAlertSerializer},
                resource_type_field_name="kind",
            ),
            responses={202: SubscriptionAcceptedSerializer},
        )
    },
    validation_errors=[
        # A box's latitudes within [-90, 90], its minimums not above its maximums (which
        # a schema cannot state of a list's items), and categories that exist.
        (["range", "order"], "bbox", {"methods": ["post"]}),
        (["does_not_exist"], "categories", {"methods": ["post"]}),
    ],
)

LINK_TOKEN = OpenApiParameter(
    "token",
    str,
    OpenApiParameter.PATH,
    pattern="^[A-Za-z0-9_.:-]{1,1000}$",
    description="The signed token of the emailed link. Altered, expired or naming what "
    "is gone: a 404.",
)


def link_page(serializer, page: str) -> dict:
    """A link's answer: JSON, or an HTML page for browsers (`Accept: text/html`)."""
    return {
        (200, "application/json"): serializer,
        (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description=page),
    }


subscription_confirm = documented(
    operations={
        "get": extend_schema(
            operation_id="subscriptions_confirm_retrieve",
            summary="What a confirmation link confirms (a follow or an alert)",
            description="Confirms nothing (a link previewer or a mail filter may open "
            "it): POST to the same address confirms. A browser gets a page with the "
            "button.",
            parameters=[LINK_TOKEN],
            responses=link_page(
                ConfirmationSerializer, "A page saying what is confirmed, with its button."
            ),
        ),
        "post": extend_schema(
            operation_id="subscriptions_confirm_create",
            summary="Confirm a follow or an alert (the link's token)",
            description="Again on a confirmed one: nothing more. Any request body is ignored.",
            parameters=[LINK_TOKEN],
            request=None,
            responses=link_page(ConfirmationSerializer, "A page saying it is confirmed."),
        ),
    }
)

subscription_unsubscribe = documented(
    operations={
        "get": extend_schema(
            operation_id="subscriptions_unsubscribe_retrieve",
            summary="What an unsubscribe link stops",
            description="Stops nothing: POST to the same address does. A browser gets a "
            "page with the button.",
            parameters=[LINK_TOKEN],
            responses=link_page(
                UnsubscriptionSerializer, "A page saying what would stop, with its button."
            ),
        ),
        "post": extend_schema(
            operation_id="subscriptions_unsubscribe_create",
            summary="Unsubscribe in one click (RFC 8058)",
            description="The address of the emails' `List-Unsubscribe` header, which mail "
            "clients POST `List-Unsubscribe=One-Click` to (any body is ignored): stops the "
            "alert, or the emails about the report to that address (as its follower, or "
            "as its reporter). Again: nothing more, the same answer.",
            parameters=[LINK_TOKEN],
            request=None,
            responses=link_page(UnsubscriptionSerializer, "A page saying it is done."),
        ),
    }
)

# --- Departments, areas, routing rules, service levels, reply templates ------------------


def managed(
    noun: str,
    plural: str,
    *,
    readers: str,
    delete_note: str = "",
    extra=None,
    validation_errors=(),
    query_errors=(),
):
    """The CRUD operations of a resource that `readers` read and admins manage, and the
    error codes its writes add to the fields' own (`validation_errors`: (codes, field))."""
    destroy_responses = {204: None}
    if delete_note:
        destroy_responses[409] = OpenApiResponse(ConflictErrorSerializer, description=delete_note)
    operations = {
        "list": extend_schema(summary=f"List {plural} ({readers})"),
        "create": extend_schema(summary=f"Create {noun} (admins)"),
        "retrieve": extend_schema(summary=f"Read {noun} ({readers})"),
        "update": extend_schema(summary=f"Replace {noun} (admins)"),
        "partial_update": extend_schema(summary=f"Change some fields of {noun} (admins)"),
        "destroy": extend_schema(summary=f"Delete {noun} (admins)", responses=destroy_responses),
        **(extra or {}),
    }
    errors = [(codes, name, {"actions": WRITE_ACTIONS}) for codes, name in validation_errors]
    return documented(
        operations=operations, validation_errors=[*errors, *query_errors, *PAGINATION_ERRORS]
    )


departments = managed(
    "a department",
    "departments (everyone: active ones; agents: all, with their members)",
    readers="everyone",
    delete_note="Routing rules send reports to this department.",
)
areas = managed(
    "an area",
    "areas (active ones; agents: all)",
    readers="everyone",
    validation_errors=[(["invalid_geometry", "invalid"], "geometry")],
)
service_levels = managed(
    "a service level",
    "service levels",
    readers="everyone",
    validation_errors=[(["unique"], "priority")],
)
reply_templates = managed("a reply template", "reply templates", readers="agents")
routing_rules = managed(
    "a routing rule",
    "routing rules, in the order they are tried",
    readers="agents",
    validation_errors=[(["incomplete"], "extra_field"), (["incomplete"], "extra_value")],
    query_errors=[
        (
            ["required", "invalid", "min_value", "max_value", "max_string_length"],
            "signalement",
            {"actions": ["dry_run"]},
        )
    ],
    extra={
        "dry_run": extend_schema(
            operation_id="routing_rules_dry_run",
            summary="Where routing would send a report now (agents)",
            description="Each active rule in order, whether the report matches it and "
            "why not; the department, priority and rule that routing would choose; the "
            "areas of the report's location. Changes nothing.",
            parameters=[
                OpenApiParameter(
                    "signalement",
                    {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1},
                    required=True,
                    description="The report's id.",
                )
            ],
            responses={200: RoutingDryRunSerializer},
        )
    },
)
