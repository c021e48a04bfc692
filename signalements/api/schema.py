"""OpenAPI generation: drf-standardized-errors' AutoSchema (documented error responses),
plus anonymous access where our permission classes allow it."""

import re

from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema

# An anonymous reporter's secret for their new report (see reporter_tokens.py); declared
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


def error_attr_patterns(result, generator, request, public):
    """drf-standardized-errors names the errors of list items and dict values with
    placeholders (`extra_fields.INDEX.code`, `extra.KEY`). The real `attr` holds the
    index or key (`extra.lamp_id`): document it as a pattern, not a one-value enum."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
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
    return result
