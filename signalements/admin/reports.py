"""Reports in the back office: where staff triage them all day. The list (filters,
search by reference, statuses and due dates in colour, a map of the filter's reports,
bulk workflow actions with a public note, CSV export) and the report's page (the
workflow's buttons, notes and map above the form: `workflow.py`; its extra answers as
fields: `extra.py`; its photos, comments and duplicates inline: `inlines.py`; photos
added through `forms.py`). With `AGENT_SCOPE=department`, an agent's list and pages hold
only the reports of their departments, those assigned to them and the unrouted ones
(`roles.agent_scope`): any other report is not found."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator, format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from simple_history.admin import SimpleHistoryAdmin

from signalements import attachments, events, exports, service_levels, services
from signalements.models import (
    CLOSED_STATUSES,
    Attachment,
    Department,
    Signalement,
    Status,
    reference_of,
    reference_to_pk,
    with_photos,
)
from signalements.roles import agent_scope

from . import workflow
from .extra import PREFIX as ANSWER_PREFIX
from .extra import answers_category
from .feedback import FeedbackInline
from .forms import SignalementAdminForm
from .inlines import AttachmentInline, CommentInline, DuplicateInline, thumbnail

# Reports drawn at most on the list's map (the first ones in the list's order).
MAP_LIMIT = 500
# An open report due within this delay is shown as due soon (orange) in the list.
DUE_SOON = timedelta(hours=24)


class OverdueFilter(admin.SimpleListFilter):
    """Open reports past their due date ("yes"), or all the others ("no": closed, due
    later, or without a due date); `?overdue=yes` is the dashboard's link."""

    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(service_levels.overdue())
        if self.value() == "no":
            return queryset.filter(service_levels.not_overdue())
        return queryset


class ReportActionForm(helpers.ActionForm):
    """The list's action bar, with a public note that the bulk transitions carry."""

    note = forms.CharField(
        label=_("Public note (optional):"),
        required=False,
        max_length=workflow.NOTE_MAX_LENGTH,
        widget=forms.TextInput(attrs={"size": 40}),
    )


def _transition_action(to_status: Status):
    """A bulk action moving the selected reports to `to_status` through the workflow:
    reports the workflow does not allow to move are left as they are and listed."""

    def action(modeladmin, request, queryset):
        try:
            note = ReportActionForm.base_fields["note"].clean(request.POST.get("note", ""))
        except ValidationError as refused:
            for problem in refused.messages:
                modeladmin.message_user(request, problem, messages.ERROR)
            return
        moved, refused = 0, []
        for signalement in queryset:
            try:
                services.transition(
                    signalement=signalement, to_status=to_status, by=request.user, note=note
                )
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
    action.short_description = format_lazy(_("Move selected to “{}”"), to_status.label)
    action.allowed_permissions = ("change",)
    return action


@admin.action(description=_("Export selected to CSV"), permissions=["view"])
def export_csv(modeladmin, request, queryset):
    """The selected reports as a CSV download, in the list's order (see `signalements/exports.py`)."""
    return exports.csv_response(queryset)


