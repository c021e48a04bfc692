"""Routing rules and service levels: which department handles a report, at which
priority, and by when. Applied by `signalements/routing.py` (on create, and when the
category or the place of a report changes)."""

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from .areas import Area
from .categories import Category
from .departments import Department
from .reports import Priority


class RoutingRule(models.Model):
    """ "When the category is one of … and the place in one of … (and an extra answer
    equals …), then the department is … (and the priority …)". Rules are tried in their
    order; the first that matches wins; when none does, the category's department."""

    order = models.PositiveIntegerField(
        _("order"), default=0, help_text=_("Rules are tried from the lowest order up.")
    )
    name = models.CharField(_("name"), max_length=120, blank=True)
    categories = models.ManyToManyField(
        Category,
        verbose_name=_("categories"),
        related_name="routing_rules",
        blank=True,
        help_text=_("The rule applies to reports of these categories (none: any)."),
    )
    areas = models.ManyToManyField(
        Area,
        verbose_name=_("areas"),
        related_name="routing_rules",
        blank=True,
        help_text=_("…located in one of these areas (none: anywhere)."),
    )
    extra_field = models.SlugField(
        _("extra field"),
        max_length=64,
        blank=True,
        help_text=_("…whose answer to this extra field (its code)…"),
    )
    extra_value = models.CharField(
        _("extra answer"),
        max_length=200,
        blank=True,
        help_text=_("…equals this value (for a list of choices: one of the answers)."),
    )
    department = models.ForeignKey(
        Department,
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        related_name="routing_rules",
        help_text=_("Then the report goes to this department."),
    )
    priority = models.CharField(
        _("priority"),
        max_length=10,
        choices=Priority.choices,
        blank=True,
        help_text=_("…and gets this priority (empty: unchanged)."),
    )
    is_active = models.BooleanField(pgettext_lazy("rule", "active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("routing rule")
        verbose_name_plural = _("routing rules")
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.name or _("rule %(number)s") % {"number": self.pk or "?"}

    def clean(self) -> None:
        super().clean()
        if bool(self.extra_field) != bool(self.extra_value):
            missing = "extra_value" if self.extra_field else "extra_field"
            raise ValidationError(
                {
                    missing: ValidationError(
                        _("An extra field and its answer go together."), code="incomplete"
                    )
                }
            )


class TimeUnit(models.TextChoices):
    HOURS = "hours", _("calendar hours")
    WORKING_DAYS = "working_days", _("working days")


class ServiceLevel(models.Model):
    """How long the organisation gives itself to handle a report of a category (for one
    priority, or any): calendar hours, or working days (weekends and public holidays of
    `SLA_HOLIDAYS_COUNTRY` left out). A report is due that long after it was filed."""

    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        on_delete=models.CASCADE,
        related_name="service_levels",
    )
    priority = models.CharField(
        _("priority"),
        max_length=10,
        choices=Priority.choices,
        blank=True,
        help_text=_("For reports of this priority only (empty: any priority)."),
    )
    amount = models.PositiveIntegerField(_("handling time"), validators=[MinValueValidator(1)])
    unit = models.CharField(
        _("unit"), max_length=20, choices=TimeUnit.choices, default=TimeUnit.WORKING_DAYS
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("service level")
        verbose_name_plural = _("service levels")
        ordering = ["category", "priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["category", "priority"], name="servicelevel_category_priority_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.get_unit_display()}"
