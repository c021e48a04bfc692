"""Who may do what: the permission matrix of the four roles, and the rules about fields.

Roles: anonymous (no credentials), reporter (logged in, not an agent), agent (member of
the "agents" group), admin (superuser). Every report is one of four targets: someone
else's public report, someone else's hidden (is_public=False) report, and the
reporter's own report while `new` and once `acknowledged`.

A report the caller may not see does not exist for them: a 404, never a 403. A refused
write changes nothing in the database.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from signalements.models import Attachment, Category, Comment, Priority, Signalement, Status

from . import images
from .factories import AttachmentFactory, CategoryFactory, SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()

PASSWORD = "correct horse battery staple"  # UserFactory's password
PRIVATE_FIELDS = {"contact_name", "contact_email", "contact_phone"}
ROLES = ("anonymous", "reporter", "agent", "admin")
TARGETS = ("public", "hidden", "own_new", "own_acknowledged")
NEW_TITLE = "Titre corrigé"
NEW_DESCRIPTION = "Le lampadaire clignote toute la nuit."
COMMENT_BODY = "Toujours en panne ce matin."


@dataclass
class World:
    """The users, categories and reports every test of this module starts from."""

    users: dict[str, User | None]  # by role; None for anonymous
    neighbour: User  # the other reporter, who filed "public" and "hidden"
    category: Category  # used by every report
    spare_category: Category  # used by no report: the target of category writes
    reports: dict[str, Signalement]  # by target


@pytest.fixture
def world(reporter, agent_user, superuser):
    neighbour = UserFactory(username="voisin")
    category = CategoryFactory(code="eclairage-public", name="Éclairage public")
    spare_category = CategoryFactory(code="graffiti", name="Graffitis")
    reports = {
        "public": SignalementFactory(reporter=neighbour, category=category),
        "hidden": SignalementFactory(reporter=neighbour, category=category, is_public=False),
        "own_new": SignalementFactory(reporter=reporter, category=category),
        "own_acknowledged": SignalementFactory(
            reporter=reporter, category=category, status=Status.ACKNOWLEDGED
        ),
    }
    for user in (reporter, agent_user, superuser, neighbour):
        AuthToken.objects.create(user=user)
    for report in reports.values():  # a photo each (rows only: no test reads the files)
        AttachmentFactory(
            signalement=report,
            file=f"photos/{report.pk}.jpg",
            thumbnail=f"thumbnails/{report.pk}.jpg",
        )
    return World(
        users={"anonymous": None, "reporter": reporter, "agent": agent_user, "admin": superuser},
        neighbour=neighbour,
        category=category,
        spare_category=spare_category,
        reports=reports,
    )


@pytest.fixture
def clients(api_client, user_client, agent_client, superuser_client):
    return {
        "anonymous": api_client,
        "reporter": user_client,
        "agent": agent_client,
        "admin": superuser_client,
    }


def db_state():
    """Everything a request could change, to compare before and after a refused one."""
    return {
        "signalements": list(Signalement.objects.order_by("pk").values()),
        "history": list(Signalement.history.order_by("history_id").values()),
        "comments": list(Comment.objects.order_by("pk").values()),
        "attachments": list(Attachment.objects.order_by("pk").values()),
        "categories": list(Category.objects.order_by("pk").values()),
        "tokens": list(AuthToken.objects.order_by("digest").values_list("user_id", "digest")),
    }


def error_attrs(response):
    return {error["attr"] for error in response.json()["errors"]}


def detail_url(report):
    return reverse("signalement-detail", args=[report.pk])


def comments_url(report):
    return reverse("signalement-comments", args=[report.pk])


def history_url(report):
    return reverse("signalement-history", args=[report.pk])


def transition_url(report):
    return reverse("signalement-transition", args=[report.pk])


def attachments_url(report):
    return reverse("signalement-attachments", args=[report.pk])


def attachment_url(report):
    return reverse("signalement-attachment", args=[report.pk, report.attachments.get().pk])


# --- The actions of the matrix -------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One cell of the matrix: who calls, on which report (None: not about a report)."""

    world: World
    role: str
    target: Signalement | None

    @property
    def user(self):
        return self.world.users[self.role]


