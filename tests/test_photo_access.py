"""Who gets a report's photo (`signalements/photo_access.py`): anyone a public report's, on
a lasting URL; a hidden report's only through the signed, expiring URL that the API gives
those who may see the report, or to a logged-in user who may see it; with the headers of
a safe image (its type, `nosniff`, an inline name of ours, private or public caching).
Photos are real images uploaded through the API (tests/images.py), served by Django from
the test's own storage, and once by the production server (`scripts/serve.sh`)."""

import re
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.test import Client
from rest_framework.test import APIClient

from signalements import photo_access, webhooks
from signalements.models import Attachment, Signalement

from . import images
from .factories import AttachmentFactory, DepartmentFactory, SignalementFactory, UserFactory
from .live import DATABASES, ROOT, LiveServer, live_database, server_environment

pytestmark = pytest.mark.django_db

NEW_REPORT = {"description": "Nid de poule", "date": "2025-04-29T16:30:00+02:00"}


def upload(client, report_id, name="a.jpg", content=None, content_type="image/jpeg", token=None):
    """One photo added through the API; its representation (with its URLs)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = images.jpeg_with_gps() if content is None else content
    response = client.post(
        f"/api/signalements/{report_id}/attachments/",
        {"photos": [SimpleUploadedFile(name, content, content_type=content_type)]},
        format="multipart",
        headers={"X-Reporter-Token": token} if token else {},
    )
    assert response.status_code == 201, response.content
    [photo] = response.json()
    return photo


def local(url: str) -> str:
    """A URL of the API (absolute) or made here (a path), as the test client requests it."""
    parts = urlsplit(url)
    assert parts.netloc in ("testserver", ""), url
    return parts.path + (f"?{parts.query}" if parts.query else "")


def plain(url: str) -> str:
    """The URL without its signature."""
    return local(url).split("?")[0]


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def stored(attachment_id: int, *, thumbnail: bool = False) -> bytes:
    attachment = Attachment.objects.get(pk=attachment_id)
    with (attachment.thumbnail if thumbnail else attachment.file).open("rb") as file:
        return file.read()


@pytest.fixture
def anonymous():
    """A browser with no credentials (an <img> tag, a link opened elsewhere)."""
    return Client()


@pytest.fixture
def hidden_photo(agent_client):
    """A hidden report with a photo, and the photo as the API gave it to an agent."""
    report = SignalementFactory(is_public=False)
    return report, upload(agent_client, report.pk)


# --- A public report's photos ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "content_type", "extension"),
    [
        ('IMG 001 "x".jpg', images.jpeg_with_gps(), "image/jpeg", "jpg"),
        ("../../etc/passwd.png", images.png_with_text(), "image/png", "png"),
        ("photo.webp", images.webp_with_gps(), "image/webp", "webp"),
    ],
)
def test_anyone_gets_a_public_reports_photo_with_the_headers_of_a_safe_image(
    agent_client, anonymous, name, content, content_type, extension
):
    report = SignalementFactory()
    photo = upload(agent_client, report.pk, name, content, content_type)
    assert "?" not in photo["url"] and "?" not in photo["thumbnail_url"]

    served = anonymous.get(local(photo["url"]))
    assert served.status_code == 200
    assert body(served) == stored(photo["id"])
    assert served["Content-Type"] == content_type
    assert served["X-Content-Type-Options"] == "nosniff"
    # Our name: the report's reference, never the uploaded file's.
    assert served["Content-Disposition"] == (
        f'inline; filename="{report.reference}-photo-{photo["id"]}.{extension}"'
    )
    assert served["Cache-Control"] == "public, max-age=300"
    assert served["Content-Length"] == str(photo["size"])

    thumbnail = anonymous.get(local(photo["thumbnail_url"]))
    assert thumbnail.status_code == 200
    assert body(thumbnail) == stored(photo["id"], thumbnail=True)
    assert thumbnail["Content-Type"] == "image/jpeg"  # thumbnails are JPEG
    assert thumbnail["Content-Disposition"] == (
        f'inline; filename="{report.reference}-thumbnail-{photo["id"]}.jpg"'
    )


def test_a_public_reports_photo_keeps_its_url_and_answers_revalidations(
    agent_client, api_client, anonymous
):
    report = SignalementFactory()
    photo = upload(agent_client, report.pk)
    first = api_client.get(f"/api/signalements/{report.pk}/")
    again = api_client.get(f"/api/signalements/{report.pk}/")
    assert first.content == again.content and first["ETag"] == again["ETag"]
    assert first.json()["attachments"][0]["url"] == photo["url"]

    served = anonymous.get(local(photo["url"]))
    revalidated = anonymous.get(
        local(photo["url"]),
        HTTP_IF_NONE_MATCH=served["ETag"],
    )
    assert revalidated.status_code == 304
    since = anonymous.get(local(photo["url"]), HTTP_IF_MODIFIED_SINCE=served["Last-Modified"])
    assert since.status_code == 304


def test_head_gives_the_headers_without_the_photo(agent_client, anonymous):
    photo = upload(agent_client, SignalementFactory().pk)
    head = anonymous.head(local(photo["url"]))
    assert head.status_code == 200
    assert head.content == b""
    assert head["Content-Length"] == str(photo["size"])
    assert head["Content-Type"] == "image/jpeg"
    assert head["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/media/photos/2026/11/0123456789abcdef0123456789abcdef.jpg",
        "/media/../db.sqlite3",
        "/media/photos/%00.jpg",
        "/media/photos/a.jpg%0A",
        "/media/" + "a" * 300,
    ],
)
def test_anything_else_under_media_is_a_404(anonymous, path):
    assert anonymous.get(path).status_code == 404


def test_a_photo_is_only_read(agent_client, anonymous):
    photo = upload(agent_client, SignalementFactory().pk)
    assert anonymous.post(local(photo["url"])).status_code == 405
    assert anonymous.delete(local(photo["url"])).status_code == 405
    assert Attachment.objects.filter(pk=photo["id"]).exists()


# --- A hidden report's photos ---------------------------------------------------------------


def test_anonymous_with_the_plain_url_of_a_hidden_reports_photo_gets_a_404(hidden_photo, anonymous):
    _, photo = hidden_photo
    for url in (photo["url"], photo["thumbnail_url"]):
        assert anonymous.get(plain(url)).status_code == 404
        assert anonymous.head(plain(url)).status_code == 404


def test_an_agent_gets_it_through_the_url_the_api_gave_them(agent_client, anonymous, hidden_photo):
    report, _ = hidden_photo
    detail = agent_client.get(f"/api/signalements/{report.pk}/").json()
    listed = agent_client.get("/api/signalements/").json()["results"]
    [photo] = detail["attachments"]
    assert [entry["attachments"] for entry in listed if entry["id"] == report.pk] == [[photo]]
    query = parse_qs(urlsplit(photo["url"]).query)
    assert set(query) == {"expires", "signature"}
    ttl = 3600
    assert time.time() + ttl <= int(query["expires"][0]) <= time.time() + 2 * ttl

    # As an <img> would: no credentials, the signed URL alone.
    for url, thumbnail in ((photo["url"], False), (photo["thumbnail_url"], True)):
        served = anonymous.get(local(url))
        assert served.status_code == 200
        assert body(served) == stored(photo["id"], thumbnail=thumbnail)
        assert served["X-Content-Type-Options"] == "nosniff"
        assert served["Content-Disposition"].startswith(f'inline; filename="{report.reference}-')
        cache = served["Cache-Control"]
        assert re.fullmatch(r"private, max-age=[0-9]+", cache)
        assert int(cache.rsplit("=", 1)[1]) <= 2 * ttl


def test_the_anonymous_reporter_gets_their_hidden_reports_photo(api_client, anonymous):
    created = api_client.post("/api/signalements/", NEW_REPORT, format="json").json()
    token = created["reporter_token"]
    Signalement.objects.filter(pk=created["id"]).update(is_public=False)
    upload(api_client, created["id"], token=token)

    seen = api_client.get(
        f"/api/signalements/{created['id']}/", headers={"X-Reporter-Token": token}
    )
    [photo] = seen.json()["attachments"]
    assert anonymous.get(local(photo["url"])).status_code == 200
    assert anonymous.get(plain(photo["url"])).status_code == 404
    # Others do not see the report, nor get any URL of its photos.
    assert api_client.get(f"/api/signalements/{created['id']}/").status_code == 404


def test_an_expired_or_tampered_signature_fails(hidden_photo, anonymous):
    report, photo = hidden_photo
    name = Attachment.objects.get(pk=photo["id"]).file.name
    url = local(photo["url"])
    assert anonymous.get(url).status_code == 200

    query = parse_qs(urlsplit(url).query)
    expires, signature = query["expires"][0], query["signature"][0]
    other = "A" if signature[0] != "A" else "B"
    tampered = [
        url.replace(signature, other + signature[1:]),
        url.replace(f"expires={expires}", f"expires={int(expires) + 1}"),
        url.replace(f"expires={expires}", "expires=abc"),
        url.replace(f"&signature={signature}", ""),
        url.replace(f"signature={signature}", "signature="),
        url.replace(signature, "x" * 200),
    ]
    for bad in tampered:
        assert anonymous.get(bad).status_code == 404, bad

    # A signature made by the server itself, but for an expiry past.
    long_ago = photo_access.Links(now=time.time() - 3 * 3600).url(name, public=False)
    assert int(parse_qs(urlsplit(long_ago).query)["expires"][0]) < time.time()
    assert anonymous.get(long_ago).status_code == 404

    # Another key's signature (a forger's) for a future expiry.
    future = int(time.time()) + 3600
    forged = signing.Signer(key="not-the-secret-key", salt=photo_access.SALT).signature(
        f"{name}:{future}"
    )
    assert anonymous.get(f"{plain(url)}?expires={future}&signature={forged}").status_code == 404


def test_a_signature_opens_one_photo_only(agent_client, anonymous):
    report = SignalementFactory(is_public=False)
    first, second = upload(agent_client, report.pk), upload(agent_client, report.pk)
    query = urlsplit(first["url"]).query
    assert anonymous.get(f"{plain(second['url'])}?{query}").status_code == 404
    # Nor its own thumbnail.
    assert anonymous.get(f"{plain(first['thumbnail_url'])}?{query}").status_code == 404


def test_a_report_hidden_later_stops_serving_its_photo(agent_client, anonymous, api_client):
    report = SignalementFactory()
    photo = upload(agent_client, report.pk)
    assert anonymous.get(local(photo["url"])).status_code == 200

    hidden = agent_client.patch(f"/api/signalements/{report.pk}/", {"is_public": False})
    assert hidden.status_code == 200, hidden.content

    # The URL published while it was public: no more.
    assert anonymous.get(local(photo["url"])).status_code == 404
    assert anonymous.get(local(photo["thumbnail_url"])).status_code == 404
    assert api_client.get(f"/api/signalements/{report.pk}/").status_code == 404
    # Agents get a signed one.
    [now_signed] = agent_client.get(f"/api/signalements/{report.pk}/").json()["attachments"]
    assert now_signed["url"] != photo["url"]
    assert anonymous.get(local(now_signed["url"])).status_code == 200

    # Public again: the plain URL works again.
    agent_client.patch(f"/api/signalements/{report.pk}/", {"is_public": True})
    assert anonymous.get(local(photo["url"])).status_code == 200


# --- Logged in: the admin's thumbnails --------------------------------------------------------


def test_a_logged_in_user_who_may_see_the_report_gets_the_plain_url(
    agent_user, hidden_photo, settings
):
    report, photo = hidden_photo
    url = plain(photo["url"])

    agent = Client()
    agent.force_login(agent_user)
    served = agent.get(url)
    assert served.status_code == 200
    assert served["Cache-Control"] in ("private, no-cache", "no-store")  # never shared

    # Its reporter, logged in.
    owner = UserFactory()
    Signalement.objects.filter(pk=report.pk).update(reporter=owner)
    browser = Client()
    browser.force_login(owner)
    assert browser.get(url).status_code == 200

    # Another reporter: no.
    stranger = Client()
    stranger.force_login(UserFactory())
    assert stranger.get(url).status_code == 404

    # An agent whose scope (AGENT_SCOPE=department) leaves the report out: no.
    settings.SIGNALEMENT_AGENT_SCOPE = "department"
    Signalement.objects.filter(pk=report.pk).update(department=DepartmentFactory())
    agent = Client()
    agent.force_login(agent_user)
    assert agent.get(url).status_code == 404


def test_the_admins_thumbnails_show_for_agents(agent_user, hidden_photo):
    report, photo = hidden_photo
    agent = Client()
    agent.force_login(agent_user)
    page = agent.get(f"/admin/signalements/signalement/{report.pk}/change/").content.decode()
    [src] = re.findall(r'<img src="(/media/thumbnails/[^"]+)"', page)
    assert agent.get(src).status_code == 200
    assert Client().get(src).status_code == 404


# --- Stable URLs and ETags, across windows ------------------------------------------------------


def next_window(ttl: int) -> None:
    """Wait for the start of the next window of `ttl` seconds (signed URLs change then)."""
    current = int(time.time()) // ttl
    while int(time.time()) // ttl == current:
        time.sleep(0.02)


def test_a_hidden_reports_urls_and_etag_hold_within_a_window_and_change_with_it(
    agent_client, settings
):
    settings.PHOTO_URL_TTL_SECONDS = 2
    report = SignalementFactory(is_public=False)
    upload(agent_client, report.pk)
    detail = f"/api/signalements/{report.pk}/"

    # Within a window: the same bytes, the same ETag (the lean path and DRF's alike).
    next_window(2)
    first, again = agent_client.get(detail), agent_client.get(detail)
    drf = agent_client.get(detail, HTTP_ACCEPT="application/json; indent=2")
    assert first.content == again.content
    assert first["ETag"] == again["ETag"]
    assert drf.json()["attachments"] == first.json()["attachments"]

    # The next window: new URLs and a new ETag, so that a revalidation gets them (a 304
    # would keep URLs about to expire)...
    next_window(2)
    later = agent_client.get(detail, HTTP_IF_NONE_MATCH=first["ETag"])
    assert later.status_code == 200
    assert later.json()["attachments"] != first.json()["attachments"]
    assert later["ETag"] != first["ETag"]
    # ... but a write with the first read's ETag is no conflict: the report did not change.
    written = agent_client.patch(detail, {"priority": "high"}, HTTP_IF_MATCH=first["ETag"])
    assert written.status_code == 200, written.content
    stale = agent_client.patch(detail, {"priority": "low"}, HTTP_IF_MATCH=first["ETag"])
    assert stale.status_code == 412


def test_a_public_reports_etag_does_not_change_with_the_windows(agent_client, settings):
    settings.PHOTO_URL_TTL_SECONDS = 1
    report = SignalementFactory()
    upload(agent_client, report.pk)
    first = agent_client.get(f"/api/signalements/{report.pk}/")
    time.sleep(1.1)
    later = agent_client.get(f"/api/signalements/{report.pk}/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert later.status_code == 304


# --- The other doors: webhooks, Open311 ---------------------------------------------------------


def test_a_webhook_body_signs_a_hidden_reports_photos_for_longer(hidden_photo, settings, anonymous):
    settings.PUBLIC_BASE_URL = "https://signalements.example.org"
    report, _ = hidden_photo
    [photo] = webhooks.report_data(Signalement.objects.get(pk=report.pk))["attachments"]
    assert photo["url"].startswith("https://signalements.example.org/media/photos/")
    expires = int(parse_qs(urlsplit(photo["url"]).query)["expires"][0])
    assert expires >= time.time() + settings.WEBHOOK_PHOTO_URL_TTL_SECONDS
    path = photo["url"].removeprefix("https://signalements.example.org")
    assert anonymous.get(path).status_code == 200

    Signalement.objects.filter(pk=report.pk).update(is_public=True)
    [public] = webhooks.report_data(Signalement.objects.get(pk=report.pk))["attachments"]
    assert "?" not in public["url"]


def test_open311_shows_a_public_reports_first_photo_on_its_lasting_url(agent_client, anonymous):
    report = SignalementFactory()
    photo = upload(agent_client, report.pk)
    answer = APIClient().get(f"/open311/v2/requests/{report.pk}.json")
    assert answer.status_code == 200, answer.content
    assert answer.json()[0]["media_url"] == photo["url"]
    assert anonymous.get(local(photo["url"])).status_code == 200


# --- Another storage (S3…): its own presigned URLs -------------------------------------------------


def test_with_an_s3_storage_the_check_sends_to_a_presigned_url(settings, anonymous, agent_user):
    """django-storages' S3 backend on a private bucket (`querystring_auth`): after the
    check, a redirect to the storage's own URL, signed and expiring
    (`querystring_expire`). Making that URL needs no connection."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "signalements-photos",
                "endpoint_url": "https://s3.example.org",
                "region_name": "fr-par",
                "access_key": "AKIAEXAMPLE",
                "secret_key": "secret",
                "querystring_auth": True,
                "querystring_expire": 300,
            },
        },
    }
    public = AttachmentFactory(file="photos/2026/11/public.jpg")
    hidden = AttachmentFactory(
        file="photos/2026/11/hidden.jpg", signalement=SignalementFactory(is_public=False)
    )

    served = anonymous.get("/media/photos/2026/11/public.jpg")
    assert served.status_code == 302
    location = urlsplit(served["Location"])
    assert (location.netloc, location.path) == (
        "s3.example.org",
        "/signalements-photos/photos/2026/11/public.jpg",
    )
    query = parse_qs(location.query)
    assert query["X-Amz-Expires"] == ["300"] and query["X-Amz-Signature"]
    assert served["Cache-Control"] == "no-cache"

    assert anonymous.get("/media/photos/2026/11/hidden.jpg").status_code == 404
    agent = Client()
    agent.force_login(agent_user)
    assert agent.get("/media/photos/2026/11/hidden.jpg").status_code == 302
    signed = photo_access.Links().url(hidden.file.name, public=False)
    assert anonymous.get(signed).status_code == 302
    assert public.signalement.is_public and not hidden.signalement.is_public


