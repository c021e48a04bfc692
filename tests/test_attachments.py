"""Photos of reports: POST/GET /api/signalements/{id}/attachments/ and DELETE .../{id}/.

Uploads are real images generated with Pillow (tests/images.py), sent as multipart; the
stored files are read back from the storage and opened with Pillow."""

import io
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import ExifTags, Image
from rest_framework.test import APIClient

from signalements.models import Attachment, Signalement, Status

from . import images
from .factories import SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_REPORT = {"description": "Nid de poule", "date": "2025-04-29T16:30:00+02:00"}


def upload(client, signalement_id, *files, token=None):
    """POST files (name, bytes[, content type]) as `photos`, multipart."""
    headers = {"X-Reporter-Token": token} if token is not None else {}
    payload = {"photos": [_file(*spec) for spec in files]}
    return client.post(
        f"/api/signalements/{signalement_id}/attachments/",
        payload,
        format="multipart",
        headers=headers,
    )


def _file(name, content, content_type="image/jpeg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type=content_type)


def stored(name: str) -> bytes:
    with default_storage.open(name) as file:
        return file.read()


def stored_files() -> list[str]:
    """Every file in the storage (photos and thumbnails)."""
    found = []

    def walk(path):
        directories, files = default_storage.listdir(path)
        found.extend(f"{path}/{name}".lstrip("/") for name in files)
        for directory in directories:
            walk(f"{path}/{directory}".lstrip("/"))

    if default_storage.exists(""):
        walk("")
    return found


def assert_no_metadata(content: bytes):
    image = Image.open(io.BytesIO(content))
    image.load()  # opens and decodes completely
    assert dict(image.getexif()) == {}
    assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert not {"exif", "xmp", "comment", "Comment", "XML:com.adobe.xmp"} & set(image.info)
    assert images.SECRET_COMMENT.encode() not in content
    assert b"Exif\x00\x00" not in content
    assert b"PhoneMaker" not in content
    assert b"GPSLatitude" not in content
    return image


@pytest.fixture
def anonymous_report(api_client):
    """An anonymous create: the report and the reporter token its 201 returned."""
    response = api_client.post("/api/signalements/", NEW_REPORT, format="json")
    assert response.status_code == 201, response.json()
    return Signalement.objects.get(pk=response.json()["id"]), response.json()["reporter_token"]


class TestUploads:
    @pytest.mark.parametrize(
        ("name", "content", "content_type", "size"),
        [
            ("photo.jpg", images.jpeg_with_gps(), "image/jpeg", (64, 48)),
            ("photo.png", images.png_with_text(), "image/png", (64, 48)),
            ("photo.png", images.png_with_text(mode="RGBA"), "image/png", (64, 48)),
            ("photo.webp", images.webp_with_gps(), "image/webp", (64, 48)),
        ],
    )
    def test_a_photo_is_stored_without_its_metadata(
        self, agent_client, name, content, content_type, size
    ):
        signalement = SignalementFactory()
        # The original does carry a GPS position.
        assert Image.open(io.BytesIO(content)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

        response = upload(agent_client, signalement.pk, (name, content))

        assert response.status_code == 201, response.json()
        [photo] = response.json()
        attachment = Attachment.objects.get(pk=photo["id"])
        data = stored(attachment.file.name)
        image = assert_no_metadata(data)
        assert image.format == Image.open(io.BytesIO(content)).format
        assert image.size == size
        assert photo["content_type"] == content_type
        assert (photo["width"], photo["height"]) == size
        assert photo["size"] == len(data) == attachment.size
        assert photo["url"] == f"http://testserver/media/{attachment.file.name}"
        assert photo["thumbnail_url"] == f"http://testserver/media/{attachment.thumbnail.name}"
        thumbnail = assert_no_metadata(stored(attachment.thumbnail.name))
        assert thumbnail.format == "JPEG"
        assert max(thumbnail.size) <= 320

    def test_the_orientation_is_applied_before_the_metadata_goes(self, agent_client):
        signalement = SignalementFactory()
        # Orientation 6: the camera was turned; viewers rotate the picture 90° clockwise.
        content = images.jpeg_with_gps(size=(80, 40), orientation=6)

        response = upload(agent_client, signalement.pk, ("photo.jpg", content))

        [photo] = response.json()
        assert (photo["width"], photo["height"]) == (40, 80)
        image = Image.open(io.BytesIO(stored(Attachment.objects.get().file.name)))
        assert image.size == (40, 80)
        # The red block, top left of the sensor, is top right once upright.
        red = image.convert("RGB").getpixel((image.width - 2, 1))
        white = image.convert("RGB").getpixel((1, 1))
        assert red[0] > 200 and red[1] < 60, red
        assert min(white) > 200, white

    def test_a_large_photo_gets_a_small_thumbnail(self, agent_client):
        signalement = SignalementFactory()
        response = upload(
            agent_client, signalement.pk, ("big.jpg", images.jpeg_with_gps((2000, 1000)))
        )
        attachment = Attachment.objects.get(pk=response.json()[0]["id"])
        thumbnail = Image.open(io.BytesIO(stored(attachment.thumbnail.name)))
        assert thumbnail.size == (320, 160)
        assert Image.open(io.BytesIO(stored(attachment.file.name))).size == (2000, 1000)

    def test_several_photos_in_one_request(self, agent_client):
        signalement = SignalementFactory()
        response = upload(
            agent_client,
            signalement.pk,
            ("a.jpg", images.jpeg_with_gps()),
            ("b.png", images.png_with_text(), "image/png"),
            ("c.webp", images.webp_with_gps(), "image/webp"),
        )
        assert response.status_code == 201
        assert [photo["content_type"] for photo in response.json()] == [
            "image/jpeg",
            "image/png",
            "image/webp",
        ]
        assert signalement.attachments.count() == 3
        assert len(stored_files()) == 6  # each photo and its thumbnail

    def test_the_content_decides_not_the_name_or_the_claimed_type(self, agent_client):
        signalement = SignalementFactory()
        response = upload(
            agent_client, signalement.pk, ("photo.jpg", images.png_with_text(), "image/jpeg")
        )
        assert response.status_code == 201
        [photo] = response.json()
        assert photo["content_type"] == "image/png"
        assert photo["url"].endswith(".png")

    def test_file_names_come_from_the_server(self, agent_client):
        signalement = SignalementFactory()
        response = upload(
            agent_client, signalement.pk, ("../../etc/passwd<script>.jpg", images.jpeg_with_gps())
        )
        assert response.status_code == 201
        name = Attachment.objects.get().file.name
        assert "passwd" not in name and ".." not in name
        assert name.startswith("photos/") and name.endswith(".jpg")

    def test_the_photos_show_in_the_report(self, agent_client, api_client):
        signalement = SignalementFactory()
        upload(agent_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()))
        upload(agent_client, signalement.pk, ("b.png", images.png_with_text(), "image/png"))

        listed = api_client.get(f"/api/signalements/{signalement.pk}/attachments/")
        detail = api_client.get(f"/api/signalements/{signalement.pk}/")
        in_list = api_client.get("/api/signalements/")

        assert listed.status_code == 200
        assert [photo["content_type"] for photo in listed.json()] == ["image/jpeg", "image/png"]
        assert detail.json()["attachments"] == listed.json()
        assert in_list.json()["results"][0]["attachments"] == listed.json()

    def test_the_list_reads_the_photos_in_one_query(
        self, agent_client, api_client, django_assert_max_num_queries
    ):
        for _ in range(3):
            signalement = SignalementFactory()
            upload(agent_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()))
        with django_assert_max_num_queries(4):  # count, page, photos, areas
            response = api_client.get("/api/signalements/")
        assert all(len(report["attachments"]) == 1 for report in response.json()["results"])

    def test_the_photos_are_served_by_django(self, agent_client, client):
        # Always, in development and in production: Django checks who may have a photo
        # (tests/test_photo_access.py).
        signalement = SignalementFactory()
        response = upload(agent_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()))
        path = response.json()[0]["url"].removeprefix("http://testserver")
        served = client.get(path)
        assert served.status_code == 200
        assert served["Content-Type"] == "image/jpeg"
        assert b"".join(served.streaming_content) == stored(Attachment.objects.get().file.name)

    def test_a_new_photo_changes_the_report(self, agent_client):
        signalement = SignalementFactory()
        Signalement.objects.filter(pk=signalement.pk).update(
            updated_at=timezone.now() - timedelta(days=1)
        )
        upload(agent_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()))
        signalement.refresh_from_db()
        assert signalement.updated_at > timezone.now() - timedelta(minutes=1)


