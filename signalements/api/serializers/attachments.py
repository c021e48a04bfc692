"""A report's photos, as the REST API shows and takes them."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from signalements import photos as photo_files
from signalements.models import Attachment
from signalements.validation import CachedFieldsMixin

from ..representation import FastRepresentationMixin


class AttachmentSerializer(FastRepresentationMixin, CachedFieldsMixin, serializers.ModelSerializer):
    """A photo of a report, as stored: re-encoded, without metadata."""

    url = serializers.SerializerMethodField(help_text="The photo.")
    thumbnail_url = serializers.SerializerMethodField(
        help_text=f"A JPEG at most {photo_files.THUMBNAIL_SIZE[0]}×{photo_files.THUMBNAIL_SIZE[1]} "
        "pixels, for lists."
    )

    class Meta:
        model = Attachment
        fields = [
            "id",
            "url",
            "thumbnail_url",
            "content_type",
            "size",
            "width",
            "height",
            "created_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "content_type": {"help_text": "`image/jpeg`, `image/png` or `image/webp`."},
            "size": {"help_text": "Bytes of the stored photo."},
            "width": {"help_text": "Pixels, upright."},
            "height": {"help_text": "Pixels, upright."},
        }

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, attachment) -> str:
        return self._absolute(attachment.file.url)

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, attachment) -> str:
        return self._absolute(attachment.thumbnail.url)

    def _absolute(self, url: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class AttachmentUploadSerializer(serializers.Serializer):
    photos = serializers.ListField(
        child=serializers.FileField(),
        allow_empty=False,
        help_text="One or several JPEG, PNG or WebP images (the field repeated). Each is "
        "checked by its content, re-encoded without metadata (EXIF, GPS position) after "
        "being turned upright, and given a thumbnail.",
    )

    def validate_photos(self, uploads) -> list[photo_files.Photo]:
        try:
            return photo_files.process_all(uploads)
        except photo_files.RejectedFiles as refused:
            raise serializers.ValidationError(
                {
                    index: [ErrorDetail(problem.message, problem.code)]
                    for index, problem in refused.problems.items()
                }
            ) from None
