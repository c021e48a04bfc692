"""The responses kept for `Idempotency-Key` retries (see `signalements/idempotency.py`)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class IdempotencyKey(models.Model):
    """A write made with an `Idempotency-Key`, and the response it got: a retry with the
    same key, by the same caller, with the same request, gets that response again
    instead of writing twice. Stored in the write's own transaction; kept until
    `expires_at` (`IDEMPOTENCY_KEY_TTL_HOURS`)."""

    # SHA-256 of the caller's scope and the key: neither the key (part of a derived
    # secret, see `Idempotency.derive`) nor who the caller is (an address) is stored.
    digest = models.CharField(max_length=64, unique=True)
    # SHA-256 of the request: method, path and its data.
    fingerprint = models.CharField(max_length=64)
    # Random, for the secrets derived from the key (a reporter token).
    salt = models.CharField(max_length=32)
    status_code = models.PositiveSmallIntegerField()
    headers = models.JSONField(default=dict)
    # The body as sent, but for derived secrets, replaced by a mark (JSON never holds
    # a raw NUL byte) and derived again on replay.
    body = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("idempotency key")
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.digest[:12]}… ({self.status_code}, until {self.expires_at:%Y-%m-%d %H:%M})"
