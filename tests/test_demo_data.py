from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from signalements.models import Category, ExtraField, Signalement
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
