"""Failed logins, counted per account and client address (`signalements/lockout.py`)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class LoginFailures(models.Model):
    """The failed logins of one account from one client address in the current window,
    and the end of its lockout once they reached the limit. `key` is a SHA-256 of the
    account's name and the address: neither is kept as such."""

    key = models.CharField(_("key"), max_length=64, unique=True)
    failures = models.PositiveIntegerField(_("failures"), default=0)
    window_ends = models.DateTimeField(_("window ends"))
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)

    class Meta:
        verbose_name = _("failed logins")
        verbose_name_plural = _("failed logins")

    def __str__(self) -> str:
        return f"{self.key[:12]}… ({self.failures})"
