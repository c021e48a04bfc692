"""A report's photos, as the REST API shows and takes them."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from signalements import photo_access
from signalements import photos as photo_files
from signalements.models import Attachment
from signalements.validation import CachedFieldsMixin

from ..representation import FastRepresentationMixin

# The photo URLs of one answer share one expiry: kept in the serializers' context.
LINKS = "photo_links"


class AttachmentSerializer(FastRepresentationMixin, CachedFieldsMixin, serializers.ModelSerializer):
    """A photo of a report, as stored: re-encoded, without metadata."""

    url = serializers.SerializerMethodField(
        help_text="The photo. A hidden report's photo URLs are signed and expire (between "
        "`PHOTO_URL_TTL_SECONDS` and twice that, one hour by default): read the report again "
        "for new ones."
    )
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
        return self._url(attachment, attachment.file.name)

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, attachment) -> str:
        return self._url(attachment, attachment.thumbnail.name)

    def _url(self, attachment, name: str) -> str:
        """A public report's photo on its lasting URL, a hidden report's on a signed one
        (`photo_access.py`): the answer goes only to those who may see the report."""
        context = self.context
        links = context.get(LINKS)
        if links is None:
            request = context.get("request")
            absolute = request.build_absolute_uri if request is not None else None
            links = context[LINKS] = photo_access.Links(absolute)
        return links.url(name, public=attachment.signalement.is_public)


class AttachmentUploadSerializer(serializers.Serializer):
    photos = serializers.ListField(
        child=serializers.FileField(),
        allow_empty=False,
        min_length=1,  # the schema says so (minItems): an empty list is no upload
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
