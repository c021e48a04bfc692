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
