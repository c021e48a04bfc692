"""Storing and removing the photos of a report, through Django's storage API (local
files, or any storage backend such as S3: see `STORAGES` in settings)."""

import logging
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import ngettext

from . import events
from .models import Attachment, Signalement
from .photos import Photo

logger = logging.getLogger(__name__)


class TooManyPhotos(Exception):
    def __init__(self, existing: int, adding: int):
        self.limit = settings.SIGNALEMENT_MAX_ATTACHMENTS
        super().__init__(
            ngettext(
                "A report has at most %(limit)d photo: it has %(existing)d, %(adding)d more "
                "would make %(total)d.",
                "A report has at most %(limit)d photos: it has %(existing)d, %(adding)d more "
                "would make %(total)d.",
                self.limit,
            )
            % {
                "limit": self.limit,
                "existing": existing,
                "adding": adding,
                "total": existing + adding,
            }
        )


def check_room(signalement: Signalement, adding: int) -> None:
    """Raise TooManyPhotos if `adding` more photos would exceed the limit (a cheap check
    before decoding uploads; `add` checks again under a lock). A report not saved yet
    has none."""
    existing = signalement.attachments.count() if signalement.pk else 0
    if existing + adding > settings.SIGNALEMENT_MAX_ATTACHMENTS:
        raise TooManyPhotos(existing, adding)


def attachment_path(folder: str, extension: str) -> str:
    """A new file name under `folder`: unguessable (the URL of a photo of a hidden report
    must not be found by counting) and free of anything the client sent."""
    now = timezone.now()
    return f"{folder}/{now:%Y/%m}/{uuid.uuid4().hex}.{extension}"


def add(*, signalement: Signalement, photos: list[Photo], by=None) -> list[Attachment]:
    """Store checked photos (see `photos.process`) as the report's attachments.

    The files are written first, outside the transaction (a slow storage must not hold
    the database lock); then the report's row is locked, so that simultaneous uploads
    cannot together exceed the limit. If anything fails, the files written are deleted:
    all the photos are added, or none.
    """
    written: list[str] = []
    try:
        names = []
        for photo in photos:
            file_name = default_storage.save(
                attachment_path("photos", photo.extension), ContentFile(photo.content)
            )
            written.append(file_name)
            thumbnail_name = default_storage.save(
                attachment_path("thumbnails", photo.thumbnail_extension),
                ContentFile(photo.thumbnail),
            )
            written.append(thumbnail_name)
            names.append((file_name, thumbnail_name))
        with transaction.atomic():
            locked = Signalement.objects.select_for_update().get(pk=signalement.pk)
            check_room(locked, len(photos))
            now = timezone.now()
            created = Attachment.objects.bulk_create(
                Attachment(
                    signalement=locked,
                    file=file_name,
                    thumbnail=thumbnail_name,
                    content_type=photo.content_type,
                    size=len(photo.content),
                    width=photo.width,
                    height=photo.height,
                    uploaded_by=by if by is not None and by.is_authenticated else None,
                    created_at=now,
                )
                for photo, (file_name, thumbnail_name) in zip(photos, names, strict=True)
            )
            # A new photo is a change of the report (e.g. for Open311's updated_datetime).
            Signalement.objects.filter(pk=locked.pk).update(updated_at=now)
            events.emit(
                events.ATTACHMENT_ADDED,
                locked,
                actor=by,
                attachment_ids=[attachment.pk for attachment in created],
            )
    except BaseException:
        for name in written:
            _delete_file(name)
        raise
    return created


def remove(attachment: Attachment) -> None:
    """Delete a photo; its files go once the deletion has committed."""
    with transaction.atomic():
        attachment.delete()
        Signalement.objects.filter(pk=attachment.signalement_id).update(updated_at=timezone.now())


@receiver(post_delete, sender=Attachment)
def _delete_files(sender, instance: Attachment, **kwargs) -> None:
    """Files follow their row, also when a report is deleted with its photos; only once
    the deletion has committed (a rolled-back deletion keeps its files)."""
    names = [name for name in (instance.file.name, instance.thumbnail.name) if name]
    transaction.on_commit(lambda: [_delete_file(name) for name in names])


def _delete_file(name: str) -> None:
    try:
        default_storage.delete(name)
    except Exception:  # a storage outage must not undo the deletion of the row
        logger.exception("Could not delete the stored file %s", name)