@dataclass(frozen=True)
class Action:
    method: str
    url: Callable[[Call], str]
    payload: Callable[[Call], dict] | None = None
    # Asserts the database change a successful write made (reads must change nothing).
    effect: Callable[[Call, object], None] | None = None
    format: str = "json"


def next_status(report):
    return Status.ACKNOWLEDGED if report.status == Status.NEW else Status.IN_PROGRESS


def full_report_payload(call):
    return {
        "title": NEW_TITLE,
        "description": NEW_DESCRIPTION,
        "date": call.target.date.isoformat(),
        "category": call.world.category.code,
        "latitude": 48.112,
        "longitude": -1.681,
        "address": "Rue de Saint-Malo, 35000 Rennes",
    }


def new_report_payload(call):
    return {"description": "Un nid-de-poule sur la voie de droite.", "date": "2025-04-29T16:30:00"}


def category_payload(call):
    return {
        "code": call.world.spare_category.code,
        "name": "Tags et graffitis",
        "description": "",
        "group": "Propreté",
        "is_active": True,
    }


def report_created(call, response):
    created = Signalement.objects.get(pk=response.json()["id"])
    assert created.reporter == call.user
    assert created.status == Status.NEW


def report_replaced(call, response):
    stored = Signalement.objects.get(pk=call.target.pk)
    assert (stored.title, stored.description) == (NEW_TITLE, NEW_DESCRIPTION)
    assert stored.address == "Rue de Saint-Malo, 35000 Rennes"
    assert stored.status == call.target.status


def report_patched(call, response):
    stored = Signalement.objects.get(pk=call.target.pk)
    assert stored.title == NEW_TITLE
    assert stored.description == call.target.description
    assert stored.status == call.target.status


def report_deleted(call, response):
    assert not Signalement.objects.filter(pk=call.target.pk).exists()


def report_moved(call, response):
    assert Signalement.objects.get(pk=call.target.pk).status == next_status(call.target)


def comment_added(call, response):
    comment = Comment.objects.get(pk=response.json()["id"])
    assert (comment.signalement_id, comment.author, comment.body) == (
        call.target.pk,
        call.user,
        COMMENT_BODY,
    )
    assert comment.is_internal is False


def photo_payload(call):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"photos": [SimpleUploadedFile("photo.jpg", images.jpeg_with_gps())]}


def photo_added(call, response):
    assert call.target.attachments.count() == 2
    added = call.target.attachments.get(pk=response.json()[0]["id"])
    assert added.uploaded_by == call.user


def photo_removed(call, response):
    assert not call.target.attachments.exists()


def category_created(call, response):
    assert Category.objects.filter(code="mobilier-urbain", name="Mobilier urbain").exists()


def category_renamed(call, response):
    assert Category.objects.get(code="graffiti").name == "Tags et graffitis"


def category_deleted(call, response):
    assert not Category.objects.filter(code="graffiti").exists()


def token_given(call, response):
    digest = hash_token(response.json()["token"])
    assert AuthToken.objects.filter(user__username="citizen", digest=digest).exists()


def token_revoked(call, response):
    assert not AuthToken.objects.filter(user=call.user).exists()
    assert AuthToken.objects.filter(user=call.world.neighbour).exists()


REPORT_ACTIONS = {
    "retrieve": Action("get", lambda c: detail_url(c.target)),
    "update": Action("put", lambda c: detail_url(c.target), full_report_payload, report_replaced),
    "partial_update": Action(
        "patch", lambda c: detail_url(c.target), lambda c: {"title": NEW_TITLE}, report_patched
    ),
    "destroy": Action("delete", lambda c: detail_url(c.target), effect=report_deleted),
    "transition": Action(
        "post",
        lambda c: transition_url(c.target),
        lambda c: {"status": next_status(c.target)},
        report_moved,
    ),
    "history": Action("get", lambda c: history_url(c.target)),
    "comments_list": Action("get", lambda c: comments_url(c.target)),
    "comments_create": Action(
        "post", lambda c: comments_url(c.target), lambda c: {"body": COMMENT_BODY}, comment_added
    ),
    "attachments_list": Action("get", lambda c: attachments_url(c.target)),
    "attachments_create": Action(
        "post", lambda c: attachments_url(c.target), photo_payload, photo_added, "multipart"
    ),
    "attachment_destroy": Action(
        "delete", lambda c: attachment_url(c.target), effect=photo_removed
    ),
}