class TestRefusedFiles:
    @pytest.mark.parametrize(
        ("name", "content", "content_type", "code"),
        [
            ("notes.jpg", b"Ceci n'est pas une image.", "image/jpeg", "not_an_image"),
            ("dessin.svg", images.SVG, "image/svg+xml", "not_an_image"),
            ("dessin.jpg", images.SVG, "image/jpeg", "not_an_image"),
            ("page.html", images.HTML, "text/html", "not_an_image"),
            ("page.jpg", images.HTML, "image/jpeg", "not_an_image"),
            ("anim.jpg", images.gif(), "image/jpeg", "not_an_image"),
            ("bitmap.jpg", images.bmp(), "image/jpeg", "not_an_image"),
            (
                "coupee.jpg",
                images.jpeg_with_gps((640, 480))[:3000],
                "image/jpeg",
                "corrupt",
            ),
            ("coupee.png", images.png_with_text((640, 480))[:1000], "image/png", "corrupt"),
            ("coupee.webp", images.webp_with_gps((640, 480))[:500], "image/webp", "corrupt"),
            ("header.jpg", images.jpeg_with_gps()[:20], "image/jpeg", "not_an_image"),
        ],
    )
    def test_a_bad_file_is_a_400_naming_it(self, agent_client, name, content, content_type, code):
        signalement = SignalementFactory()
        response = upload(
            agent_client,
            signalement.pk,
            ("good.jpg", images.jpeg_with_gps()),
            (name, content, content_type),
        )
        assert response.status_code == 400
        [error] = response.json()["errors"]
        assert error["attr"] == "photos.1"
        assert error["code"] == code
        assert error["detail"].startswith(f"{name}: ")
        # All or nothing: the good photo is not stored either.
        assert not signalement.attachments.exists()
        assert stored_files() == []

    def test_an_empty_file(self, agent_client):
        signalement = SignalementFactory()
        response = upload(agent_client, signalement.pk, ("vide.jpg", b""))
        assert response.status_code == 400
        [error] = response.json()["errors"]
        assert (error["attr"], error["code"]) == ("photos.0", "empty")

    def test_no_file(self, agent_client):
        signalement = SignalementFactory()
        response = agent_client.post(
            f"/api/signalements/{signalement.pk}/attachments/", {}, format="multipart"
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["attr"] == "photos"

    def test_text_instead_of_a_file(self, agent_client):
        signalement = SignalementFactory()
        response = agent_client.post(
            f"/api/signalements/{signalement.pk}/attachments/",
            {"photos": "photo.jpg"},
            format="multipart",
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["attr"] == "photos.0"

    def test_json_is_not_accepted(self, agent_client):
        signalement = SignalementFactory()
        response = agent_client.post(
            f"/api/signalements/{signalement.pk}/attachments/", {"photos": []}, format="json"
        )
        assert response.status_code == 415

    def test_size_limit(self, agent_client, settings):
        settings.SIGNALEMENT_ATTACHMENT_MAX_BYTES = 2000
        signalement = SignalementFactory()
        small = images.jpeg_with_gps((16, 16))
        big = images.png_with_text((400, 400), noise=True)
        assert len(small) <= 2000 < len(big)
        response = upload(
            agent_client, signalement.pk, ("small.jpg", small), ("big.png", big, "image/png")
        )
        assert response.status_code == 400
        [error] = response.json()["errors"]
        assert (error["attr"], error["code"]) == ("photos.1", "file_too_large")
        assert error["detail"].startswith("big.png: ")
        assert not signalement.attachments.exists()

    def test_default_size_limit_is_ten_megabytes(self, agent_client):
        signalement = SignalementFactory()
        too_big = images.jpeg_with_gps() + b"\0" * (10 * 1024 * 1024)
        response = upload(agent_client, signalement.pk, ("big.jpg", too_big))
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "file_too_large"

    def test_pixel_limit(self, agent_client, settings):
        settings.SIGNALEMENT_ATTACHMENT_MAX_PIXELS = 100 * 100
        signalement = SignalementFactory()
        assert (
            upload(
                agent_client, signalement.pk, ("ok.jpg", images.jpeg_with_gps((100, 100)))
            ).status_code
            == 201
        )
        response = upload(
            agent_client, signalement.pk, ("big.jpg", images.jpeg_with_gps((101, 100)))
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "too_many_pixels"

    def test_a_decompression_bomb_is_refused_without_decoding_it(self, agent_client):
        # 30000 × 30000 = 900 million pixels in a few kilobytes of PNG.
        bomb = images.encode(Image.new("1", (30000, 30000)), "PNG")
        assert len(bomb) < 200_000
        signalement = SignalementFactory()
        response = upload(agent_client, signalement.pk, ("bomb.png", bomb, "image/png"))
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert (error["attr"], error["code"]) == ("photos.0", "too_many_pixels")

    def test_count_limit(self, agent_client, settings):
        settings.SIGNALEMENT_MAX_ATTACHMENTS = 2
        signalement = SignalementFactory()
        assert (
            upload(agent_client, signalement.pk, ("a.jpg", images.jpeg_with_gps())).status_code
            == 201
        )
        response = upload(
            agent_client,
            signalement.pk,
            ("b.jpg", images.jpeg_with_gps()),
            ("c.jpg", images.jpeg_with_gps()),
        )
        assert response.status_code == 400
        [error] = response.json()["errors"]
        assert (error["attr"], error["code"]) == ("photos", "too_many_photos")
        assert error["detail"].startswith("Un signalement a au plus 2 photos")
        assert signalement.attachments.count() == 1
        assert (
            upload(agent_client, signalement.pk, ("b.jpg", images.jpeg_with_gps())).status_code
            == 201
        )
        refused = upload(agent_client, signalement.pk, ("c.jpg", images.jpeg_with_gps()))
        assert refused.status_code == 400
        assert signalement.attachments.count() == 2
        assert len(stored_files()) == 4

    def test_default_count_limit_is_five(self, agent_client):
        signalement = SignalementFactory()
        six = [(f"{n}.jpg", images.jpeg_with_gps((8, 8))) for n in range(6)]
        assert upload(agent_client, signalement.pk, *six).status_code == 400
        assert upload(agent_client, signalement.pk, *six[:5]).status_code == 201


class TestWhoMayUpload:
    def test_anonymous_reporter_with_the_token(self, api_client, anonymous_report):
        signalement, token = anonymous_report
        response = upload(
            api_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()), token=token
        )
        assert response.status_code == 201, response.json()
        attachment = signalement.attachments.get()
        assert attachment.uploaded_by is None
        assert_no_metadata(stored(attachment.file.name))

    def test_the_token_is_returned_once_and_stored_hashed(self, api_client, anonymous_report):
        signalement, token = anonymous_report
        assert len(token) >= 40
        signalement.refresh_from_db()
        assert signalement.reporter_token_hash and token not in signalement.reporter_token_hash
        assert token not in str(api_client.get(f"/api/signalements/{signalement.pk}/").json())
        assert signalement.reporter_token_expires_at > timezone.now() + timedelta(hours=23)

    def test_a_logged_in_create_gets_no_token(self, user_client):
        response = user_client.post("/api/signalements/", NEW_REPORT, format="json")
        assert response.json()["reporter_token"] is None
        assert response.json()["reporter_token_expires_at"] is None
        assert Signalement.objects.get().reporter_token_hash is None

    def test_anonymous_without_token_is_a_401(self, api_client, anonymous_report):
        signalement, _ = anonymous_report
        response = upload(api_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()))
        assert response.status_code == 401
        assert not signalement.attachments.exists()

    @pytest.mark.parametrize("token", ["wrong", "x" * 43, "é" * 10, "a" * 5000])
    def test_anonymous_with_a_wrong_token_is_a_401(self, api_client, anonymous_report, token):
        signalement, _ = anonymous_report
        response = upload(
            api_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()), token=token
        )
        assert response.status_code == 401
        assert response.json()["errors"][0]["code"] == "authentication_failed"
        assert not signalement.attachments.exists()

    def test_the_token_of_another_report_is_a_403(self, api_client, anonymous_report):
        signalement, _ = anonymous_report
        other = api_client.post("/api/signalements/", NEW_REPORT, format="json").json()
        response = upload(
            api_client,
            signalement.pk,
            ("a.jpg", images.jpeg_with_gps()),
            token=other["reporter_token"],
        )
        assert response.status_code == 403

    def test_an_expired_token_is_a_401(self, api_client, anonymous_report):
        signalement, token = anonymous_report
        Signalement.objects.filter(pk=signalement.pk).update(
            reporter_token_expires_at=timezone.now() - timedelta(seconds=1)
        )
        response = upload(
            api_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()), token=token
        )
        assert response.status_code == 401
        assert response.json()["errors"][0]["code"] == "authentication_failed"

    def test_the_validity_is_configurable(self, api_client, settings):
        settings.SIGNALEMENT_REPORTER_TOKEN_TTL = timedelta(hours=2)
        created = api_client.post("/api/signalements/", NEW_REPORT, format="json").json()
        expires = Signalement.objects.get(pk=created["id"]).reporter_token_expires_at
        assert timedelta(hours=1, minutes=59) < expires - timezone.now() <= timedelta(hours=2)

    def test_the_token_stops_once_the_report_is_no_longer_new(
        self, api_client, agent_client, anonymous_report
    ):
        signalement, token = anonymous_report
        agent_client.post(
            f"/api/signalements/{signalement.pk}/transition/",
            {"status": "acknowledged"},
            format="json",
        )
        response = upload(
            api_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()), token=token
        )
        assert response.status_code == 401
        edit = api_client.patch(
            f"/api/signalements/{signalement.pk}/",
            {"description": "x"},
            format="json",
            headers={"X-Reporter-Token": token},
        )
        assert edit.status_code == 401

    def test_the_token_lets_the_reporter_edit_and_read_their_report(
        self, api_client, anonymous_report
    ):
        signalement, token = anonymous_report
        response = api_client.patch(
            f"/api/signalements/{signalement.pk}/",
            {"description": "Nid de poule profond", "contact_email": "moi@example.org"},
            format="json",
            headers={"X-Reporter-Token": token},
        )
        assert response.status_code == 200, response.json()
        assert response.json()["contact_email"] == "moi@example.org"
        assert Signalement.objects.get(pk=signalement.pk).description == "Nid de poule profond"
        # Without the token the contact data stays private, and editing is refused.
        assert "contact_email" not in api_client.get(f"/api/signalements/{signalement.pk}/").json()
        refused = api_client.patch(
            f"/api/signalements/{signalement.pk}/", {"description": "x"}, format="json"
        )
        assert refused.status_code == 401

    def test_the_token_reaches_a_report_hidden_by_moderation(self, api_client, anonymous_report):
        signalement, token = anonymous_report
        Signalement.objects.filter(pk=signalement.pk).update(is_public=False)
        assert api_client.get(f"/api/signalements/{signalement.pk}/").status_code == 404
        response = upload(
            api_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()), token=token
        )
        assert response.status_code == 201

    def test_logged_in_reporter_on_their_new_report(self, user_client, reporter):
        signalement = SignalementFactory(reporter=reporter)
        response = upload(user_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()))
        assert response.status_code == 201
        assert signalement.attachments.get().uploaded_by == reporter

    def test_logged_in_reporter_once_their_report_is_acknowledged(self, user_client, reporter):
        signalement = SignalementFactory(reporter=reporter, status=Status.ACKNOWLEDGED)
        response = upload(user_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()))
        assert response.status_code == 403

    def test_another_reporter(self, user_client):
        signalement = SignalementFactory(reporter=UserFactory())
        response = upload(user_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()))
        assert response.status_code == 403

    def test_another_reporter_on_a_hidden_report_gets_a_404(self, user_client):
        signalement = SignalementFactory(reporter=UserFactory(), is_public=False)
        response = upload(user_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()))
        assert response.status_code == 404

    @pytest.mark.parametrize("status", [Status.NEW, Status.IN_PROGRESS, Status.RESOLVED])
    def test_agent_at_any_status(self, agent_client, status):
        signalement = SignalementFactory(status=status, is_public=False)
        response = upload(agent_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()))
        assert response.status_code == 201

    def test_unknown_report(self, agent_client):
        response = upload(agent_client, 999999, ("a.jpg", images.jpeg_with_gps()))
        assert response.status_code == 404


