from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from signalements.models import Category, Signalement

pytestmark = pytest.mark.django_db


def test_demo_data_loads_once_and_prints_the_admin_login():
    first, second = StringIO(), StringIO()

    call_command("load_demo_data", stdout=first)
    call_command("load_demo_data", stdout=second)

    assert Category.objects.count() == 7
    assert Signalement.objects.count() == 50
    assert Signalement.objects.filter(latitude__isnull=False).count() == 50
    assert len(set(Signalement.objects.values_list("status", flat=True))) == 5
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("signalements")
    assert "username=admin  password=signalements" in first.getvalue()
    assert "none added" in second.getvalue()
    assert "password=signalements" in second.getvalue()
