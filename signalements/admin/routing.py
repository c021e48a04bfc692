"""Routing rules in the back office: the ordered list ("Voirie in Nord → Voirie Nord"),
their order edited in the list, each rule's form, and the dry run: which rule a given
report would match now, and why each other rule does not (`routing.explain`). Admins
manage the rules; agents see them and may run the dry run."""

from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from signalements import roles, routing
from signalements.models import ExtraField, Priority, RoutingRule, Signalement, reference_to_pk

# Gaps between rules' orders after "renumber": room to slip a rule in between two.
ORDER_STEP = 10


def condition(rule: RoutingRule) -> str:
    """The rule in words, with the priority it sets: "rule 3: Voirie in Nord → Voirie
    Nord, priority high"."""
    described = routing.describe(rule)
    if rule.priority:
        return gettext("%(rule)s, priority %(priority)s") % {
            "rule": described,
            "priority": Priority(rule.priority).label.lower(),
        }
    return described


class RoutingRuleForm(forms.ModelForm):
    class Meta:
        model = RoutingRule
        fields = [
            "name",
            "order",
            "is_active",
            "categories",
            "areas",
            "extra_field",
            "extra_value",
            "department",
            "priority",
        ]

    def clean(self):
        """An extra field that none of the rule's categories asks (or no category at
        all, for a rule on any category) would never match: most likely a typo."""
        cleaned = super().clean()
        code = cleaned.get("extra_field")
        if code:
            fields = ExtraField.objects.filter(code=code)
            categories = cleaned.get("categories")
            if categories:
                fields = fields.filter(category__in=categories)
            if not fields.exists():
                self.add_error(
                    "extra_field",
                    forms.ValidationError(
                        _("No extra field has this code in the rule's categories."),
                        code="unknown_extra_field",
                    ),
                )
        return cleaned


@admin.action(description=_("Renumber the selected rules in their order (10, 20, 30…)"))
def renumber(modeladmin, request, queryset):
    """Orders spaced by ORDER_STEP, in the current order: room for a new rule between
    two without moving the others."""
    rules = list(queryset.order_by("order", "id"))
    with transaction.atomic():
        for number, rule in enumerate(rules, start=1):
            if rule.order != number * ORDER_STEP:
                rule.order = number * ORDER_STEP
                rule._change_reason = gettext("Renumbered")
                rule.save(update_fields=["order", "updated_at"])
    modeladmin.message_user(
        request,
        ngettext("%(count)d rule renumbered.", "%(count)d rules renumbered.", len(rules))
        % {"count": len(rules)},
        messages.SUCCESS,
    )


renumber.allowed_permissions = ("change",)


@admin.register(RoutingRule)
class RoutingRuleAdmin(SimpleHistoryAdmin):
    """The rules in the order they are tried; the order is edited in the list (the
    first matching rule wins, so the order is the rules' meaning)."""

    form = RoutingRuleForm
    change_list_template = "admin/signalements/routingrule/change_list.html"
    list_display = ["order", "rule_condition", "department", "priority", "is_active"]
    list_display_links = ["rule_condition"]
    list_editable = ["order", "is_active"]
    # The list is the order of trial: sorting it by another column would hide it.
    sortable_by = ["order"]
    list_filter = ["is_active", "department", "categories", "areas"]
    search_fields = ["name", "categories__name", "areas__name", "department__name"]
    filter_horizontal = ["categories", "areas"]
    actions = [renumber]
    fieldsets = [
        (None, {"fields": ["name", "order", "is_active"]}),
        (
            _("When the report…"),
            {"fields": ["categories", "areas", ("extra_field", "extra_value")]},
        ),
        (_("Then"), {"fields": ["department", "priority"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("department")
            .prefetch_related("categories", "areas")
        )

    @admin.display(description=_("rule"))
    def rule_condition(self, rule):
        return condition(rule)

    def get_urls(self):
        dry_run_view = self.admin_site.admin_view(self.dry_run_view)
        return [
            path("dry-run/", dry_run_view, name="signalements_routingrule_dry_run"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "dry_run_url": reverse("admin:signalements_routingrule_dry_run"),
        }
        return super().changelist_view(request, extra_context)

    def dry_run_view(self, request):
        """`dry-run/?report=<id or reference>`: where routing would send this report
        now, each rule's verdict, and what routing starts from (its areas, its
        category's department, whether it keeps its routing)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = DryRunForm(request.GET if "report" in request.GET else None)
        outcome = None
        if form.is_valid():
            report = find_report(request.user, form.cleaned_data["report"])
            if report is None:
                form.add_error(
                    "report",
                    forms.ValidationError(
                        _("No report has this id or reference."), code="not_found"
                    ),
                )
            else:
                outcome = dry_run(report)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Routing dry run"),
            "form": form,
            "outcome": outcome,
            "changelist_url": reverse("admin:signalements_routingrule_changelist"),
        }
        return TemplateResponse(request, "admin/signalements/routingrule/dry_run.html", context)


class DryRunForm(forms.Form):
    report = forms.CharField(
        label=_("Report (id or reference)"),
        max_length=40,
        help_text=_("For example 42 or SIG-2025-000042."),
    )


def find_report(user, given: str) -> Signalement | None:
    """The report with this id or reference, among those the user may see (with
    `AGENT_SCOPE=department`, an agent's departments' reports)."""
    given = given.strip()
    pk = int(given) if given.isascii() and given.isdigit() and len(given) <= 18 else None
    if pk is None:
        pk = reference_to_pk(given)
    if pk is None:
        return None
    reports = Signalement.objects.select_related("category__department", "department")
    scope = roles.agent_scope(user)
    if scope is not None:
        reports = reports.filter(scope)
    return reports.filter(pk=pk).first()


@dataclass
class TrialRow:
    rule: RoutingRule
    condition: str
    verdict: str  # "chosen", "also_matches", "no_match" or "inactive"
    why: str


def dry_run(report: Signalement) -> dict:
    """What the dry run page shows for a report."""
    result = routing.explain(report)
    match, trials = result.match, result.trials
    rows = []
    chosen_seen = False
    for trial in trials:
        if trial.matches and not chosen_seen:
            verdict, why = "chosen", gettext("matches: this rule applies")
            chosen_seen = True
        elif trial.matches:
            verdict, why = "also_matches", gettext("matches, but an earlier rule applies")
        else:
            verdict, why = "no_match", trial.why_not
        rows.append(TrialRow(trial.rule, condition(trial.rule), verdict, why))
    # The inactive rules too, in their place: "why is my rule ignored?"
    inactive = (
        RoutingRule.objects.filter(is_active=False)
        .select_related("department")
        .prefetch_related("categories", "areas")
    )
    rows.extend(
        TrialRow(rule, condition(rule), "inactive", gettext("the rule is not active"))
        for rule in inactive
    )
    rows.sort(key=lambda row: (row.rule.order, row.rule.pk))
    category = report.category
    return {
        "report": report,
        "report_url": reverse("admin:signalements_signalement_change", args=[report.pk]),
        "match": match,
        "match_priority": Priority(match.priority).label if match.priority else "",
        "changes_department": match.department != report.department,
        "areas": result.areas,
        "located": report.latitude is not None and report.longitude is not None,
        "category": category,
        "default_department": category.department if category is not None else None,
        "keeps_routing": report.keep_routing,
        "rows": rows,
    }
