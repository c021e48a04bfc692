"""The back office: where staff triage reports all day."""

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator, format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from simple_history.admin import SimpleHistoryAdmin

from . import attachments, exports, photos, services
from .models import (
    ApiKey,
    Attachment,
    Category,
    Comment,
    ExtraField,
    Signalement,
    Status,
    reference_to_pk,
    with_photos,
)


class ExtraFieldInline(admin.StackedInline):
    """The category's questions; each is validated (choices for list types only)."""

    model = ExtraField
    fields = [("code", "label", "datatype", "required", "order"), "description", "choices"]
    extra = 0


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    inlines = [ExtraFieldInline]
    list_display = ["name", "code", "group", "is_active", "report_count"]
    list_filter = ["is_active", "group"]
    search_fields = ["name", "code", "description", "group"]
    prepopulated_fields = {"code": ["name"]}
    ordering = ["group", "name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(report_count=Count("signalements"))

    @admin.display(description=_("reports"), ordering="report_count")
    def report_count(self, category):
        return category.report_count


def _transition_action(to_status: Status):
    """A bulk action moving the selected reports to `to_status` through the workflow:
    reports the workflow does not allow to move are left as they are and listed."""

    def action(modeladmin, request, queryset):
        moved, refused = 0, []
        for signalement in queryset:
            try:
                services.transition(signalement=signalement, to_status=to_status, by=request.user)
            except services.TransitionNotAllowed:
                refused.append(signalement.reference)
            else:
                moved += 1
        if moved:
            modeladmin.message_user(
                request,
                ngettext(
                    "%(count)d report moved to “%(status)s”.",
                    "%(count)d reports moved to “%(status)s”.",
                    moved,
                )
                % {"count": moved, "status": to_status.label},
                messages.SUCCESS,
            )
        if refused:
            modeladmin.message_user(
                request,
                _("Not allowed by the workflow, left unchanged: %(refs)s")
                % {"refs": ", ".join(refused)},
                messages.WARNING,
            )

    action.__name__ = f"mark_{to_status.value}"
    action.short_description = format_lazy(_("Mark selected as “{}”"), to_status.label)
    action.allowed_permissions = ("change",)
    return action


@admin.action(description=_("Export selected to CSV"), permissions=["view"])
def export_csv(modeladmin, request, queryset):
    """The selected reports as a CSV download, in the list's order (see exports.py)."""
    return exports.csv_response(queryset)


class CommentInline(admin.TabularInline):
    """Public updates and internal notes, newest last; staff add notes here too."""

    model = Comment
    fields = ["created_at", "author", "author_role", "status", "is_internal", "body"]
    readonly_fields = ["created_at", "author", "author_role", "status"]
    extra = 0


def _thumbnail(attachment: Attachment, height: int = 120):
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
        return _thumbnail(attachment)

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


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented pattern)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


class SignalementAdminForm(forms.ModelForm):
    """The report, plus photos to add: checked and re-encoded as through the API
    (`photos.process`), stored once the report is saved."""

    add_photos = MultipleFileField(
        label=_("add photos"),
        required=False,
        help_text=_("JPEG, PNG or WebP. Stored without their metadata (EXIF, GPS)."),
    )

    class Meta:
        model = Signalement
        fields = []  # the admin's fieldsets name them (with its formfield overrides)

    def clean_add_photos(self):
        uploads = self.cleaned_data.get("add_photos") or []
        try:
            attachments.check_room(self.instance, len(uploads))
            return photos.process_all(uploads)
        except attachments.TooManyPhotos as refused:
            raise forms.ValidationError(str(refused), code="too_many_photos") from None
        except photos.RejectedFiles as refused:
            raise forms.ValidationError(
                [
                    forms.ValidationError(problem.message, code=problem.code)
                    for problem in refused.problems.values()
                ]
            ) from None


