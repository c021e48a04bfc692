"""The reporters' verdicts in the back office (`signalements/feedback.py`): "fixed" or "not
fixed" after each resolution, filtered by verdict and by what it did to the report, and
the reopen requests (`reopen: pending`) that agents accept (the report goes back to
`in_progress`) or refuse (it stays resolved) with the list's actions, an optional note
in the action bar. Read-only otherwise: reporters write the verdicts, the decisions go
through the domain (locks, history, public notes). `FeedbackInline` shows a report's
verdicts on its page."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from signalements import feedback
from signalements.models import Feedback, Signalement, reference_to_pk
from signalements.roles import agent_scope

READ_FIELDS = [
    "signalement_link",
    "resolved_at",
    "is_fixed",
    "comment",
    "answered_by",
    "created_at",
    "reopen",
    "decided_by",
    "decided_at",
    "decision_note",
]


class DecisionActionForm(helpers.ActionForm):
    """The list's action bar, with the note that a decision carries."""

    note = forms.CharField(
        label=_("Note (optional, public):"),
        required=False,
        max_length=feedback.COMMENT_MAX_LENGTH,
        widget=forms.TextInput(attrs={"size": 40}),
    )


def _decision_action(decide, *, name: str, description, done_message):
    """A bulk action deciding the selected reopen requests with `decide` (`feedback.accept`
    or `feedback.refuse`); verdicts that ask for no decision are left as they are and
    listed."""

    def action(modeladmin, request, queryset):
        try:
            note = DecisionActionForm.base_fields["note"].clean(request.POST.get("note", ""))
        except ValidationError as refused:
            for problem in refused.messages:
                modeladmin.message_user(request, problem, messages.ERROR)
            return
        decided, skipped = 0, []
        for verdict in queryset.select_related("signalement"):
            try:
                decide(verdict, request.user, note)
            except feedback.Refused:
                skipped.append(verdict.signalement.reference)
            else:
                decided += 1
        if decided:
            modeladmin.message_user(request, done_message % {"count": decided}, messages.SUCCESS)
        if skipped:
            modeladmin.message_user(
                request,
                _("No reopen request awaiting a decision, left unchanged: %(refs)s")
                % {"refs": ", ".join(skipped)},
                messages.WARNING,
            )

    action.__name__ = name
    action.short_description = description
    action.allowed_permissions = ("change",)
    return action


accept_requests = _decision_action(
    feedback.accept,
    name="accept_reopen_requests",
    description=_("Accept the selected reopen requests (reopen the reports)"),
    done_message=ngettext_lazy(
        "%(count)d reopen request accepted: its report is in progress again.",
        "%(count)d reopen requests accepted: their reports are in progress again.",
        "count",
    ),
)
refuse_requests = _decision_action(
    feedback.refuse,
    name="refuse_reopen_requests",
    description=_("Refuse the selected reopen requests (the reports stay resolved)"),
    done_message=ngettext_lazy(
        "%(count)d reopen request refused.", "%(count)d reopen requests refused.", "count"
    ),
)


class VerdictDisplay:
    """The columns that the list and the report's inline share."""

    @admin.display(description=_("answered by"))
    def answered_by(self, verdict):
        """The reporter's account, or the email's link (no account: an anonymous report)."""
        if verdict.author_id:
            return verdict.author.get_username()
        return _("the email's link")

    @admin.display(description=_("report"), ordering="signalement_id")
    def signalement_link(self, verdict):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:signalements_signalement_change", args=[verdict.signalement_id]),
            verdict.signalement.reference,
        )


@admin.register(Feedback)
class FeedbackAdmin(VerdictDisplay, admin.ModelAdmin):
    """Reporters' verdicts: agents view them and decide the reopen requests."""

    action_form = DecisionActionForm
    actions = [accept_requests, refuse_requests]
    list_display = [
        "created_at",
        "signalement_link",
        "is_fixed",
        "reopen",
        "excerpt",
        "decided_by",
        "decided_at",
    ]
    list_display_links = ["created_at"]
    list_filter = ["is_fixed", "reopen", "created_at"]
    list_select_related = ["signalement", "decided_by"]
    # Newest first; the id breaks ties, so pages never overlap (the model's ordering).
    ordering = ["-created_at", "-id"]
    search_fields = ["comment"]
    search_help_text = _("Search the comments; or a report's reference (SIG-…).")
    fields = READ_FIELDS
    readonly_fields = READ_FIELDS

    def get_queryset(self, request):
        """The verdicts on the reports the agent may see (`AGENT_SCOPE`)."""
        queryset = super().get_queryset(request).select_related("author")
        scope = agent_scope(request.user)
        if scope is not None:
            queryset = queryset.filter(signalement__in=Signalement.objects.filter(scope))
        return queryset

    def get_search_results(self, request, queryset, search_term):
        """A reference (`SIG-2025-000123`) finds its report's verdicts."""
        pk = reference_to_pk(search_term.strip())
        if pk is not None:
            return queryset.filter(signalement_id=pk), False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        """The list's decisions need the change permission; a verdict's own page is
        read-only (nothing in it is edited by hand)."""
        if obj is not None:
            return False
        return super().has_change_permission(request)

    @admin.display(description=_("comment"))
    def excerpt(self, verdict):
        return Truncator(verdict.comment).chars(80)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a verdict deleted could be given again
        return actions


class FeedbackInline(VerdictDisplay, admin.TabularInline):
    """A report's verdicts, read-only, newest first (decided in the verdicts' list)."""

    model = Feedback
    fk_name = "signalement"
    fields = [
        "resolved_at",
        "is_fixed",
        "comment",
        "answered_by",
        "created_at",
        "reopen",
        "decided_by",
        "decided_at",
        "decision_note",
    ]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    extra = 0
    verbose_name_plural = _("reporter's verdicts")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author", "decided_by")
