"""A client generated from the committed OpenAPI schema (openapi-python-client, as
integrators generate theirs) talks to a real server (pytest-django's live server, over
HTTP): an agent's full flow (token login, creates with a category's extra answers and a
location, the list's filters and pages followed by `next`, a read, a transition, a
comment, and a refused create read as the schema's typed validation error); an anonymous
reporter creates a report, adds photos with the reporter token the create returned, lists
them; a bad file comes back as the schema's validation error.

The client is generated afresh in a temporary directory for the test session, so a
schema change that breaks generated clients fails here. The same agent's flow through a
TypeScript client: test_generated_client_ts.py, which shares this file's setup and
checks of the database."""

import importlib
import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Group

from signalements.models import AGENTS_GROUP, Category, Comment, Signalement, Status

from . import images
from .factories import CategoryFactory, ExtraFieldFactory, SignalementFactory, UserFactory

SCHEMA = Path(__file__).resolve().parent.parent / "schema.yml"
PACKAGE = "signalements_client"

pytestmark = pytest.mark.django_db(transaction=True)

# The agent's flow, as both generated clients run it (see also ts_client/flow.ts).
CATEGORY = "eclairage-public"
AGENT, PASSWORD = "agent-client", "correct horse battery staple"  # UserFactory's password
LAMP_STATES = ["off", "blinking", "damaged"]
TRANSITION_NOTE = "Pris en charge par l'équipe éclairage."
COMMENT = "Intervention prévue jeudi."
REFUSED_DESCRIPTION = "Sans état du lampadaire"


def street_lighting_and_agent():
    """An agent who logs in with AGENT and PASSWORD, and the street-lighting category
    asking the demo's two questions (`lamp_id`, and `lamp_state`, required, from a list).
    The transactional tests' database starts empty (no agents group either: migrations'
    rows are flushed between tests)."""
    agent = UserFactory(username=AGENT, is_staff=True)
    agent.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    lighting = CategoryFactory(code=CATEGORY, name="Éclairage public")
    ExtraFieldFactory(category=lighting, code="lamp_id", label="Numéro du lampadaire")
    ExtraFieldFactory(
        category=lighting,
        code="lamp_state",
        label="État du lampadaire",
        datatype="singlevaluelist",
        required=True,
        choices=[{"key": state, "label": state} for state in [*LAMP_STATES, "on_daytime"]],
    )
    return agent


def reports_the_filters_leave_out():
    """Two more reports that the flow's list filters (category, status) leave out: one
    of another category, one of street lighting that is no longer new."""
    SignalementFactory(category=CategoryFactory(code="voirie"))
    SignalementFactory(
        category=Category.objects.get(code=CATEGORY),
        status=Status.ACKNOWLEDGED,
        extra={"lamp_state": "off"},
    )


def assert_the_flow_is_recorded(agent, created_ids: list[int]):
    """What the database holds after the agent's flow (either client's): the three
    reports with their answers and location, the first one acknowledged by the agent
    with its note, and the agent's comment; nothing of the refused create."""
    reports = list(Signalement.objects.filter(pk__in=created_ids).order_by("pk"))
    assert [report.pk for report in reports] == sorted(created_ids)
    assert [report.extra for report in reports] == [
        {"lamp_id": f"RN-0421{index}", "lamp_state": state}
        for index, state in enumerate(LAMP_STATES)
    ]
    for index, report in enumerate(reports):
        assert (report.category.code, report.reporter) == (CATEGORY, agent)
        assert (report.latitude, report.longitude) == (
            Decimal("48.1147") + Decimal(index) / 1000,
            Decimal("-1.6801"),
        )
    first, *others = reports
    assert first.status == Status.ACKNOWLEDGED
    assert [report.status for report in others] == [Status.NEW, Status.NEW]
    assert first.history.filter(status=Status.ACKNOWLEDGED, history_user=agent).exists()
    assert list(
        Comment.objects.filter(signalement=first).values_list(
            "body", "status", "author", "author_role", "is_internal"
        )
    ) == [
        (TRANSITION_NOTE, Status.ACKNOWLEDGED, agent.pk, "agent", False),
        (COMMENT, None, agent.pk, "agent", False),
    ]
    assert not Signalement.objects.filter(description=REFUSED_DESCRIPTION).exists()


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


