"""Real images, generated with Pillow, for the photo upload tests."""

import io

from PIL import ExifTags, Image, ImageDraw

# Where the "phone" took the photo: 48°06'53"N 1°40'47"W (Rennes).
GPS_LATITUDE = (48.0, 6.0, 53.0)
GPS_LONGITUDE = (1.0, 40.0, 47.0)
SECRET_COMMENT = "maison de Camille, 12 rue des Lilas"


def picture(size=(64, 48), mode="RGB", noise=False) -> Image.Image:
    """A picture with a feature that shows its orientation: a red block top left; on
    noise (which compresses badly: a large file) if asked."""
    if noise:
        image = Image.effect_noise(size, 64).convert(mode)
    else:
        image = Image.new(mode, size, "white" if mode != "RGBA" else (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, size[0] // 4, size[1] // 4), fill="red")
    return image


def phone_exif(orientation: int | None = None) -> Image.Exif:
    """EXIF as a phone writes it: maker, model, date, GPS position, maybe orientation."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone 12"
    exif[ExifTags.Base.DateTime] = "2025:04:29 16:30:00"
    exif[ExifTags.Base.ImageDescription] = SECRET_COMMENT
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = GPS_LONGITUDE
    return exif


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def jpeg_with_gps(size=(64, 48), orientation: int | None = None) -> bytes:
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="48,6.883N"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    return encode(
        picture(size),
        "JPEG",
        exif=phone_exif(orientation),
        xmp=xmp,
        comment=SECRET_COMMENT.encode(),
    )


def png_with_text(size=(64, 48), mode="RGB", noise=False) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SECRET_COMMENT)
    return encode(picture(size, mode, noise), "PNG", pnginfo=info, exif=phone_exif())


def webp_with_gps(size=(64, 48)) -> bytes:
    return encode(picture(size), "WEBP", exif=phone_exif())


def gif(size=(64, 48)) -> bytes:
    return encode(picture(size), "GIF")


def bmp(size=(64, 48)) -> bytes:
    return encode(picture(size), "BMP")


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>alert(1)</script><rect width="10" height="10"/></svg>'
)
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
