"""What a report's page shows inline: its photos, its comments, its duplicates."""

from django.contrib import admin
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from signalements.models import Attachment, Comment, Signalement


class CommentInline(admin.TabularInline):
    """Public updates and internal notes, newest last; staff add notes here too."""

    model = Comment
    fields = ["created_at", "author", "author_role", "status", "is_internal", "body"]
    readonly_fields = ["created_at", "author", "author_role", "status"]
    extra = 0


def thumbnail(attachment: Attachment, height: int = 120):
    """The photo's thumbnail, linking to the photo itself."""
    return format_html(
        '<a href="{}" target="_blank" rel="noopener"><img src="{}" alt="{}" '
        'style="max-height: {}px; max-width: {}px"></a>',
        attachment.file.url,
        attachment.thumbnail.url,
        _("photo %(id)s") % {"id": attachment.pk},
        height,
        height * 2,
    )


class AttachmentInline(admin.TabularInline):
    """The report's photos, as thumbnails; deleting one deletes its files. Photos are
    added with the form's "add photos" field (or through the API), which checks and
    re-encodes them."""

    model = Attachment
    fields = ["preview", "content_type", "dimensions", "file_size", "uploaded_by", "created_at"]
    readonly_fields = fields
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("photo"))
    def preview(self, attachment):
        return thumbnail(attachment)

    @admin.display(description=_("dimensions"))
    def dimensions(self, attachment):
        return f"{attachment.width} × {attachment.height}"

    @admin.display(description=_("size"))
    def file_size(self, attachment):
        return filesizeformat(attachment.size)


class DuplicateInline(admin.TabularInline):
    """The reports marked as duplicates of this one (the other side of `duplicate_of`)."""

    model = Signalement
    fk_name = "duplicate_of"
    fields = ["reference", "title", "status", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name = _("duplicate")
    verbose_name_plural = _("duplicates of this report")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("reference"))
    def reference(self, signalement):
        return signalement.reference
