"""Photos of reports: what an upload must be, and what is kept of it.

An upload is judged by its content, decoded with Pillow, never by its name or the content
type the client claims: only a complete JPEG, PNG or WebP image within the size and pixel
limits is accepted. What is stored is not the upload but a re-encoding of its pixels,
turned upright first (EXIF orientation), with no metadata at all: a phone's EXIF block
carries the GPS position where the photo was taken, often the reporter's home. Only the
colour profile is kept, so that colours stay right.
"""

import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow format name -> (content type, file extension).
FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
THUMBNAIL_SIZE = (320, 320)
THUMBNAIL_FORMAT = "JPEG"
JPEG_QUALITY = 90
# Errors Pillow's decoders raise on broken data (truncated files, bad chunks).
DECODING_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)


class Rejected(Exception):
    """The upload is not an acceptable photo; `code` says why."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Photo:
    """An accepted photo, re-encoded: the bytes to store and what to record about them."""

    content: bytes
    thumbnail: bytes
    format: str
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return FORMATS[self.format][0]

    @property
    def extension(self) -> str:
        return FORMATS[self.format][1]

    @property
    def thumbnail_extension(self) -> str:
        return FORMATS[THUMBNAIL_FORMAT][1]


def process(upload) -> Photo:
    """Check an uploaded file (a Django `UploadedFile`, or any binary file object with a
    `size`) and re-encode it; raises `Rejected`."""
    max_bytes = settings.SIGNALEMENT_ATTACHMENT_MAX_BYTES
    if upload.size > max_bytes:
        raise Rejected(
            _("The file is larger than %(size)s.") % {"size": filesizeformat(max_bytes)},
            code="file_too_large",
        )
    if upload.size == 0:
        raise Rejected(_("The file is empty."), code="empty")
    image = _decode(upload)
    format = image.format
    # One full-size copy of the pixels at a time (a 24 MP image with transparency is
    # 96 MB): turned upright in place, encoded as it is, then shrunk in place into the
    # thumbnail.
    try:
        ImageOps.exif_transpose(image, in_place=True)
        width, height = image.size
        content = _encode(image, format)
        return Photo(
            content=content,
            thumbnail=_thumbnail(image),
            format=format,
            width=width,
            height=height,
        )
    except DECODING_ERRORS as error:  # e.g. a malformed EXIF block
        raise Rejected(cannot_read(error), code="corrupt") from error
    finally:
        image.close()


class RejectedFiles(Exception):
    """Some uploads are not acceptable photos: `problems` holds, by upload index, a
    `Rejected` whose message starts with the file's name."""

    def __init__(self, problems: dict[int, Rejected]):
        super().__init__("; ".join(problem.message for problem in problems.values()))
        self.problems = problems


def process_all(uploads) -> list[Photo]:
    """Every upload checked and re-encoded (`process`), or none: raises RejectedFiles
    naming each refused file."""
    checked, problems = [], {}
    for index, upload in enumerate(uploads):
        try:
            checked.append(process(upload))
        except Rejected as rejected:
            name = Truncator(upload.name or "").chars(100)
            problems[index] = Rejected(f"{name}: {rejected.message}", rejected.code)
    if problems:
        raise RejectedFiles(problems)
    return checked


def cannot_read(error: Exception) -> str:
    """Why an image cannot be read (Pillow's words, in English, after ours)."""
    return _("The image cannot be read: %(error)s.") % {"error": error}


def _decode(upload) -> Image.Image:
    """The upload's pixels, fully decoded, after checking the format and the size that
    the header announces (so that a decompression bomb is never decoded)."""
    max_pixels = settings.SIGNALEMENT_ATTACHMENT_MAX_PIXELS
    upload.seek(0)
    too_many_pixels = Rejected(
        _("The image has more than %(count)s pixels.")
        % {"count": f"{max_pixels:,}".replace(",", " ")},
        code="too_many_pixels",
    )
    with warnings.catch_warnings():
        # Pillow warns of, then refuses, images far beyond its own limit.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(upload, formats=list(FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise too_many_pixels from None
        except UnidentifiedImageError:
            raise Rejected(
                _("The file is not a JPEG, PNG or WebP image."), code="not_an_image"
            ) from None
        except DECODING_ERRORS as error:
            raise Rejected(cannot_read(error), code="corrupt") from error
        if image.width * image.height > max_pixels:
            raise too_many_pixels
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise too_many_pixels from None
        except DECODING_ERRORS as error:
            raise Rejected(
                _("The image is truncated or corrupt: %(error)s.") % {"error": error},
                code="corrupt",
            ) from error
    return image


def _encode(image: Image.Image, format: str) -> bytes:
    """The image in the same format, with nothing but its pixels (and colour profile):
    its `info` (EXIF, XMP, comments, text chunks...) is dropped, from the image itself
    (no copy of the pixels)."""
    options = {}
    if icc_profile := image.info.get("icc_profile"):
        options["icc_profile"] = icc_profile
    if format == "PNG" and "transparency" in image.info:
        options["transparency"] = image.info["transparency"]
    transparency = image.info.get("transparency")
    image.info = {}
    clean = image
    if format == "JPEG":
        if clean.mode not in ("L", "RGB", "CMYK"):
            clean = clean.convert("RGB")
        options.update(quality=JPEG_QUALITY)
    elif format == "WEBP":
        options.update(quality=JPEG_QUALITY)
    buffer = io.BytesIO()
    clean.save(buffer, format=format, **options)
    if transparency is not None:  # the thumbnail flattens it on white
        image.info["transparency"] = transparency
    return buffer.getvalue()


def _thumbnail(image: Image.Image) -> bytes:
    """A small JPEG for lists and the admin; transparency is flattened on white. The
    image is shrunk in place: the caller is done with it."""
    thumbnail = image
    thumbnail.thumbnail(THUMBNAIL_SIZE)
    if thumbnail.mode in ("RGBA", "LA") or (
        thumbnail.mode == "P" and "transparency" in thumbnail.info
    ):
        rgba = thumbnail.convert("RGBA")
        thumbnail = Image.new("RGB", rgba.size, "white")
        thumbnail.paste(rgba, mask=rgba.getchannel("A"))
    elif thumbnail.mode != "RGB":
        thumbnail = thumbnail.convert("RGB")
    thumbnail.info = {}
    buffer = io.BytesIO()
    thumbnail.save(buffer, format=THUMBNAIL_FORMAT, quality=80)
    return buffer.getvalue()
