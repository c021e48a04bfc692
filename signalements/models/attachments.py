"""Photos of a report, as stored: re-encoded without metadata, with a thumbnail (the
checks and the files are `photos.py` and `attachments.py` in the domain)."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Attachment(models.Model):
    """A photo of a report: the uploaded image re-encoded without its metadata, and a
    thumbnail (see `photos.py`)."""

    signalement = models.ForeignKey(
        "Signalement",
        verbose_name=_("signalement"),
        on_delete=models.CASCADE,
        related_name="attachments",
    )
    file = models.FileField(_("file"), max_length=255)
    thumbnail = models.FileField(_("thumbnail"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=40)
    size = models.PositiveIntegerField(_("size (bytes)"))
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        on_delete=models.SET_NULL,
        related_name="+",
        null=True,
        blank=True,
        help_text=_("Empty for an anonymous reporter."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("photo")
        verbose_name_plural = _("photos")
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["signalement", "created_at", "id"], name="attachment_report_idx"),
            # A photo's URL names its file: the check before serving it finds its report.
            models.Index(fields=["file"], name="attachment_file_idx"),
            models.Index(fields=["thumbnail"], name="attachment_thumbnail_idx"),
        ]

    def __str__(self) -> str:
        return self.file.name


PREFETCHED_PHOTOS = "prefetched_photos"


def with_photos(queryset):
    """Reports with their photos, in one more query for all of them. A plain list per
    report (`Signalement.photos`): cheaper than a prefetched manager, which builds a
    queryset for each report."""
    return queryset.prefetch_related(models.Prefetch("attachments", to_attr=PREFETCHED_PHOTOS))
