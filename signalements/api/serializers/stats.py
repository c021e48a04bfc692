"""The figures of `GET /api/signalements/stats/` (computed by `signalements.stats`)."""

from rest_framework import serializers

from signalements.models import Status


class StatusCountSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    label = serializers.CharField(help_text="The status's human name.")
    count = serializers.IntegerField(min_value=0)


class CategoryCountSerializer(serializers.Serializer):
    category = serializers.CharField(
        allow_null=True, help_text="The category's code; null for reports without one."
    )
    name = serializers.CharField(allow_null=True, help_text="The category's name, or null.")
    count = serializers.IntegerField(min_value=1)


class MonthCountSerializer(serializers.Serializer):
    month = serializers.RegexField(
        r"^\d{4}-\d{2}$", help_text="`YYYY-MM`, in the server's time zone."
    )
    created = serializers.IntegerField(min_value=0, help_text="Reports created that month.")
    resolved = serializers.IntegerField(
        min_value=0, help_text="Reports resolved that month (by `resolved_at`)."
    )


class DepartmentCountSerializer(serializers.Serializer):
    department = serializers.CharField(
        allow_null=True,
        help_text="The department's code (`/api/departments/`); null for the reports no "
        "department handles.",
    )
    name = serializers.CharField(allow_null=True, help_text="The department's name, or null.")
    count = serializers.IntegerField(min_value=1, help_text="Its reports.")
    open = serializers.IntegerField(
        min_value=0, help_text="Its open reports (neither resolved nor rejected)."
    )
    overdue = serializers.IntegerField(
        min_value=0, help_text="Its open reports whose `due_at` is past."
    )


def _resolved_with_due_date():
    return serializers.IntegerField(
        min_value=0, help_text="Resolved reports (with a `resolved_at`) that had a `due_at`."
    )


def _on_time():
    return serializers.IntegerField(
        min_value=0,
        help_text="Those of them resolved by their due date (`resolved_at <= due_at`).",
    )


def _on_time_rate(**kwargs):
    return serializers.FloatField(
        min_value=0,
        max_value=1,
        help_text="`on_time / resolved_with_due_date` (0 to 1, 4 decimals).",
        **kwargs,
    )


class CategoryOnTimeSerializer(serializers.Serializer):
    category = serializers.CharField(
        allow_null=True, help_text="The category's code; null for reports without one."
    )
    name = serializers.CharField(allow_null=True, help_text="The category's name, or null.")
    resolved_with_due_date = _resolved_with_due_date()
    on_time = _on_time()
    on_time_rate = _on_time_rate()


class DepartmentOnTimeSerializer(serializers.Serializer):
    department = serializers.CharField(
        allow_null=True,
        help_text="The department's code; null for the reports no department handles.",
    )
    name = serializers.CharField(allow_null=True, help_text="The department's name, or null.")
    resolved_with_due_date = _resolved_with_due_date()
    on_time = _on_time()
    on_time_rate = _on_time_rate()


class ServiceLevelStatsSerializer(serializers.Serializer):
    overdue = serializers.IntegerField(
        min_value=0,
        help_text="Open reports (neither resolved nor rejected) whose `due_at` is past, now.",
    )
    resolved_with_due_date = _resolved_with_due_date()
    on_time = _on_time()
    on_time_rate = serializers.FloatField(
        allow_null=True,
        min_value=0,
        max_value=1,
        help_text="`on_time / resolved_with_due_date` (0 to 1, 4 decimals); null when no "
        "resolved report had a due date.",
    )
    late = serializers.IntegerField(
        min_value=0,
        help_text="Resolved reports that had a `due_at` and were resolved after it.",
    )
    median_lateness_hours = serializers.FloatField(
        allow_null=True,
        min_value=0,
        help_text="Median of `resolved_at - due_at` over the `late` reports (resolved "
        "after their due date), in hours; null when none is. Open overdue reports are "
        "not in it (they are counted in `overdue`).",
    )
    by_category = CategoryOnTimeSerializer(
        many=True,
        help_text="The on-time rate of each category that has resolved reports with a due "
        "date, most such reports first; `category: null` for reports without a category.",
    )
    by_department = DepartmentOnTimeSerializer(
        many=True,
        help_text="The on-time rate of each department that has resolved reports with a due "
        "date, most such reports first; `department: null` for the reports no department "
        "handles.",
    )


class CategorySatisfactionSerializer(serializers.Serializer):
    category = serializers.CharField(
        allow_null=True, help_text="The category's code; null for reports without one."
    )
    name = serializers.CharField(allow_null=True, help_text="The category's name, or null.")
    answers = serializers.IntegerField(min_value=1, help_text="Verdicts given.")
    fixed = serializers.IntegerField(min_value=0, help_text='Of them, "fixed".')
    rate = serializers.FloatField(min_value=0, max_value=1, help_text="`fixed / answers`.")


class SatisfactionSerializer(serializers.Serializer):
    answers = serializers.IntegerField(
        min_value=0,
        help_text="Reporters' verdicts on the resolutions of these reports (one per "
        "resolution answered: a report resolved twice may have two).",
    )
    fixed = serializers.IntegerField(min_value=0, help_text='Of them, "fixed".')
    rate = serializers.FloatField(
        allow_null=True,
        min_value=0,
        max_value=1,
        help_text="`fixed / answers` (0 to 1, 4 decimals); null without answers.",
    )
    by_category = CategorySatisfactionSerializer(
        many=True,
        help_text="By category of the report, most answers first; `category: null` for "
        "reports without a category.",
    )


class SignalementStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField(min_value=0, help_text="Number of reports.")
    by_status = StatusCountSerializer(
        many=True, help_text="Every status, in workflow order, zeros included."
    )
    by_category = CategoryCountSerializer(
        many=True,
        help_text="Categories that have reports, most reports first; `category: null` "
        "counts the reports without a category.",
    )
    by_month = MonthCountSerializer(
        many=True,
        help_text="Reports created and resolved per month, oldest first, from the first "
        "month with either to the last (months without any included).",
    )
    median_resolution_hours = serializers.FloatField(
        allow_null=True,
        help_text="Median of `resolved_at - created_at` over the resolved reports, in "
        "hours; null when none is resolved.",
    )
    resolved_count = serializers.IntegerField(
        min_value=0, help_text="Reports with a `resolved_at`: those the median is over."
    )
    by_department = DepartmentCountSerializer(
        many=True,
        help_text="Departments that have reports, most reports first, with their open and "
        "overdue ones; `department: null` counts the reports no department handles.",
    )
    service_levels = ServiceLevelStatsSerializer(
        help_text="Due dates kept: a report is overdue when it is open and its `due_at` is "
        "past; a resolved report was on time when `resolved_at <= due_at`. Reports without "
        "a `due_at` count in neither."
    )
    satisfaction = SatisfactionSerializer(
        allow_null=True,
        help_text='The reporters\' verdicts ("fixed" or "not fixed") on the resolutions of '
        "these reports. Agents only (the verdicts are not public): null for others.",
    )
