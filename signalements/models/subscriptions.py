"""Who hears about reports besides their reporter: people who follow a report, and
people who asked for alerts about new reports in an area (and categories). Each is an
email address that its owner confirmed (a link sent to it), except a logged-in caller's
own account address, confirmed at once. A reporter who asked for no more emails about
their report is a `ReporterOptOut` (no address kept). The rules are in
`signalements/subscriptions.py`."""

import secrets

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..languages import default_language
from .reports import Signalement


def new_key() -> str:
    """A random part of a subscription's links: a link stays bound to this one
    subscription (an id alone could be that of a deleted one's successor)."""
    return secrets.token_urlsafe(12)


class Subscription(models.Model):
    class Kind(models.TextChoices):
        FOLLOW = "follow", _("Follow a report")
        ALERT = "alert", _("Alert about new reports")

    class Area(models.TextChoices):
        CIRCLE = "circle", _("Circle")
        BBOX = "bbox", _("Box")

    class Frequency(models.TextChoices):
        IMMEDIATE = "immediate", _("Immediately")
        DAILY = "daily", _("Daily digest")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    email = models.EmailField(_("email address"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("account"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The account whose own address it is, when asked for while logged in."),
    )
    language = models.CharField(_("language"), max_length=10, default=default_language)
    key = models.CharField(max_length=32, default=new_key, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)

    # A follow: the report.
    signalement = models.ForeignKey(
        Signalement,
        verbose_name=_("signalement"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="subscriptions",
    )

    # An alert: a circle (centre and radius) or a box, the categories (codes; none: all),
    # how often. A circle's bounding box is kept too: new reports are matched first by it.
    area = models.CharField(_("area"), max_length=10, choices=Area.choices, blank=True)
    latitude = models.DecimalField(
        _("latitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    longitude = models.DecimalField(
        _("longitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    radius_m = models.PositiveIntegerField(
        _("radius (m)"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    min_latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    min_longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    max_latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    max_longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    categories = models.JSONField(_("categories"), default=list, blank=True)
    frequency = models.CharField(
        _("frequency"), max_length=10, choices=Frequency.choices, blank=True
    )
    last_digest_at = models.DateTimeField(
        _("last digest"),
        null=True,
        blank=True,
        help_text=_("When the last daily digest was made (one a day at most)."),
    )

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "signalement",
                condition=models.Q(kind="follow"),
                name="subscription_one_follow_per_address",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="follow", signalement__isnull=False)
                | models.Q(kind="alert", signalement__isnull=True, min_latitude__isnull=False),
                name="subscription_follow_or_alert",
            ),
        ]
        indexes = [
            models.Index(
                fields=["kind", "frequency", "min_latitude", "max_latitude"],
                name="subscription_alert_idx",
            ),
            models.Index(Lower("email"), name="subscription_email_idx"),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.FOLLOW:
            return _("Follows %(reference)s") % {"reference": self.signalement.reference}
        return _("Alert %(id)s") % {"id": self.pk}

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None


class ReporterOptOut(models.Model):
    """The reporter of this report asked for no more emails about it (its status
    changes, the agents' updates). No address is kept: the reporter's is the report's."""

    signalement = models.OneToOneField(
        Signalement,
        verbose_name=_("signalement"),
        on_delete=models.CASCADE,
        related_name="reporter_opt_out",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("reporter's opt-out")
        verbose_name_plural = _("reporters' opt-outs")