# --- Behind nginx: it sends the file, after Django's check ------------------------------------


def test_behind_nginx_the_check_hands_the_file_to_an_internal_location(
    agent_client, anonymous, settings
):
    settings.PHOTO_ACCEL_REDIRECT = "/protected-media/"
    report = SignalementFactory()
    photo = upload(agent_client, report.pk)
    name = Attachment.objects.get(pk=photo["id"]).file.name

    served = anonymous.get(local(photo["url"]))
    assert served.status_code == 200
    assert served["X-Accel-Redirect"] == f"/protected-media/{name}"
    assert body(served) == b""
    assert served["Content-Type"] == "image/jpeg"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Disposition"].startswith(f'inline; filename="{report.reference}-')

    Signalement.objects.filter(pk=report.pk).update(is_public=False)
    refused = anonymous.get(local(photo["url"]))
    assert refused.status_code == 404 and not refused.has_header("X-Accel-Redirect")


# --- The production server -------------------------------------------------------------------


SETUP = """
import io, sys
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from knox.models import AuthToken
from PIL import Image
from signalements import attachments, photos
from signalements.models import AGENTS_GROUP, Signalement

agent = User.objects.create_user("agent", "agent@example.org", "x", is_staff=True)
agent.groups.add(Group.objects.get(name=AGENTS_GROUP))
buffer = io.BytesIO()
Image.new("RGB", (800, 600), "teal").save(buffer, "JPEG")
out = [AuthToken.objects.create(user=agent)[1]]
for public in (True, False):
    report = Signalement.objects.create(description="x", date=timezone.now(), is_public=public)
    upload = SimpleUploadedFile("a.jpg", buffer.getvalue(), "image/jpeg")
    [photo] = attachments.add(signalement=report, photos=[photos.process(upload)])
    out += [str(report.pk), photo.file.name]
print(" ".join(out))
"""