class TestDeletion:
    def _photo(self, client, signalement, token=None):
        response = upload(client, signalement.pk, ("a.jpg", images.jpeg_with_gps()), token=token)
        assert response.status_code == 201
        return response.json()[0]["id"]

    def test_agent_removes_a_photo_and_its_files(
        self, agent_client, django_capture_on_commit_callbacks
    ):
        signalement = SignalementFactory()
        photo_id = self._photo(agent_client, signalement)
        assert len(stored_files()) == 2
        with django_capture_on_commit_callbacks(execute=True):
            response = agent_client.delete(
                f"/api/signalements/{signalement.pk}/attachments/{photo_id}/"
            )
        assert response.status_code == 204
        assert not Attachment.objects.exists()
        assert stored_files() == []

    def test_files_go_with_their_report(
        self, agent_client, superuser_client, django_capture_on_commit_callbacks
    ):
        signalement = SignalementFactory()
        self._photo(agent_client, signalement)
        with django_capture_on_commit_callbacks(execute=True):
            assert (
                superuser_client.delete(f"/api/signalements/{signalement.pk}/").status_code == 204
            )
        assert stored_files() == []

    def test_anonymous_reporter_with_the_token(self, api_client, anonymous_report):
        signalement, token = anonymous_report
        photo_id = self._photo(api_client, signalement, token=token)
        url = f"/api/signalements/{signalement.pk}/attachments/{photo_id}/"
        assert api_client.delete(url).status_code == 401
        assert api_client.delete(url, headers={"X-Reporter-Token": "wrong"}).status_code == 401
        assert api_client.delete(url, headers={"X-Reporter-Token": token}).status_code == 204

    def test_reporter_after_new_cannot(self, user_client, agent_client, reporter):
        signalement = SignalementFactory(reporter=reporter)
        photo_id = self._photo(user_client, signalement)
        Signalement.objects.filter(pk=signalement.pk).update(status=Status.ACKNOWLEDGED)
        url = f"/api/signalements/{signalement.pk}/attachments/{photo_id}/"
        assert user_client.delete(url).status_code == 403
        assert agent_client.delete(url).status_code == 204

    def test_a_photo_of_another_report_is_a_404(self, agent_client):
        one, other = SignalementFactory(), SignalementFactory()
        photo_id = self._photo(agent_client, one)
        response = agent_client.delete(f"/api/signalements/{other.pk}/attachments/{photo_id}/")
        assert response.status_code == 404
        assert Attachment.objects.filter(pk=photo_id).exists()

    def test_room_is_made_for_a_new_photo(self, agent_client, settings):
        settings.SIGNALEMENT_MAX_ATTACHMENTS = 1
        signalement = SignalementFactory()
        photo_id = self._photo(agent_client, signalement)
        agent_client.delete(f"/api/signalements/{signalement.pk}/attachments/{photo_id}/")
        self._photo(agent_client, signalement)


