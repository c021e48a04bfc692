"""The reporter's verdict (`signalements/feedback.py`): what the reporter sends, what they
read back, what a signed link's page shows, and what agents read and decide. No
representation here holds the reporter's identity or contact data: agents read those
on the report itself, where their role allows it."""

from rest_framework import serializers

from signalements.feedback import COMMENT_MAX_LENGTH
from signalements.models import Feedback, Reopen

REOPEN_HELP = (
    "What the verdict did: `` (fixed, nothing asked), `reopened` (the report went back to "
    "`in_progress`), `pending` (a reopen request awaiting an agent's decision), "
    "`accepted` (the request was accepted: reopened), `refused` (it stays resolved)."
)


class FeedbackRequestSerializer(serializers.Serializer):
    """The reporter's answer."""

    is_fixed = serializers.BooleanField(
        help_text="`true`: the problem is fixed. `false`: it is not; the report is reopened, "
        "or (per its category) agents are asked to reopen it."
    )
    comment = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=COMMENT_MAX_LENGTH,
        help_text="Optional, in the reporter's words. With `is_fixed: false` and a report "
        "reopened, it is quoted in the public note of the reopening: write no personal data.",
    )


class FeedbackSerializer(serializers.ModelSerializer):
    """A verdict as its reporter reads it back."""

    reference = serializers.CharField(source="signalement.reference", read_only=True)
    reopen = serializers.ChoiceField(choices=Reopen.choices, read_only=True, help_text=REOPEN_HELP)

    class Meta:
        model = Feedback
        fields = [
            "id",
            "signalement",
            "reference",
            "resolved_at",
            "is_fixed",
            "comment",
            "reopen",
            "created_at",
            "decided_at",
            "decision_note",
        ]
        read_only_fields = fields


class AgentFeedbackSerializer(FeedbackSerializer):
    """A verdict as agents list and decide it: who decided, too."""

    decided_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="The agent who accepted or refused the reopen request (username).",
    )

    class Meta(FeedbackSerializer.Meta):
        fields = [*FeedbackSerializer.Meta.fields, "decided_by"]
        read_only_fields = fields


class DecisionSerializer(serializers.Serializer):
    """An agent's decision on a reopen request."""

    note = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=COMMENT_MAX_LENGTH,
        help_text="Optional. Accepting: the public note of the reopening (else a sentence "
        "saying that the reporter asked for it). Refusing: a public update, emailed to the "
        "reporter (say why).",
    )


ANSWERS = ["fixed", "not_fixed"]


class AnswerParameter(serializers.Serializer):
    """`?answer=` of a link's page: the choice made in advance by the email's button."""

    answer = serializers.ChoiceField(choices=ANSWERS, required=False, allow_blank=True)


class FeedbackLinkSerializer(serializers.Serializer):
    """What a verdict link's page shows: the report, the resolution it answers, and the
    verdict once given."""

    reference = serializers.CharField(help_text="The report's reference.")
    title = serializers.CharField(allow_blank=True, help_text="The report's title.")
    resolved_at = serializers.DateTimeField(help_text="The resolution this link answers.")
    deadline = serializers.DateTimeField(help_text="The link answers until then.")
    answer = serializers.ChoiceField(
        choices=ANSWERS,
        allow_null=True,
        help_text="The choice of the email's button (`?answer=`), null without one.",
    )
    answered = serializers.BooleanField(help_text="Whether the verdict is given.")
    is_fixed = serializers.BooleanField(
        allow_null=True, help_text="The verdict given (null: not yet)."
    )
    reopen = serializers.ChoiceField(
        choices=Reopen.choices, allow_null=True, help_text=REOPEN_HELP + " Null: not answered."
    )
