"""A report's contact address that its owner confirmed (`contact_confirmation.py`)."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .reports import Signalement


class ConfirmedContact(models.Model):
    """The `contact_email` of this report was confirmed by its owner (the link of the
    report's first email), or had been before (another report, a follow): its status
    changes and updates may be emailed to it. The address itself is not kept here, only a
    keyed hash of it (the report holds the address; this row says it was confirmed), and
    the row goes with the report's contact data (erasure, retention)."""

    signalement = models.OneToOneField(
        Signalement,
        verbose_name=_("signalement"),
        on_delete=models.CASCADE,
        related_name="confirmed_contact",
    )
    address_digest = models.CharField(_("address (keyed hash)"), max_length=64, db_index=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), default=timezone.now)

    class Meta:
        verbose_name = _("confirmed contact address")
        verbose_name_plural = _("confirmed contact addresses")

    def __str__(self) -> str:
        return str(self.signalement_id)