class TestStorageBackends:
    def test_any_storage_backend_through_settings(self, agent_client, api_client, settings):
        """Nothing assumes local files: an in-memory storage (as any django-storages
        backend, configured by MEDIA_STORAGE_BACKEND) takes the photos. Their URLs are
        this server's, which checks who asks, then sends to the storage's own URL (an S3
        bucket's: presigned, see tests/test_photo_access.py)."""
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "django.core.files.storage.InMemoryStorage",
                "OPTIONS": {"base_url": "https://photos.example.org/"},
            },
        }
        signalement = SignalementFactory()
        response = upload(agent_client, signalement.pk, ("a.jpg", images.jpeg_with_gps()))
        assert response.status_code == 201
        photo = response.json()[0]
        assert photo["url"].startswith("http://testserver/media/photos/")
        assert photo["thumbnail_url"].startswith("http://testserver/media/thumbnails/")
        for url, folder in [(photo["url"], "photos"), (photo["thumbnail_url"], "thumbnails")]:
            served = api_client.get(url)
            assert served.status_code == 302
            assert served["Location"].startswith(f"https://photos.example.org/{folder}/")
        assert_no_metadata(stored(Attachment.objects.get().file.name))
        assert not (settings.MEDIA_ROOT).exists()


def test_a_second_client_sees_the_token_only_once(anonymous_report):
    signalement, token = anonymous_report
    other = APIClient()
    listed = other.get("/api/signalements/").json()
    assert token not in str(listed)