@admin.register(Signalement)
class SignalementAdmin(SimpleHistoryAdmin):
    form = SignalementAdminForm
    action_form = ReportActionForm

    class Media:
        # The maps of the list and of a report's page (Leaflet, from our static files).
        css = {"all": ["signalements/vendor/leaflet/leaflet.css"]}
        js = ["signalements/vendor/leaflet/leaflet.js", "signalements/admin/maps.js"]

    # Fits a 1366 px screen: the date of the events and the public flag are filters.
    list_display = [
        "reference",
        "photo",
        "excerpt",
        "category",
        "status_badge",
        "priority_label",
        "assigned_to",
        "due",
        "created",
    ]
    list_display_links = ["reference", "excerpt"]
    list_filter = [
        "status",
        OverdueFilter,
        "priority",
        "category",
        "department",
        "areas",
        "is_public",
        ("assigned_to", admin.RelatedOnlyFieldListFilter),
        "date",
        "created_at",
    ]
    list_select_related = ["category", "assigned_to"]
    list_per_page = 50
    # Newest first; the id breaks ties, so pages never overlap (the model's ordering).
    ordering = ["-created_at", "-id"]
    search_fields = ["title", "description", "address", "contact_name", "contact_email"]
    search_help_text = _("Search title, description, address, contact; or a reference (SIG-…).")
    # No date hierarchy: its years and months are a DISTINCT over every report's date in
    # the time zone (37 ms of a 93 ms list at 10,000 reports on SQLite, where each row
    # goes through a Python function). The "created at" filter offers today, 7 days,
    # this month, this year.
    show_full_result_count = False
    autocomplete_fields = ["category"]
    raw_id_fields = ["reporter", "duplicate_of"]
    inlines = [AttachmentInline, CommentInline, DuplicateInline]

    def get_inlines(self, request, obj):
        """The reporters' verdicts too, for a report that has some (read-only)."""
        inlines = list(super().get_inlines(request, obj))
        if obj is not None and obj.feedback.exists():
            inlines.append(FeedbackInline)
        return inlines

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
        "due_at",
        "area_names",
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
                    "media_url",
                    "loaded_version",
                ]
            },
        ),
        (
            _("Triage"),
            {
                "fields": [
                    "status",
                    "priority",
                    "department",
                    "keep_routing",
                    "assigned_to",
                    "due_at",
                    "is_public",
                    "duplicate_of",
                ]
            },
        ),
        (_("Location"), {"fields": ["latitude", "longitude", "address", "area_names"]}),
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

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, signalement):
        return format_html(
            '<span class="sig-status sig-status-{}">{}</span>',
            signalement.status,
            signalement.get_status_display(),
        )

    @admin.display(description=_("priority"), ordering="priority")
    def priority_label(self, signalement):
        return format_html(
            '<span class="sig-priority-{}">{}</span>',
            signalement.priority,
            signalement.get_priority_display(),
        )

    @admin.display(description=_("answers to the category's questions"))
    def extra_answers(self, signalement):
        """The answers, read only (for users who may only view the report)."""
        questions = {question.code: question for question in signalement.extra_fields()}
        rows = []
        for code, value in (signalement.extra or {}).items():
            question = questions.get(code)
            labels = {c["key"]: c["label"] for c in (question.choices or [])} if question else {}
            shown = (
                ", ".join(labels.get(v, v) for v in value)
                if isinstance(value, list)
                else labels.get(value, value)
            )
            rows.append((question.label if question else code, shown))
        if not rows:
            return "—"
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li><strong>{}</strong> {}</li>", rows)
        )

    @admin.display(description=_("due"), ordering="due_at")
    def due(self, signalement):
        """The due date, red when an open report is past it, orange when it is due
        within DUE_SOON (24 hours); plain for closed reports, whose deadline is over."""
        if signalement.due_at is None:
            return "—"
        # The day in the column (it fits 1366 px), the time in the tooltip.
        local = timezone.localtime(signalement.due_at)
        shown = formats.date_format(local, "SHORT_DATE_FORMAT")
        when = formats.date_format(local, "SHORT_DATETIME_FORMAT")
        now = timezone.now()
        if signalement.status in CLOSED_STATUSES or signalement.due_at >= now + DUE_SOON:
            return format_html('<span title="{}">{}</span>', when, shown)
        if signalement.due_at < now:
            state, label = "overdue", _("Overdue")
        else:
            state, label = "soon", _("Due within 24 hours")
        return format_html(
            '<span class="sig-due sig-due-{}" title="{} ({})">{}</span>', state, label, when, shown
        )

    @admin.display(description=_("areas"))
    def area_names(self, signalement):
        """The areas containing the report's location (computed: read only)."""
        return ", ".join(area.name for area in signalement.areas.all()) or "—"

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, signalement):
        # The day in the column (with the due date, the list fits 1366 px), the time in
        # the tooltip.
        local = timezone.localtime(signalement.created_at)
        return format_html(
            '<span title="{}">{}</span>',
            formats.date_format(local, "SHORT_DATETIME_FORMAT"),
            formats.date_format(local, "SHORT_DATE_FORMAT"),
        )

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
        """The reports the user may see (`roles.agent_scope`: with AGENT_SCOPE=department,
        an agent's departments', theirs and the unrouted ones), with their photos."""
        queryset = with_photos(super().get_queryset(request))
        scope = agent_scope(request.user)
        return queryset if scope is None else queryset.filter(scope)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Departments to choose from: the active ones (the report's own is kept by
        the form: see get_form)."""
        if db_field.name == "department":
            kwargs["queryset"] = Department.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fieldsets(self, request, obj=None):
        """The fieldsets, with the answers to the category's questions after the first:
        a field per question for those who may edit (the category posted, on a POST, as
        the form does), else the answers as text."""
        fieldsets = list(super().get_fieldsets(request, obj))
        may_edit = (
            self.has_change_permission(request, obj)
            if obj is not None
            else self.has_add_permission(request)
        )
        if may_edit:
            posted = request.POST.get("category", "") if request.method == "POST" else None
            category = answers_category(posted, obj)
            fields = (
                [
                    ANSWER_PREFIX + code
                    for code in category.extra_fields.values_list("code", flat=True)
                ]
                if category is not None
                else []
            )
        else:
            fields = ["extra_answers"] if obj is not None and obj.extra else []
        if fields:
            fieldsets.insert(1, (_("Answers to the category's questions"), {"fields": fields}))
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The model form without the answers' fields: the form adds them itself."""
        fields = kwargs.get("fields")
        if fields is None:
            fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        kwargs["fields"] = [name for name in fields if not name.startswith(ANSWER_PREFIX)]
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None or obj.department_id is None or "department" not in form.base_fields:
            return form

        class KeepsItsDepartment(form):
            """A report whose department was made inactive keeps it when saved for
            another change (else the form would refuse it as not a valid choice)."""

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                field = self.fields["department"]
                field.queryset = Department.objects.filter(
                    Q(is_active=True) | Q(pk=obj.department_id)
                )

        return KeepsItsDepartment

    def get_urls(self):
        return workflow.urls(self) + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        report = self.get_object(request, object_id)
        if report is not None and self.has_view_or_change_permission(request, report):
            extra_context = {
                **(extra_context or {}),
                "sig_panel": workflow.panel(request, report, self),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            context["sig_map"] = self._map(context["cl"], open_=request.GET.get("map") == "1")
        return response

    def _map(self, changelist, open_: bool) -> dict:
        """The located reports of the list's current filter, for its map (one query)."""
        rows = list(
            changelist.queryset.filter(latitude__isnull=False).values_list(
                "pk", "latitude", "longitude", "status", "title", "description", "created_at"
            )[: MAP_LIMIT + 1]
        )
        # One reverse() for all: 500 of them were a fifth of the list's time.
        url = reverse("admin:signalements_signalement_change", args=[0]).replace("/0/", "/{}/")
        points = [
            {
                "lat": float(lat),
                "lng": float(lng),
                "status": status,
                "reference": reference_of(pk, created_at),
                "title": title or Truncator(description).chars(60),
                "url": url.format(pk),
            }
            for pk, lat, lng, status, title, description, created_at in rows[:MAP_LIMIT]
        ]
        return {
            "points": points,
            "truncated": len(rows) > MAP_LIMIT,
            "limit": MAP_LIMIT,
            "open": open_,
            **workflow.map_settings(),
        }

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            fields = sorted(
                "extra" if name.startswith(ANSWER_PREFIX) else name
                for name in form.changed_data
                if name not in ("add_photos", "loaded_version")
            )
            if fields:
                events.emit(events.UPDATED, obj, actor=request.user, fields=sorted(set(fields)))
        else:
            events.emit(events.CREATED, obj, actor=request.user)

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
            new = comment.pk is None
            if new:
                comment.author = request.user
                comment.author_role = "agent"
            comment.save()
            if new:
                services.commented(comment, by=request.user)
        for comment in formset.deleted_objects:
            comment.delete()

    def get_search_results(self, request, queryset, search_term):
        pk = reference_to_pk(search_term)
        if pk is not None:
            return queryset.filter(pk=pk), False
        return super().get_search_results(request, queryset, search_term)