ENDPOINT_ACTIONS = {
    "list": Action("get", lambda c: reverse("signalement-list")),
    "create": Action(
        "post", lambda c: reverse("signalement-list"), new_report_payload, report_created
    ),
    "category_list": Action("get", lambda c: reverse("category-list")),
    "category_create": Action(
        "post",
        lambda c: reverse("category-list"),
        lambda c: {"code": "mobilier-urbain", "name": "Mobilier urbain"},
        category_created,
    ),
    "category_retrieve": Action("get", lambda c: reverse("category-detail", args=["graffiti"])),
    "category_update": Action(
        "put",
        lambda c: reverse("category-detail", args=["graffiti"]),
        category_payload,
        category_renamed,
    ),
    "category_partial_update": Action(
        "patch",
        lambda c: reverse("category-detail", args=["graffiti"]),
        lambda c: {"name": "Tags et graffitis"},
        category_renamed,
    ),
    "category_destroy": Action(
        "delete", lambda c: reverse("category-detail", args=["graffiti"]), effect=category_deleted
    ),
    "token_create": Action(
        "post",
        lambda c: reverse("auth-token"),
        lambda c: {"username": "citizen", "password": PASSWORD},
        token_given,
    ),
    "token_destroy": Action("delete", lambda c: reverse("auth-token"), effect=token_revoked),
    "me": Action("get", lambda c: reverse("me")),
}


# --- The matrix ----------------------------------------------------------------------

# Expected status of each action on a report, per role and target.
# fmt: off
# Credentials are checked before the report is looked up: without them a write is a
# 401 whatever the id (hidden, missing or visible), and a reporter's transition is a 403
# whatever the id. Neither reveals whether a hidden report exists.
REPORT_MATRIX = {
    #                          public  hidden  own_new  own_acknowledged
    "anonymous": {
        "retrieve":            (200,    404,    200,     200),
        "update":              (401,    401,    401,     401),
        "partial_update":      (401,    401,    401,     401),
        "destroy":             (401,    401,    401,     401),
        "transition":          (401,    401,    401,     401),
        "history":             (200,    404,    200,     200),
        "comments_list":       (200,    404,    200,     200),
        "comments_create":     (401,    401,    401,     401),
        "attachments_list":    (200,    404,    200,     200),
        "attachments_create":  (401,    401,    401,     401),
        "attachment_destroy":  (401,    401,    401,     401),
    },
    "reporter": {
        "retrieve":            (200,    404,    200,     200),
        "update":              (403,    404,    200,     403),
        "partial_update":      (403,    404,    200,     403),
        "destroy":             (403,    404,    403,     403),
        "transition":          (403,    403,    403,     403),
        "history":             (200,    404,    200,     200),
        "comments_list":       (200,    404,    200,     200),
        "comments_create":     (403,    404,    201,     201),
        "attachments_list":    (200,    404,    200,     200),
        "attachments_create":  (403,    404,    201,     403),
        "attachment_destroy":  (403,    404,    204,     403),
    },
    "agent": {
        "retrieve":            (200,    200,    200,     200),
        "update":              (200,    200,    200,     200),
        "partial_update":      (200,    200,    200,     200),
        "destroy":             (403,    403,    403,     403),
        "transition":          (200,    200,    200,     200),
        "history":             (200,    200,    200,     200),
        "comments_list":       (200,    200,    200,     200),
        "comments_create":     (201,    201,    201,     201),
        "attachments_list":    (200,    200,    200,     200),
        "attachments_create":  (201,    201,    201,     201),
        "attachment_destroy":  (204,    204,    204,     204),
    },
    "admin": {
        "retrieve":            (200,    200,    200,     200),
        "update":              (200,    200,    200,     200),
        "partial_update":      (200,    200,    200,     200),
        "destroy":             (204,    204,    204,     204),
        "transition":          (200,    200,    200,     200),
        "history":             (200,    200,    200,     200),
        "comments_list":       (200,    200,    200,     200),
        "comments_create":     (201,    201,    201,     201),
        "attachments_list":    (200,    200,    200,     200),
        "attachments_create":  (201,    201,    201,     201),
        "attachment_destroy":  (204,    204,    204,     204),
    },
}

