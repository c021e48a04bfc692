"""The figures of the admin's home page, from the statistics the REST API serves
(`signalements/stats.py`): counts by status, by category and by department, reports
created per week (drawn as an SVG bar chart here, no script), the open reports nobody
is assigned to and those past their due date (`due_at`), the on-time rate of the
resolved reports that had a due date, and the reporters' satisfaction ("fixed" among
their verdicts). Each count links to the report list filtered to it.

The figures are those of the reports the user may list: with `AGENT_SCOPE=department`,
an agent's departments', theirs and the unrouted ones (`roles.agent_scope`)."""

from datetime import date
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import formats, timezone

from signalements import stats
from signalements.models import CLOSED_STATUSES, Category, Department, Signalement, Status
from signalements.roles import agent_scope

WEEKS = 12
CHART_WIDTH, CHART_HEIGHT, CHART_TOP = 600, 160, 16


def figures(request) -> dict | None:
    """The dashboard's figures, or None for a user who may not see reports."""
    if not request.user.has_perm("signalements.view_signalement"):
        return None
    reports = Signalement.objects.all()
    scope = agent_scope(request.user)
    if scope is not None:
        reports = reports.filter(scope)
    now = timezone.now()
    computed = stats.compute(reports, now=now, with_satisfaction=True)
    backlog = stats.backlog(reports, now=now)
    changelist = reverse("admin:signalements_signalement_changelist")

    def listed(**params) -> str:
        return f"{changelist}?{urlencode(params)}"

    category_ids = dict(
        Category.objects.filter(
            code__in=[item["category"] for item in computed["by_category"] if item["category"]]
        ).values_list("code", "pk")
    )
    department_ids = dict(
        Department.objects.filter(
            code__in=[
                item["department"] for item in computed["by_department"] if item["department"]
            ]
        ).values_list("code", "pk")
    )
    open_filter = {"status__in": ",".join(s for s in Status.values if s not in CLOSED_STATUSES)}
    levels = computed["service_levels"]
    return {
        "total": computed["total"],
        "by_status": [
            {**item, "url": listed(status__exact=item["status"])} for item in computed["by_status"]
        ],
        "by_category": [
            {
                **item,
                "url": listed(category__id__exact=category_ids[item["category"]])
                if item["category"] in category_ids
                else listed(category__isnull="True"),
            }
            for item in computed["by_category"]
        ],
        "by_department": [
            department_row(item, department_ids.get(item["department"]), listed, open_filter)
            for item in computed["by_department"]
        ],
        "backlog": backlog,
        "open_url": listed(**open_filter),
        "unassigned_url": listed(**open_filter, assigned_to__isnull="True"),
        "overdue_url": listed(overdue="yes"),
        "on_time_percent": percent(levels["on_time_rate"]),
        "on_time": levels["on_time"],
        "resolved_with_due_date": levels["resolved_with_due_date"],
        "median_lateness_hours": levels["median_lateness_hours"],
        "satisfaction": computed["satisfaction"],
        "satisfaction_percent": percent(computed["satisfaction"]["rate"]),
        "weeks": chart(stats.by_week(reports, weeks=WEEKS)),
        "median_resolution_hours": computed["median_resolution_hours"],
    }


def department_row(item: dict, department_id: int | None, listed, open_filter: dict) -> dict:
    """A department's open and overdue reports, each linked to the list filtered to them
    (`department__isnull` for the reports no department handles)."""
    where = (
        {"department__id__exact": department_id}
        if department_id is not None
        else {"department__isnull": "True"}
    )
    return {
        **item,
        "open_url": listed(**where, **open_filter),
        "overdue_url": listed(**where, overdue="yes"),
    }


def percent(rate: float | None) -> int | None:
    """A rate (0 to 1) as a whole percentage, for the cards; None without a rate."""
    return None if rate is None else round(rate * 100)


def chart(weeks: list[dict]) -> dict:
    """Bars for an SVG chart of reports created per week: position, height, labels."""
    highest = max((week["created"] for week in weeks), default=0) or 1
    step = CHART_WIDTH / max(len(weeks), 1)
    bars = []
    for index, week in enumerate(weeks):
        height = round(week["created"] / highest * (CHART_HEIGHT - CHART_TOP))
        monday = date.fromisoformat(week["week"])
        # Coordinates as text: a template would write 12.5 as "12,5" in French.
        bars.append(
            {
                "x": f"{index * step + step * 0.15:.1f}",
                "width": f"{step * 0.7:.1f}",
                "y": str(CHART_HEIGHT - height),
                "count_y": str(CHART_HEIGHT - height - 3),
                "height": str(height),
                "count": week["created"],
                "label_x": f"{index * step + step / 2:.1f}",
                "label": formats.date_format(monday, "j M"),
                "week": monday,
            }
        )
    return {
        "bars": bars,
        "width": str(CHART_WIDTH),
        "height": str(CHART_HEIGHT),
        "view_height": str(CHART_HEIGHT + 24),
        "label_y": str(CHART_HEIGHT + 16),
        "total": sum(week["created"] for week in weeks),
    }
