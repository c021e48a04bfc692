"""Comments: public updates and internal notes."""

from signalements.models import Comment
from signalements.validation import ValidatedModelSerializer


class CommentSerializer(ValidatedModelSerializer):
    class Meta:
        model = Comment
        fields = ["id", "body", "is_internal", "status", "author_role", "created_at"]
        read_only_fields = ["id", "status", "author_role", "created_at"]
