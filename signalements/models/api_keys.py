"""Open311 API keys, stored hashed."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


def hash_api_key(raw_key: str) -> str:
    """The SHA-256 (hex) under which an API key is stored: the raw key never is."""
    return hashlib.sha256(raw_key.encode("utf-8", "replace")).hexdigest()


class ApiKey(models.Model):
    """A key with which a city system or app writes through the Open311 API, on behalf
    of an organisation (`name`) and an account responsible for it (`user`).

    The raw key is shown once, when the key is created (`ApiKey.issue`); only its SHA-256
    and its first characters (`prefix`, to recognise it) are stored. A revoked key, or a
    key whose user is inactive, is refused."""

    PREFIX_LENGTH = 8

    name = models.CharField(
        _("name"), max_length=120, help_text=_("The organisation or application using it.")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text=_("The account responsible for the key: an inactive account's keys fail."),
    )
    prefix = models.CharField(_("prefix"), max_length=PREFIX_LENGTH, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(
        pgettext_lazy("API key", "active"),
        default=True,
        help_text=_("Untick to revoke the key (for good)."),
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def set_new_key(self) -> str:
        """Give the key a new random value and return it: the only time it is known."""
        raw_key = secrets.token_urlsafe(32)
        self.prefix = raw_key[: self.PREFIX_LENGTH]
        self.key_hash = hash_api_key(raw_key)
        return raw_key

    @classmethod
    def issue(cls, *, name: str, user) -> tuple["ApiKey", str]:
        """A new saved key and its raw value."""
        api_key = cls(name=name, user=user)
        raw_key = api_key.set_new_key()
        api_key.save()
        return api_key, raw_key

    def is_usable(self) -> bool:
        return self.is_active and self.revoked_at is None and self.user.is_active