@admin.register(Signalement)
class SignalementAdmin(SimpleHistoryAdmin):
    form = SignalementAdminForm
    list_display = [
        "reference",
        "photo",
        "excerpt",
        "category",
        "status",
        "priority",
        "assigned_to",
        "date",
        "created_at",
        "is_public",
    ]
    list_display_links = ["reference", "excerpt"]
    list_filter = [
        "status",
        "priority",
        "category",
        "is_public",
        ("assigned_to", admin.RelatedOnlyFieldListFilter),
        "date",
        "created_at",
    ]
    list_select_related = ["category", "assigned_to"]
    list_per_page = 50
    search_fields = ["title", "description", "address", "contact_name", "contact_email"]
    search_help_text = _("Search title, description, address, contact; or a reference (SIG-…).")
    date_hierarchy = "created_at"
    show_full_result_count = False
    autocomplete_fields = ["category"]
    raw_id_fields = ["reporter", "duplicate_of"]
    inlines = [AttachmentInline, CommentInline, DuplicateInline]
    # A link typed without a scheme is read as https (Django 6's default).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = [
        "reference",
        "uuid",
        "status",
        "api_key",
        "created_at",
        "updated_at",
        "resolved_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "reference",
                    "title",
                    "description",
                    "date",
                    "category",
                    "extra",
                    "media_url",
                ]
            },
        ),
        (
            _("Triage"),
            {"fields": ["status", "priority", "assigned_to", "is_public", "duplicate_of"]},
        ),
        (_("Location"), {"fields": ["latitude", "longitude", "address"]}),
        (_("Photos"), {"fields": ["add_photos"]}),
        (
            _("Contact (private)"),
            {
                "fields": [
                    "reporter",
                    "api_key",
                    "contact_name",
                    "contact_email",
                    "contact_phone",
                ]
            },
        ),
        (
            _("Record"),
            {
                "fields": ["uuid", "created_at", "updated_at", "resolved_at"],
                "classes": ["collapse"],
            },
        ),
    ]
    actions = [
        *(_transition_action(status) for status in Status if status != Status.NEW),
        export_csv,
    ]

    @admin.display(description=_("reference"), ordering="id")
    def reference(self, signalement):
        return signalement.reference

    @admin.display(description=_("report"))
    def excerpt(self, signalement):
        return signalement.title or Truncator(signalement.description).chars(80)

    @admin.display(description=_("photo"))
    def photo(self, signalement):
        photos = signalement.photos  # prefetched: see get_queryset
        return _thumbnail(photos[0], height=40) if photos else ""

    def get_queryset(self, request):
        return with_photos(super().get_queryset(request))

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        added = form.cleaned_data.get("add_photos") or []
        if not added:
            return
        try:
            attachments.add(signalement=form.instance, photos=added, by=request.user)
        except attachments.TooManyPhotos as refused:  # another upload came first
            self.message_user(request, str(refused), messages.ERROR)

    def save_formset(self, request, form, formset, change):
        """Comments written in the admin are signed by the staff member; photos are
        removed with their files."""
        if formset.model is Attachment:
            formset.save(commit=False)
            for photo in formset.deleted_objects:
                attachments.remove(photo)
            return
        for comment in formset.save(commit=False):
            if comment.pk is None:
                comment.author = request.user
                comment.author_role = "agent"
            comment.save()
        for comment in formset.deleted_objects:
            comment.delete()

    def get_search_results(self, request, queryset, search_term):
        pk = reference_to_pk(search_term)
        if pk is not None:
            return queryset.filter(pk=pk), False
        return super().get_search_results(request, queryset, search_term)


@admin.action(description=_("Revoke selected API keys"), permissions=["change"])
def revoke_api_keys(modeladmin, request, queryset):
    revoked = queryset.filter(is_active=True).update(is_active=False, revoked_at=timezone.now())
    modeladmin.message_user(
        request,
        ngettext("%(count)d API key revoked.", "%(count)d API keys revoked.", revoked)
        % {"count": revoked},
        messages.SUCCESS,
    )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Open311 API keys. The raw key is generated on creation and shown once, in a
    message: only its hash is stored. Revoking (the action, or unticking "active") is
    final: create a new key instead."""

    list_display = ["prefix_display", "name", "user", "created_at", "last_used_at", "is_active"]
    list_display_links = ["prefix_display", "name"]
    list_filter = ["is_active"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    raw_id_fields = ["user"]
    actions = [revoke_api_keys]

    @admin.display(description=_("key"), ordering="prefix")
    def prefix_display(self, api_key):
        return f"{api_key.prefix}…"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "user"]
        return [
            "name",
            "user",
            "prefix_display",
            "is_active",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        readonly = ["prefix_display", "created_at", "last_used_at", "revoked_at"]
        if not obj.is_active:
            readonly.append("is_active")
        return readonly

    def save_model(self, request, obj, form, change):
        raw_key = None
        if not change:
            raw_key = obj.set_new_key()
        elif not obj.is_active and obj.revoked_at is None:
            obj.revoked_at = timezone.now()
        super().save_model(request, obj, form, change)
        if raw_key is not None:
            self.message_user(
                request,
                format_html(
                    _(
                        "The API key of “{}” is <code>{}</code>. Copy it now: it will not be "
                        "shown again."
                    ),
                    obj.name,
                    raw_key,
                ),
                messages.WARNING,
            )
