"""Categories (Open311 "services") and the extra fields that their reports answer."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from ..extra import Datatype, choices_problem


class ReopenPolicy(models.TextChoices):
    """What a reporter's "not fixed" does to a resolved report of the category."""

    REOPEN = "reopen", _("reopen the report")
    REQUEST = "request", _("ask the agents to reopen it")


class Category(models.Model):
    """A kind of problem (Open311 "service"); reports refer to it by its `code`."""

    code = models.SlugField(
        _("code"),
        max_length=64,
        unique=True,
        help_text=_("Stable identifier used by the API (the Open311 service_code)."),
    )
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True, max_length=2000)
    group = models.CharField(
        _("group"), max_length=120, blank=True, help_text=_("Groups categories in lists.")
    )
    is_active = models.BooleanField(
        pgettext_lazy("category", "active"),
        default=True,
        help_text=_("Only active categories accept new reports."),
    )
    department = models.ForeignKey(
        "Department",
        verbose_name=_("department"),
        on_delete=models.SET_NULL,
        related_name="categories",
        null=True,
        blank=True,
        help_text=_("Handles its reports unless a routing rule says otherwise."),
    )
    reopen_policy = models.CharField(
        _("when the reporter says “not fixed”"),
        max_length=10,
        choices=ReopenPolicy.choices,
        default=ReopenPolicy.REOPEN,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["group", "name", "id"]

    def __str__(self) -> str:
        return self.name


class ExtraField(models.Model):
    """A question that reports of a category answer in their `extra` object (Open311
    "service definition" attribute), e.g. the lamp id of a broken streetlight."""

    category = models.ForeignKey(
        Category, verbose_name=_("category"), on_delete=models.CASCADE, related_name="extra_fields"
    )
    code = models.SlugField(
        _("code"), max_length=64, help_text=_("Key in the report's `extra` object.")
    )
    label = models.CharField(_("label"), max_length=200)
    datatype = models.CharField(_("type"), max_length=20, choices=Datatype.choices)
    required = models.BooleanField(_("required"), default=False)
    description = models.TextField(_("description"), blank=True, max_length=2000)
    order = models.PositiveIntegerField(_("order"), default=0)
    choices = models.JSONField(
        _("choices"),
        default=list,
        blank=True,
        help_text=_('For list types: [{"key": "off", "label": "Éteint"}, …].'),
    )

    class Meta:
        verbose_name = _("extra field")
        verbose_name_plural = _("extra fields")
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["category", "code"], name="extrafield_code_unique")
        ]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        super().clean()
        problem = choices_problem(self.datatype, self.choices)
        if problem:
            raise ValidationError({"choices": ValidationError(problem, code="invalid_choices")})