# Expected status of each action not about one report, per role.
ENDPOINT_MATRIX = {
    #                              anonymous  reporter  agent  admin
    "list":                        (200,       200,      200,   200),
    "create":                      (201,       201,      201,   201),
    "category_list":               (200,       200,      200,   200),
    "category_create":             (401,       403,      403,   201),
    "category_retrieve":           (200,       200,      200,   200),
    "category_update":             (401,       403,      403,   200),
    "category_partial_update":     (401,       403,      403,   200),
    "category_destroy":            (401,       403,      403,   204),
    "token_create":                (200,       200,      200,   200),
    "token_destroy":               (401,       204,      204,   204),
    "me":                          (401,       200,      200,   200),
}
# fmt: on


def matrix_cases():
    for role, actions in REPORT_MATRIX.items():
        for action, statuses in actions.items():
            for target, expected in zip(TARGETS, statuses, strict=True):
                yield pytest.param(role, action, target, expected, id=f"{role}-{action}-{target}")
    for action, statuses in ENDPOINT_MATRIX.items():
        for role, expected in zip(ROLES, statuses, strict=True):
            yield pytest.param(role, action, None, expected, id=f"{role}-{action}")


def test_the_matrices_cover_every_role_action_and_target():
    assert set(REPORT_MATRIX) == set(ROLES)
    for actions in REPORT_MATRIX.values():
        assert set(actions) == set(REPORT_ACTIONS)
    assert set(ENDPOINT_MATRIX) == set(ENDPOINT_ACTIONS)


@pytest.mark.parametrize("role, action_name, target_name, expected", list(matrix_cases()))
def test_permission_matrix(world, clients, role, action_name, target_name, expected):
    target = world.reports[target_name] if target_name else None
    action = (REPORT_ACTIONS if target_name else ENDPOINT_ACTIONS)[action_name]
    call = Call(world=world, role=role, target=target)
    before = db_state()

    kwargs = {"format": action.format}
    if action.payload is not None:
        kwargs["data"] = action.payload(call)
    response = getattr(clients[role], action.method)(action.url(call), **kwargs)

    assert response.status_code == expected, response.content
    if expected == 401:
        assert response["WWW-Authenticate"] == "Token"
    if expected >= 400 or action.method == "get":
        assert db_state() == before
    else:
        action.effect(call, response)


# --- Visibility ----------------------------------------------------------------------

VISIBLE_TARGETS = {
    "anonymous": {"public", "own_new", "own_acknowledged"},
    "reporter": {"public", "own_new", "own_acknowledged"},
    "agent": set(TARGETS),
    "admin": set(TARGETS),
}


@pytest.mark.parametrize("role", ROLES)
def test_the_list_holds_exactly_the_reports_the_caller_may_see(world, clients, role):
    listed = {
        item["id"] for item in clients[role].get(reverse("signalement-list")).json()["results"]
    }

    assert listed == {world.reports[name].pk for name in VISIBLE_TARGETS[role]}