def test_an_agent_follows_the_full_flow_with_a_generated_client(generated, live_server):
    client_module, models, types = module("client"), module("models"), module("types")
    signalements = "api.signalements.signalements_"
    agent = street_lighting_and_agent()
    date = "2025-04-29T21:00:00+02:00"

    # Token login, then every request with `Authorization: Token …`.
    login = module("api.auth.auth_token_create").sync(
        client=client_module.Client(base_url=live_server.url),
        body=models.TokenRequestRequest(username=AGENT, password=PASSWORD),
    )
    assert isinstance(login, models.Token), login
    api = client_module.AuthenticatedClient(
        base_url=live_server.url, token=login.token, prefix="Token"
    )
    me = module("api.me.me_retrieve").sync(client=api)
    assert (me.username, str(me.role)) == (AGENT, "agent")

    # Creates with the category's extra answers and a location.
    created = []
    for index, state in enumerate(LAMP_STATES):
        report = module(f"{signalements}create").sync(
            client=api,
            body=models.SignalementRequest.from_dict(
                {
                    "title": f"Lampadaire {index + 1} (client Python)",
                    "description": f"Le lampadaire RN-0421{index} est en panne.",
                    "date": date,
                    "category": CATEGORY,
                    "extra": {"lamp_id": f"RN-0421{index}", "lamp_state": state},
                    "latitude": 48.1147 + index / 1000,
                    "longitude": -1.6801,
                    "address": "Place Sainte-Anne, Rennes",
                }
            ),
        )
        assert isinstance(report, models.CreatedSignalement), report
        assert (report.category, report.extra["lamp_state"]) == (CATEGORY, state)
        assert (report.latitude, report.longitude) == (48.1147 + index / 1000, -1.6801)
        assert report.status == models.StatusEnum.NEW
        created.append(report)

    # The list's filters, two to a page, following `next` until there is none: the
    # reports created since the first one, of the category, still new.
    reports_the_filters_leave_out()
    list_reports = module(f"{signalements}list")
    filters = {
        "created_after": created[0].created_at,
        "category": [CATEGORY],
        "status": [models.SignalementsListStatusItem.NEW],
        "ordering": [models.SignalementsListOrderingItem.ID],
        "page_size": 2,
    }
    listed, pages, page = [], 0, types.UNSET
    while True:
        answer = list_reports.sync(client=api, page=page, **filters)
        assert isinstance(answer, models.PaginatedSignalementList), answer
        assert answer.count == len(created)
        listed += [report.id for report in answer.results]
        pages += 1
        if not answer.next_:
            break
        assert answer.next_.startswith(f"{live_server.url}/api/signalements/?")
        query = parse_qs(urlsplit(answer.next_).query)
        assert (query["created_after"], query["category"], query["status"]) == (
            [created[0].created_at.isoformat()],
            [CATEGORY],
            ["new"],
        )
        page = int(query["page"][0])
    assert (pages, listed) == (2, [report.id for report in created])

    # The same reports by cursor (keyset pages: no count), newest first, following the
    # `next` links' cursor through the client.
    del filters["ordering"]
    walked, cursor = [], ""
    while cursor is not None:
        answer = list_reports.sync(client=api, cursor=cursor, **filters)
        assert isinstance(answer, models.PaginatedSignalementList), answer
        assert isinstance(answer.count, types.Unset)  # cursor pages are not counted
        walked += [report.id for report in answer.results]
        cursor = parse_qs(urlsplit(answer.next_).query)["cursor"][0] if answer.next_ else None
    assert walked == [report.id for report in reversed(created)]

    # A read (its ETag makes the transition conditional), the transition, a comment.
    target = created[0]
    read = module(f"{signalements}retrieve").sync_detailed(target.id, client=api)
    assert isinstance(read.parsed, models.Signalement), read.parsed
    assert (read.parsed.reference, read.parsed.extra["lamp_id"]) == (target.reference, "RN-04210")
    moved = module(f"{signalements}transition").sync(
        target.id,
        client=api,
        body=models.TransitionRequest(status=models.StatusEnum.ACKNOWLEDGED, note=TRANSITION_NOTE),
        if_match=read.headers["ETag"],
    )
    assert isinstance(moved, models.Signalement), moved
    assert moved.status == models.StatusEnum.ACKNOWLEDGED
    comment = module(f"{signalements}comments_create").sync(
        target.id, client=api, body=models.CommentRequest(body=COMMENT, is_internal=False)
    )
    assert isinstance(comment, models.Comment), comment
    assert str(comment.author_role) == "agent"

    # A create without the required answer: the schema's typed validation error.
    refused = module(f"{signalements}create").sync(
        client=api,
        body=models.SignalementRequest.from_dict(
            {
                "description": REFUSED_DESCRIPTION,
                "date": date,
                "category": CATEGORY,
                "extra": {"lamp_id": "RN-1"},
            }
        ),
    )
    assert isinstance(refused, models.SignalementsCreateValidationError), refused
    [error] = refused.errors
    assert isinstance(error, models.SignalementsCreateExtraKEYErrorComponent), error
    assert (error.attr, str(error.code)) == ("extra.lamp_state", "required")

    assert_the_flow_is_recorded(agent, [report.id for report in created])
