"""The reporter's verdict on a resolved report: fixed, or not fixed. "Not fixed" reopens
the report, or (per category) asks the agents to (a reopen request they accept or
refuse). See `signalements/feedback.py`."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from .categories import ReopenPolicy  # noqa: F401 (with the verdict's other choices)
from .reports import Signalement


class Reopen(models.TextChoices):
    NONE = "", _("not asked")
    REOPENED = "reopened", _("reopened")
    PENDING = "pending", pgettext_lazy("reopen request", "pending")
    ACCEPTED = "accepted", pgettext_lazy("reopen request", "accepted")
    REFUSED = "refused", pgettext_lazy("reopen request", "refused")


class Feedback(models.Model):
    """One answer of a report's reporter after one of its resolutions."""

    signalement = models.ForeignKey(
        Signalement,
        verbose_name=_("signalement"),
        on_delete=models.CASCADE,
        related_name="feedback",
    )
    # The resolution answered: a report resolved again may be answered again.
    resolved_at = models.DateTimeField(_("resolution answered"))
    is_fixed = models.BooleanField(_("fixed"))
    comment = models.TextField(_("comment"), blank=True, max_length=4000)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("author"),
        on_delete=models.SET_NULL,
        related_name="+",
        null=True,
        blank=True,
        help_text=_("The logged-in reporter; empty when answered through the email's link."),
    )
    reopen = models.CharField(
        _("reopening"), max_length=10, choices=Reopen.choices, blank=True, default=""
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.SET_NULL,
        related_name="+",
        null=True,
        blank=True,
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True, max_length=4000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("reporter's verdict")
        verbose_name_plural = _("reporters' verdicts")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["signalement", "resolved_at"], name="feedback_once_per_resolution"
            )
        ]
        indexes = [models.Index(fields=["reopen", "-created_at"], name="feedback_reopen_idx")]

    def __str__(self) -> str:
        return str(_("fixed") if self.is_fixed else _("not fixed"))
