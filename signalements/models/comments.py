"""Comments on a report: public updates, and internal notes that only agents read."""

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from .reports import DESCRIPTION_MAX_LENGTH, Signalement, Status


class Comment(models.Model):
    """A public update on a report, or an internal note that only agents read."""

    signalement = models.ForeignKey(
        Signalement,
        verbose_name=_("signalement"),
        on_delete=models.CASCADE,
        related_name="comments",
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("author"),
        on_delete=models.SET_NULL,
        related_name="+",
        null=True,
        blank=True,
    )
    body = models.TextField(
        _("text"),
        max_length=DESCRIPTION_MAX_LENGTH,
        validators=[MaxLengthValidator(DESCRIPTION_MAX_LENGTH)],
    )
    author_role = models.CharField(
        _("written as"),
        max_length=20,
        choices=[("reporter", _("Reporter")), ("agent", _("Agent"))],
        help_text=_("Whether an agent or the reporter wrote it (shown to everyone)."),
    )
    is_internal = models.BooleanField(
        _("internal note"), default=False, help_text=_("Internal notes are read by agents only.")
    )
    status = models.CharField(
        _("status set"),
        max_length=20,
        choices=Status.choices,
        null=True,
        blank=True,
        help_text=_("The status this update came with, when it is a status change's note."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("comment")
        verbose_name_plural = _("comments")
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["signalement", "created_at", "id"], name="comment_report_idx")
        ]

    def __str__(self) -> str:
        return Truncator(self.body).chars(60)