@pytest.mark.parametrize("kind", DATABASES)
def test_the_production_server_checks_before_serving_a_photo(kind, tmp_path):
    media = tmp_path / "media"
    with live_database(kind, tmp_path) as url:
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", SETUP],
            cwd=ROOT,
            env=server_environment(url, MEDIA_ROOT=str(media)),
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        token, public_id, public_name, hidden_id, hidden_name = done.stdout.split()
        server = LiveServer(url, workers=1, MEDIA_ROOT=str(media))
        agent = {"Authorization": f"Token {token}"}
        try:
            status, headers, content = server.request("GET", f"/media/{public_name}")
            assert status == 200
            assert content == (media / public_name).read_bytes()
            assert headers["content-type"] == "image/jpeg"
            assert headers["x-content-type-options"] == "nosniff"
            assert re.fullmatch(
                r'inline; filename="SIG-[0-9]{4}-[0-9]{6}-photo-[0-9]+\.jpg"',
                headers["content-disposition"],
            )
            assert headers["cache-control"] == "public, max-age=300"
            status, headers, content = server.request("HEAD", f"/media/{public_name}")
            assert status == 200 and not content
            assert headers["content-length"] == str((media / public_name).stat().st_size)

            # A hidden report's photo: not by its plain URL, by the one the API gives.
            assert server.request("GET", f"/media/{hidden_name}")[0] == 404
            status, _, report = server.request(
                "GET", f"/api/signalements/{hidden_id}/", None, agent
            )
            assert status == 200
            signed = urlsplit(report["attachments"][0]["url"])
            status, headers, content = server.request("GET", f"{signed.path}?{signed.query}")
            assert status == 200 and content == (media / hidden_name).read_bytes()
            assert headers["cache-control"].startswith("private, max-age=")

            # The public report hidden: its published URL stops working.
            status, _, _ = server.request(
                "PATCH", f"/api/signalements/{public_id}/", {"is_public": False}, agent
            )
            assert status == 200
            assert server.request("GET", f"/media/{public_name}")[0] == 404
        finally:
            server.stop()
