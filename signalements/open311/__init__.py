"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2), served under /open311/v2/
beside the REST API, over the same models and rules.

A second, separate contract: its own URLs, wire format (form-encoded requests; JSON or
XML chosen by the `.json`/`.xml` suffix; errors as `[{"code", "description"}]`) and
credentials (an `api_key` form field, see `ApiKey`), kept out of the OpenAPI schema.

How the standard maps onto Signalements:

| Open311 | Signalements |
|---|---|
| service (`service_code`) | an active `Category` (`code`) |
| service definition attributes | the category's `ExtraField`s; answers go to `extra` |
| service request (`service_request_id`) | a `Signalement` (its `reference`, or its id) |
| `status` open / closed | new, acknowledged, in_progress / resolved, rejected |
| `status_notes` | the latest public note of a status change |
| `requested_datetime`, `updated_datetime` | `created_at`, `updated_at` |
| `address_string` (POST), `address` (GET) | `address` |
| `first_name` + `last_name`, `email`, `phone` | `contact_name`, `contact_email`, `contact_phone` (private: never returned) |

Only public reports (`is_public`) are read, as by an anonymous REST client.
"""

# When this API last changed (service discovery's `changeset`).
CHANGESET = "2026-11-25T00:00:00Z"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
