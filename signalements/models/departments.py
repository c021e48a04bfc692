"""Departments: the teams that handle reports (lighting, roads north…). Agents belong to
departments; a category names the department that handles its reports by default, and
routing rules (`routing.py`) refine it by place."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords


class Department(models.Model):
    """A team responsible for reports; its members are agents."""

    code = models.SlugField(
        _("code"),
        max_length=64,
        unique=True,
        help_text=_("Stable identifier used by the API and the routing rules."),
    )
    name = models.CharField(_("name"), max_length=120)
    email = models.EmailField(
        _("email"), blank=True, help_text=_("The team's shared address, if any.")
    )
    is_active = models.BooleanField(
        pgettext_lazy("department", "active"),
        default=True,
        help_text=_("Only active departments receive newly routed reports."),
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("members"),
        related_name="departments",
        blank=True,
        help_text=_("The agents of this department."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name