def test_an_s3_storage_is_configured_by_environment_variables():
    """The settings read the storage backend and its options from the environment
    (django-storages' S3 backend here; building URLs needs no connection)."""
    import json
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "MEDIA_STORAGE_BACKEND": "storages.backends.s3.S3Storage",
        "MEDIA_STORAGE_OPTIONS": json.dumps(
            {
                "bucket_name": "signalements-photos",
                "endpoint_url": "https://s3.example.org",
                "custom_domain": "photos.example.org",
                "querystring_auth": False,
            }
        ),
    }
    script = (
        "import django; django.setup();"
        "from django.core.files.storage import storages;"
        "s = storages['default'];"
        "print(type(s).__name__, s.bucket_name, s.url('photos/2026/11/a.jpg'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == [
        "S3Storage",
        "signalements-photos",
        "https://photos.example.org/photos/2026/11/a.jpg",
    ]


def test_more_files_than_django_accepts_is_a_400(agent_client):
    """Django refuses a body of more than DATA_UPLOAD_MAX_NUMBER_FILES (100) files: a
    400, not a crash."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    signalement = SignalementFactory()
    files = [SimpleUploadedFile(f"{n}.jpg", b"x") for n in range(101)]
    response = agent_client.post(
        f"/api/signalements/{signalement.pk}/attachments/", {"photos": files}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parse_error"
    assert "DATA_UPLOAD_MAX_NUMBER_FILES" in response.json()["errors"][0]["detail"]
    assert not signalement.attachments.exists()


def test_a_body_larger_than_django_accepts_is_a_413(agent_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000  # for the non-file fields of a form
    signalement = SignalementFactory()
    response = agent_client.post(
        f"/api/signalements/{signalement.pk}/attachments/",
        {"note": "x" * 5000, "photos": [_file("a.jpg", images.jpeg_with_gps())]},
        format="multipart",
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "request_too_large"


@pytest.mark.parametrize(
    ("name", "mode", "format", "options"),
    [
        ("cmyk.jpg", "CMYK", "JPEG", {}),
        ("gris.jpg", "L", "JPEG", {}),
        ("16bits.png", "I;16", "PNG", {}),
        ("alpha.png", "LA", "PNG", {}),
        ("palette.png", "P", "PNG", {"transparency": 0}),
        ("noir-blanc.png", "1", "PNG", {}),
        ("alpha.webp", "RGBA", "WEBP", {"lossless": True}),
    ],
)
def test_every_pixel_mode_is_re_encoded(agent_client, name, mode, format, options):
    signalement = SignalementFactory()
    content = images.encode(images.picture((40, 30), "RGBA").convert(mode), format, **options)

    response = upload(agent_client, signalement.pk, (name, content))

    assert response.status_code == 201, response.json()
    attachment = Attachment.objects.get()
    stored_image = assert_no_metadata(stored(attachment.file.name))
    assert (stored_image.format, stored_image.mode, stored_image.size) == (format, mode, (40, 30))
    assert assert_no_metadata(stored(attachment.thumbnail.name)).mode == "RGB"


def test_an_animation_keeps_its_first_frame(agent_client):
    frames = [images.picture((40, 30)), *[images.picture((40, 30)).rotate(180)] * 3]
    content = images.encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])
    signalement = SignalementFactory()

    response = upload(agent_client, signalement.pk, ("anim.webp", content))

    assert response.status_code == 201
    stored_image = Image.open(io.BytesIO(stored(Attachment.objects.get().file.name)))
    assert getattr(stored_image, "n_frames", 1) == 1


def test_five_huge_blank_pngs_stay_within_bounded_memory(tmp_path):
    """Found by a security audit: 5 blank 7071 x 7071 PNGs of 194 KB each took 9.4 s and
    about 1 GB (the pixels copied three times). Now the largest photo allowed (24 MP,
    with transparency: 96 MB of pixels) is decoded once, one photo at a time, and a
    larger one is refused from its header."""
    import subprocess
    import sys

    from .live import ROOT

    script = """
import io, resource
from PIL import Image
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from signalements import photos
side = int(settings.SIGNALEMENT_ATTACHMENT_MAX_PIXELS ** 0.5)
buffer = io.BytesIO()
Image.new("RGBA", (side, side), (255, 255, 255, 0)).save(buffer, "PNG", optimize=True)
uploads = [SimpleUploadedFile(f"{i}.png", buffer.getvalue(), "image/png") for i in range(5)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
photos.process_all(uploads)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
    completed = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v0", "-c", script],
        cwd=ROOT,
        env={**__import__("os").environ, "DEBUG": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    grown_mb = int(completed.stdout.strip().splitlines()[-1])
    # One copy of 96 MB, and the encoders. buffers (measured: 194 MB before, 278 MB).
    assert grown_mb < 160, grown_mb


def test_a_photo_over_the_pixel_limit_is_refused_from_its_header(agent_client, settings):
    settings.SIGNALEMENT_ATTACHMENT_MAX_PIXELS = 24_000_000
    report = SignalementFactory()
    buffer = io.BytesIO()
    Image.new("L", (7071, 7071)).save(buffer, "PNG", optimize=True)
    response = upload(agent_client, report.pk, ("huge.png", buffer.getvalue(), "image/png"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "too_many_pixels"