def test_a_reporter_sees_and_edits_their_own_hidden_report_which_others_cannot_see(
    world, clients, reporter
):
    own_hidden = SignalementFactory(reporter=reporter, is_public=False, category=world.category)
    neighbour = APIClient()
    neighbour.force_authenticate(world.neighbour)
    list_url = reverse("signalement-list")

    assert clients["reporter"].get(detail_url(own_hidden)).status_code == 200
    listed = {item["id"] for item in clients["reporter"].get(list_url).json()["results"]}
    assert own_hidden.pk in listed
    patched = clients["reporter"].patch(detail_url(own_hidden), {"title": NEW_TITLE})
    assert patched.status_code == 200
    assert Signalement.objects.get(pk=own_hidden.pk).title == NEW_TITLE

    before = db_state()
    for client in (clients["anonymous"], neighbour):
        assert client.get(detail_url(own_hidden)).status_code == 404
        assert own_hidden.pk not in {item["id"] for item in client.get(list_url).json()["results"]}
    assert neighbour.patch(detail_url(own_hidden), {"title": "Piraté"}).status_code == 404
    assert neighbour.post(comments_url(own_hidden), {"body": "Piraté"}).status_code == 404
    assert db_state() == before


@pytest.mark.parametrize("role", ["anonymous", "reporter"])
def test_a_report_that_does_not_exist_and_a_hidden_one_look_alike(world, clients, role):
    hidden = world.reports["hidden"]
    missing_pk = Signalement.objects.order_by("-pk").first().pk + 1000

    for url_for in (detail_url, history_url, comments_url):
        hidden_response = clients[role].get(url_for(hidden))
        missing_response = clients[role].get(url_for(Signalement(pk=missing_pk)))
        assert hidden_response.status_code == missing_response.status_code == 404
        assert hidden_response.json() == missing_response.json()


# --- What a reporter may write -------------------------------------------------------


def test_a_reporter_edits_the_descriptive_fields_of_their_own_new_report(world, clients):
    report = world.reports["own_new"]
    other_category = CategoryFactory(code="voirie", name="Voirie")
    payload = {
        "description": NEW_DESCRIPTION,
        "title": NEW_TITLE,
        "latitude": 48.117,
        "longitude": -1.677,
        "address": "Rue de Saint-Malo, 35000 Rennes",
        "category": other_category.code,
    }

    response = clients["reporter"].patch(detail_url(report), payload)

    assert response.status_code == 200, response.json()
    stored = Signalement.objects.get(pk=report.pk)
    assert stored.description == NEW_DESCRIPTION
    assert stored.title == NEW_TITLE
    assert (str(stored.latitude), str(stored.longitude)) == ("48.117000", "-1.677000")
    assert stored.address == "Rue de Saint-Malo, 35000 Rennes"
    assert stored.category == other_category


TRIAGE_COLUMNS = ("status", "priority", "is_public", "assigned_to_id", "duplicate_of_id")


def triage_columns(report):
    return Signalement.objects.filter(pk=report.pk).values(*TRIAGE_COLUMNS).get()


def test_a_reporter_cannot_set_triage_fields_on_their_own_report(world, clients, agent_user):
    report = world.reports["own_new"]
    before = triage_columns(report)

    response = clients["reporter"].patch(
        detail_url(report),
        {
            "status": "resolved",
            "priority": "urgent",
            "is_public": False,
            "assigned_to": "agent",
            "duplicate_of": world.reports["public"].pk,
        },
    )

    assert response.status_code == 200, response.json()
    assert triage_columns(report) == before
    body = response.json()
    assert (body["status"], body["priority"], body["is_public"]) == ("new", "normal", True)
    assert body["duplicate_of"] is None
    assert "assigned_to" not in body


@pytest.mark.parametrize("role", ["anonymous", "reporter"])
def test_triage_fields_sent_with_a_new_report_by_a_non_agent_are_ignored(
    world, clients, agent_user, role
):
    payload = {
        "description": "Un nid-de-poule sur la voie de droite.",
        "date": "2025-04-29T16:30:00",
        "status": "resolved",
        "priority": "urgent",
        "is_public": False,
        "assigned_to": "agent",
        "duplicate_of": world.reports["public"].pk,
    }

    response = clients[role].post(reverse("signalement-list"), payload)

    assert response.status_code == 201, response.json()
    created = Signalement.objects.get(pk=response.json()["id"])
    assert triage_columns(created) == {
        "status": "new",
        "priority": "normal",
        "is_public": True,
        "assigned_to_id": None,
        "duplicate_of_id": None,
    }


