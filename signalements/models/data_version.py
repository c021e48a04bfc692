"""The data version's counters (see `signalements/data_version.py`)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class DataVersion(models.Model):
    """One shard of the data version: the version is the sum of every shard's `value`.
    Written only by the database triggers of migration 0009, never by the code."""

    shard = models.PositiveSmallIntegerField(primary_key=True)
    value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("data version shard")
        default_permissions = ()

    def __str__(self) -> str:
        return f"shard {self.shard}: {self.value}"
