"""A report's history (`signalements.history.entries_for`), as the REST API shows it."""

from rest_framework import serializers


class ChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    old = serializers.CharField(allow_null=True)
    new = serializers.CharField(allow_null=True)


class HistoryEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=["created", "changed"])
    by = serializers.CharField(
        allow_null=True, help_text="Who made the change (agents only; null for others)."
    )
    note = serializers.CharField(allow_blank=True, help_text="Public note of a status change.")
    changes = ChangeSerializer(many=True)