def test_a_reporter_cannot_write_an_internal_note(world, clients):
    before = db_state()

    response = clients["reporter"].post(
        comments_url(world.reports["own_new"]), {"body": COMMENT_BODY, "is_internal": True}
    )

    assert response.status_code == 400
    assert error_attrs(response) == {"is_internal"}
    assert db_state() == before


# --- What agents may write -----------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "admin"])
def test_agents_set_triage_fields_but_never_the_status_by_a_plain_write(world, clients, role):
    report = world.reports["public"]
    original = world.reports["hidden"]

    response = clients[role].patch(
        detail_url(report),
        {
            "status": "resolved",
            "priority": "urgent",
            "is_public": False,
            "assigned_to": "agent",
            "duplicate_of": original.pk,
        },
    )

    assert response.status_code == 200, response.json()
    stored = Signalement.objects.get(pk=report.pk)
    assert stored.priority == Priority.URGENT
    assert stored.is_public is False
    assert stored.assigned_to == world.users["agent"]
    assert stored.duplicate_of == original
    assert stored.status == Status.NEW
    assert response.json()["status"] == "new"


@pytest.mark.parametrize("role", ["agent", "admin"])
def test_the_status_changes_through_the_transition_endpoint(world, clients, role):
    report = world.reports["public"]

    response = clients[role].post(transition_url(report), {"status": "acknowledged"})

    assert response.status_code == 200, response.json()
    assert Signalement.objects.get(pk=report.pk).status == Status.ACKNOWLEDGED


@pytest.mark.parametrize("username", ["citizen", "voisin", "nobody"])
def test_a_report_is_assigned_to_agents_only(world, clients, username):
    before = db_state()

    response = clients["agent"].patch(
        detail_url(world.reports["public"]), {"assigned_to": username}
    )

    assert response.status_code == 400
    assert error_attrs(response) == {"assigned_to"}
    assert db_state() == before


def test_a_report_cannot_be_a_duplicate_of_itself(world, clients):
    report = world.reports["public"]
    before = db_state()

    response = clients["agent"].patch(detail_url(report), {"duplicate_of": report.pk})

    assert response.status_code == 400
    assert error_attrs(response) == {"duplicate_of"}
    assert db_state() == before


@pytest.mark.parametrize("role", ["agent", "admin"])
@pytest.mark.parametrize("is_internal", [True, False])
def test_agents_write_internal_notes_and_public_updates(world, clients, role, is_internal):
    report = world.reports["hidden"]

    response = clients[role].post(
        comments_url(report), {"body": COMMENT_BODY, "is_internal": is_internal}
    )

    assert response.status_code == 201, response.json()
    comment = Comment.objects.get(pk=response.json()["id"])
    assert comment.is_internal is is_internal
    assert comment.author_role == "agent"
    assert comment.signalement_id == report.pk


# --- Private fields, internal notes, history -----------------------------------------

REPORTS_WITH_PRIVATE_FIELDS = {
    "anonymous": set(),
    "reporter": {"own_new", "own_acknowledged"},
    "agent": set(TARGETS),
    "admin": set(TARGETS),
}


@pytest.mark.parametrize("role", ROLES)
def test_contact_fields_are_shown_only_to_agents_and_to_the_reports_reporter(world, clients, role):
    client = clients[role]
    listed = {
        item["id"]: item for item in client.get(reverse("signalement-list")).json()["results"]
    }

    for name in VISIBLE_TARGETS[role]:
        report = world.reports[name]
        detail = client.get(detail_url(report)).json()
        for representation in (listed[report.pk], detail):
            if name in REPORTS_WITH_PRIVATE_FIELDS[role]:
                assert representation["contact_email"] == "camille@example.org"
                assert representation["contact_name"] == "Camille Martin"
                assert representation["contact_phone"] == "06 12 34 56 78"
            else:
                assert PRIVATE_FIELDS.isdisjoint(representation), (name, representation)


