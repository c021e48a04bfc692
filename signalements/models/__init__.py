"""The domain's models, a module each: reports and their workflow, categories and their
extra fields, comments, photos, Open311 API keys, the data version's counters, the
responses kept for retries (idempotency keys), follows and alerts (subscriptions).
Import them from here (`from signalements.models import Signalement`), as Django's
"organizing models in a package" recommends."""

from .api_keys import ApiKey, hash_api_key
from .areas import Area
from .attachments import PREFETCHED_PHOTOS, Attachment, with_photos
from .categories import Category, ExtraField
from .comments import Comment
from .contact_confirmations import ConfirmedContact
from .data_version import DataVersion
from .departments import Department
from .feedback import Feedback, Reopen, ReopenPolicy
from .idempotency import IdempotencyKey
from .logins import LoginFailures
from .reply_templates import ReplyTemplate
from .reports import (
    AGENTS_GROUP,
    CLOSED_STATUSES,
    DESCRIPTION_MAX_LENGTH,
    PRIORITY_RANK,
    REFERENCE_PREFIX,
    TRANSITIONS,
    Priority,
    Signalement,
    Status,
    fits_in_utc,
    reference_of,
    reference_to_pk,
    validate_not_in_future,
    validate_web_url,
    with_writable_offset,
)
from .rollup import (
    DurationMicroseconds,
    ReportRollup,
    ReportRollupDelta,
    RollupMonth,
    RollupState,
)
from .routing import RoutingRule, ServiceLevel, TimeUnit
from .subscriptions import ReporterOptOut, Subscription
from .webhooks import (
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
    WebhookEvent,
    new_webhook_secret,
)

__all__ = [
    "AGENTS_GROUP",
    "CLOSED_STATUSES",
    "DESCRIPTION_MAX_LENGTH",
    "PREFETCHED_PHOTOS",
    "PRIORITY_RANK",
    "REFERENCE_PREFIX",
    "TRANSITIONS",
    "ApiKey",
    "Area",
    "Attachment",
    "Category",
    "Comment",
    "ConfirmedContact",
    "DataVersion",
    "DurationMicroseconds",
    "Department",
    "Feedback",
    "IdempotencyKey",
    "LoginFailures",
    "ExtraField",
    "Priority",
    "Reopen",
    "ReopenPolicy",
    "ReplyTemplate",
    "ReportRollup",
    "ReportRollupDelta",
    "ReporterOptOut",
    "RollupMonth",
    "RollupState",
    "RoutingRule",
    "ServiceLevel",
    "Signalement",
    "Status",
    "Subscription",
    "TimeUnit",
    "WebhookDelivery",
    "WebhookDeliveryAttempt",
    "WebhookEndpoint",
    "WebhookEvent",
    "fits_in_utc",
    "hash_api_key",
    "new_webhook_secret",
    "reference_of",
    "reference_to_pk",
    "validate_not_in_future",
    "validate_web_url",
    "with_photos",
    "with_writable_offset",
]
