"""The figures of the admin's home page, from the statistics the REST API serves
(`signalements/stats.py`): counts by status and by category, reports created per week
(drawn as an SVG bar chart here, no script), the open reports nobody is assigned to and
those open for longer than OVERDUE_DAYS. Each figure links to the report list filtered
to it."""

from datetime import date, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import formats, timezone

from signalements import stats
from signalements.models import CLOSED_STATUSES, Category, Signalement, Status

WEEKS = 12
CHART_WIDTH, CHART_HEIGHT, CHART_TOP = 600, 160, 16


def figures(request) -> dict | None:
    """The dashboard's figures, or None for a user who may not see reports."""
    if not request.user.has_perm("signalements.view_signalement"):
        return None
    reports = Signalement.objects.all()
    computed = stats.compute(reports)
    overdue_after = timedelta(days=settings.SIGNALEMENT_OVERDUE_DAYS)
    backlog = stats.backlog(reports, overdue_after=overdue_after)
    changelist = reverse("admin:signalements_signalement_changelist")
    category_ids = dict(
        Category.objects.filter(
            code__in=[item["category"] for item in computed["by_category"] if item["category"]]
        ).values_list("code", "pk")
    )
    open_filter = {"status__in": ",".join(s for s in Status.values if s not in CLOSED_STATUSES)}
    return {
        "total": computed["total"],
        "by_status": [
            {**item, "url": f"{changelist}?{urlencode({'status__exact': item['status']})}"}
            for item in computed["by_status"]
        ],
        "by_category": [
            {
                **item,
                "url": f"{changelist}?category__id__exact={category_ids[item['category']]}"
                if item["category"] in category_ids
                else f"{changelist}?category__isnull=True",
            }
            for item in computed["by_category"]
        ],
        "backlog": backlog,
        "open_url": f"{changelist}?{urlencode(open_filter)}",
        "unassigned_url": f"{changelist}?{urlencode({**open_filter, 'assigned_to__isnull': 'True'})}",
        "overdue_url": f"{changelist}?{urlencode({**open_filter, 'created_at__lt': (timezone.now() - overdue_after).isoformat()})}",
        "overdue_days": settings.SIGNALEMENT_OVERDUE_DAYS,
        "weeks": chart(stats.by_week(reports, weeks=WEEKS)),
        "median_resolution_hours": computed["median_resolution_hours"],
    }


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
