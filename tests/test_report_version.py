"""A report's version (`Signalement.version`, migration 0011's triggers): one more at
every write of the report or of its photos, whoever writes, and never back."""

import pytest
from django.db import connection

from signalements.models import Attachment, Signalement

from .factories import AttachmentFactory, SignalementFactory

pytestmark = pytest.mark.django_db


def version_of(report) -> int:
    return Signalement.objects.values_list("version", flat=True).get(pk=report.pk)


def test_a_new_report_is_at_version_1():
    assert version_of(SignalementFactory()) == 1


def test_every_kind_of_write_bumps_it():
    report = SignalementFactory()
    report.title = "Rue de Brest"
    report.save()
    assert version_of(report) == 2
    Signalement.objects.filter(pk=report.pk).update(priority="high")
    assert version_of(report) == 3
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE signalements_signalement SET address = %s WHERE id = %s", ["ici", report.pk]
        )
    assert version_of(report) == 4


def test_a_stale_instance_saved_does_not_take_it_back():
    report = SignalementFactory()
    stale = Signalement.objects.get(pk=report.pk)
    Signalement.objects.filter(pk=report.pk).update(priority="high")  # 2
    stale.title = "Écrit sur une copie ancienne"
    stale.save()  # writes version=1 from memory: the database makes it 3
    assert version_of(report) == 3


def test_adding_or_removing_a_photo_bumps_its_report():
    report, other = SignalementFactory(), SignalementFactory()
    photo = AttachmentFactory(signalement=report)
    assert version_of(report) == 2
    Attachment.objects.filter(pk=photo.pk).update(signalement=other)
    assert (version_of(report), version_of(other)) == (3, 2)
    Attachment.objects.filter(pk=photo.pk).delete()
    assert version_of(other) == 3
    assert version_of(report) == 3  # the other report's photo: not this one


def test_other_reports_keep_their_version():
    first, second = SignalementFactory(), SignalementFactory()
    first.title = "Changé"
    first.save()
    assert version_of(second) == 1


def test_every_write_counting_trigger_exists_after_the_migrations():
    """SQLite rebuilds a table to alter it, without its triggers: they are made again
    after every migrate (signalements/triggers.py, apps.py)."""
    from signalements import triggers

    assert triggers.names(connection.vendor) <= triggers.existing(connection)


def test_installing_the_triggers_again_changes_nothing():
    from signalements import triggers

    before = triggers.existing(connection)
    triggers.install(connection)
    assert triggers.existing(connection) == before
    report = SignalementFactory()
    Signalement.objects.filter(pk=report.pk).update(title="Une fois")
    assert version_of(report) == 2  # one bump, not two
