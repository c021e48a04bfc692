from io import StringIO
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from signalements.management.commands.load_demo_data import DEMO_OPEN311_KEY
from signalements.models import ApiKey, Category, ExtraField, Signalement
from signalements.roles import role_of

pytestmark = pytest.mark.django_db


def test_demo_data_loads_once_and_prints_the_logins(mailoutbox, django_capture_on_commit_callbacks):
    first, second = StringIO(), StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo_data", stdout=first)
    call_command("load_demo_data", stdout=second)

    assert Category.objects.count() == 7
    lamp_state = ExtraField.objects.get(category__code="eclairage-public", code="lamp_state")
    assert lamp_state.datatype == "singlevaluelist" and lamp_state.required
    for report in Signalement.objects.select_related("category"):
        report.full_clean()  # every demo report answers its category's questions
    assert Signalement.objects.count() == 50
    assert Signalement.objects.filter(latitude__isnull=False).count() == 50
    assert len(set(Signalement.objects.values_list("status", flat=True))) == 5
    users = get_user_model().objects
    admin, agent, reporter = (users.get(username=name) for name in ("admin", "agent", "habitant"))
    assert admin.is_superuser and admin.check_password("signalements")
    assert (
        role_of(agent) == "agent"
        and agent.is_staff
        and agent.has_perm("signalements.change_signalement")
    )
    assert role_of(reporter) == "reporter" and not reporter.is_staff
    assert Signalement.objects.filter(reporter=reporter).exists()
    for line in [
        "Demo admin: username=admin  password=signalements",
        "Demo agent: username=agent  password=signalements",
        "Demo reporter: username=habitant  password=signalements",
    ]:
        assert line in first.getvalue()
        assert line in second.getvalue()
    assert "none added" in second.getvalue()
    assert mailoutbox == []  # the demo's status changes email nobody
    assert all(
        email.isascii() for email in Signalement.objects.values_list("contact_email", flat=True)
    )


def demo_open311_create(client):
    return client.post(
        "/open311/v2/requests.json",
        urlencode(
            {
                "api_key": DEMO_OPEN311_KEY,
                "service_code": "voirie",
                "lat": "48.1147",
                "long": "-1.6801",
                "description": "Nid-de-poule devant l'arrêt de bus.",
            }
        ),
        content_type="application/x-www-form-urlencoded",
    )


def test_demo_data_has_one_open311_key_that_works_and_is_printed(client):
    first, second = StringIO(), StringIO()

    call_command("load_demo_data", stdout=first)
    call_command("load_demo_data", stdout=second)

    api_key = ApiKey.objects.get()  # one key, not one per run
    assert api_key.is_usable() and api_key.prefix == DEMO_OPEN311_KEY[: ApiKey.PREFIX_LENGTH]
    assert DEMO_OPEN311_KEY not in api_key.key_hash  # stored hashed, as any key
    for output in (first, second):
        assert f"Demo Open311 API key: {DEMO_OPEN311_KEY}" in output.getvalue()
    response = demo_open311_create(client)
    assert response.status_code == 200, response.content
    [created] = response.json()
    report = Signalement.objects.latest("id")
    assert created["service_request_id"] == report.reference
    assert report.api_key == api_key and report.category.code == "voirie"


def test_a_revoked_demo_key_stays_revoked(client):
    call_command("load_demo_data", stdout=StringIO())
    ApiKey.objects.update(is_active=False, revoked_at=timezone.now())
    output = StringIO()

    call_command("load_demo_data", stdout=output)

    assert ApiKey.objects.get().is_active is False
    assert "Demo Open311 API key: (revoked since the demo created it)" in output.getvalue()
    assert DEMO_OPEN311_KEY not in output.getvalue()
    assert demo_open311_create(client).status_code == 403
