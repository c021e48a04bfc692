"""A client generated from the committed OpenAPI schema (openapi-python-client, as
integrators generate theirs) talks to a real server (pytest-django's live server, over
HTTP): an anonymous reporter creates a report, adds photos with the reporter token the
create returned, lists them; a bad file comes back as the schema's validation error.

The client is generated afresh in a temporary directory for the test session, so a
schema change that breaks generated clients fails here."""

import importlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from signalements.models import Signalement

from . import images

SCHEMA = Path(__file__).resolve().parent.parent / "schema.yml"
PACKAGE = "signalements_client"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    """The generated package, imported."""
    output = tmp_path_factory.mktemp("generated") / PACKAGE
    # Its post-generation hooks run ruff, which lives beside this interpreter.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(SCHEMA),
            "--meta",
            "none",
            "--output-path",
            str(output),
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    sys.path.insert(0, str(output.parent))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(output.parent))


def module(name: str):
    return importlib.import_module(f"{PACKAGE}.{name}")


def anonymous_report(live_server, description: str):
    """An anonymous create through the generated client: the created report, and a
    client that sends its reporter token."""
    client_module, models = module("client"), module("models")
    created = module("api.signalements.signalements_create").sync(
        client=client_module.Client(base_url=live_server.url),
        body=models.SignalementRequest.from_dict(
            {"description": description, "date": "2025-04-29T16:30:00+02:00"}
        ),
    )
    reporter = client_module.AuthenticatedClient(
        base_url=live_server.url,
        token=created.reporter_token,
        prefix="",
        auth_header_name="X-Reporter-Token",
    )
    return created, reporter


def test_an_anonymous_reporter_adds_photos_with_a_generated_client(generated, live_server):
    client_module = module("client")
    add_photos = module("api.signalements.signalements_attachments_create")
    list_photos = module("api.signalements.signalements_attachments_list")
    models = module("models")
    types = module("types")

    anonymous = client_module.Client(base_url=live_server.url)
    created, reporter = anonymous_report(live_server, "Trottoir défoncé")
    assert isinstance(created, models.CreatedSignalement), created
    assert created.reporter_token

    photo = types.File(
        payload=io.BytesIO(images.jpeg_with_gps()), file_name="photo.jpg", mime_type="image/jpeg"
    )
    drawing = types.File(
        payload=io.BytesIO(images.png_with_text()), file_name="plan.png", mime_type="image/png"
    )
    added = add_photos.sync(
        created.id, client=reporter, body=models.AttachmentUploadRequest(photos=[photo, drawing])
    )

    assert [type(item) for item in added] == [models.Attachment, models.Attachment]
    assert [item.content_type for item in added] == ["image/jpeg", "image/png"]
    assert (added[0].width, added[0].height) == (64, 48)
    listed = list_photos.sync(created.id, client=anonymous)
    assert [item.id for item in listed] == [item.id for item in added]
    assert Signalement.objects.get(pk=created.id).attachments.count() == 2


def test_a_refused_file_is_the_schemas_validation_error(generated, live_server):
    client_module = module("client")
    add_photos = module("api.signalements.signalements_attachments_create")
    models = module("models")
    types = module("types")

    created, reporter = anonymous_report(live_server, "Tag sur un mur")
    page = types.File(payload=io.BytesIO(images.HTML), file_name="page.jpg")

    refused = add_photos.sync(
        created.id, client=reporter, body=models.AttachmentUploadRequest(photos=[page])
    )

    assert type(refused).__name__ == "SignalementsAttachmentsCreateValidationError"
    [error] = refused.errors
    assert (error.attr, str(error.code)) == ("photos.0", "not_an_image")
    assert error.detail.startswith("page.jpg: ")
    without_token = add_photos.sync(
        created.id,
        client=client_module.AuthenticatedClient(base_url=live_server.url, token="wrong"),
        body=models.AttachmentUploadRequest(photos=[page]),
    )
    assert type(without_token).__name__ == "ErrorResponse401"
