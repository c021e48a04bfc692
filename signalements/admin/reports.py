"""Reports in the back office: where staff triage them all day. The list (filters,
search by reference, bulk workflow actions, CSV export) and the report's page (its
photos, comments and duplicates inline: `inlines.py`; photos added through `forms.py`)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.text import Truncator, format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from simple_history.admin import SimpleHistoryAdmin

from signalements import attachments, exports, services
from signalements.models import Attachment, Signalement, Status, reference_to_pk, with_photos

from .forms import SignalementAdminForm
from .inlines import AttachmentInline, CommentInline, DuplicateInline, thumbnail


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
    """The selected reports as a CSV download, in the list's order (see `signalements/exports.py`)."""
    return exports.csv_response(queryset)


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

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """A past version is shown, not restored: "Revert" would put a report back to any
        earlier state, past the workflow (a resolved report back to `new`, which
        re-enables its anonymous reporter's token: a security audit's finding).
        simple-history's SIMPLE_HISTORY_REVERT_DISABLED only hides the button."""
        if request.method == "POST":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_readonly_fields(self, request, obj=None):
        """Who filed a report is fixed for agents: setting it would let that user read
        the report's contact data through the API (a security audit's finding).
        Superusers may still correct it."""
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields.append("reporter")
        return fields

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
                    "loaded_version",
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
        return thumbnail(photos[0], height=40) if photos else ""

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