@pytest.mark.parametrize(
    "role, shows_contact",
    [("anonymous", False), ("reporter", True), ("agent", True), ("admin", True)],
)
def test_contact_fields_in_the_create_response_go_only_to_their_reporter_and_agents(
    world, clients, role, shows_contact
):
    payload = {
        "description": "Un nid-de-poule sur la voie de droite.",
        "date": "2025-04-29T16:30:00",
        "contact_name": "Léa Robert",
        "contact_email": "lea@example.org",
        "contact_phone": "06 00 00 00 00",
    }

    response = clients[role].post(reverse("signalement-list"), payload)

    assert response.status_code == 201, response.json()
    body = response.json()
    if shows_contact:
        assert {name: body[name] for name in PRIVATE_FIELDS} == {
            name: payload[name] for name in PRIVATE_FIELDS
        }
    else:
        assert PRIVATE_FIELDS.isdisjoint(body)
    assert Signalement.objects.get(pk=body["id"]).contact_email == "lea@example.org"


@pytest.mark.parametrize(
    "role, target, sees_internal",
    [
        ("anonymous", "public", False),
        ("reporter", "public", False),  # someone else's report
        ("reporter", "own_new", False),  # their own report
        ("agent", "public", True),
        ("agent", "hidden", True),
        ("admin", "own_new", True),
    ],
)
def test_internal_notes_are_returned_to_agents_only(world, clients, role, target, sees_internal):
    report = world.reports[target]
    agent = world.users["agent"]
    Comment.objects.create(
        signalement=report, author=agent, author_role="agent", body="Mise à jour publique"
    )
    Comment.objects.create(
        signalement=report, author=agent, author_role="agent", body="Note interne", is_internal=True
    )

    response = clients[role].get(comments_url(report))

    assert response.status_code == 200
    bodies = [comment["body"] for comment in response.json()]
    if sees_internal:
        assert bodies == ["Mise à jour publique", "Note interne"]
    else:
        assert bodies == ["Mise à jour publique"]
        assert all(comment["is_internal"] is False for comment in response.json())


@pytest.mark.parametrize("role", ROLES)
def test_the_history_shows_non_agents_only_status_changes_without_names(world, clients, role):
    report = world.reports["own_new"]
    clients["agent"].patch(detail_url(report), {"priority": "high", "title": NEW_TITLE})
    clients["agent"].post(transition_url(report), {"status": "acknowledged", "note": "Vu."})

    response = clients[role].get(history_url(report))

    assert response.status_code == 200
    entries = response.json()
    changes = [(c["field"], c["old"], c["new"]) for e in entries for c in e["changes"]]
    assert ("status", "new", "acknowledged") in changes
    if role in ("agent", "admin"):
        assert ("priority", "normal", "high") in changes
        assert {entry["by"] for entry in entries if entry["kind"] == "changed"} == {"agent"}
    else:
        assert {field for field, _, _ in changes} == {"status"}
        assert all(entry["by"] is None for entry in entries)
        assert "Vu." in [entry["note"] for entry in entries]


# --- Tokens and /api/me/ -------------------------------------------------------------


@pytest.mark.parametrize("role", ["reporter", "agent", "admin"])
def test_me_names_the_callers_role(world, clients, role):
    response = clients[role].get(reverse("me"))

    assert response.status_code == 200
    assert response.json()["role"] == role
    assert response.json()["username"] == world.users[role].username


def test_a_real_token_carries_the_reporters_rights_until_it_is_revoked(world):
    client = APIClient()
    token = client.post(
        reverse("auth-token"), {"username": "citizen", "password": PASSWORD}, format="json"
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    own, hidden = world.reports["own_new"], world.reports["hidden"]

    assert client.get(reverse("me")).json()["role"] == "reporter"
    assert client.patch(detail_url(own), {"title": NEW_TITLE}, format="json").status_code == 200
    assert client.get(detail_url(hidden)).status_code == 404
    assert client.delete(detail_url(own)).status_code == 403

    assert client.delete(reverse("auth-token")).status_code == 204
    assert client.get(reverse("me")).status_code == 401
    assert client.patch(detail_url(own), {"title": "Trop tard"}, format="json").status_code == 401
    assert Signalement.objects.get(pk=own.pk).title == NEW_TITLE
