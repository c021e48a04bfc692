"""What the link confirming a report's contact address names (no address in it)."""

from rest_framework import serializers


class ContactConfirmationSerializer(serializers.Serializer):
    reference = serializers.CharField(help_text="The report's reference.")
    description = serializers.CharField(help_text="What it is, in words, for people.")
    confirmed = serializers.BooleanField(
        help_text="Whether the address is confirmed for this report: its status changes "
        "and the team's updates are emailed to it."
    )
