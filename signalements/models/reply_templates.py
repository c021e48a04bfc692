"""Saved texts that agents pick for the note of a status change, with placeholders
(`{reference}`, `{category}`, `{due_at}`) filled for the report at hand."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from .categories import Category
from .reports import Status


class ReplyTemplate(models.Model):
    code = models.SlugField(
        _("code"),
        max_length=64,
        unique=True,
        help_text=_("Stable identifier, used by `?template=` on the transition endpoint."),
    )
    name = models.CharField(_("name"), max_length=120)
    body = models.TextField(
        _("text"),
        max_length=4000,
        help_text=_("Placeholders: {reference}, {category}, {due_at}."),
    )
    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        on_delete=models.CASCADE,
        related_name="reply_templates",
        null=True,
        blank=True,
        help_text=_("For reports of this category only (empty: any category)."),
    )
    to_status = models.CharField(
        _("target status"),
        max_length=20,
        choices=Status.choices,
        blank=True,
        help_text=_("For moves to this status only (empty: any move)."),
    )
    is_active = models.BooleanField(pgettext_lazy("template", "active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("reply template")
        verbose_name_plural = _("reply templates")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name
