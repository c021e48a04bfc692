"""The fast representation (signalements/api/representation.py) gives exactly what DRF's own
`Serializer.to_representation` gives, for every serializer that uses it, over reports
that exercise every field: with and without category, location, extra answers,
photos, duplicate, assignee, resolution, old dates, another active time zone."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.utils import timezone
from rest_framework import serializers
from rest_framework.request import Request

from signalements.api.representation import FastRepresentationMixin
from signalements.api.serializers import (
    AttachmentSerializer,
    PublicSignalementSerializer,
    SignalementSerializer,
    SimilarSignalementSerializer,
)
from signalements.models import AGENTS_GROUP, Attachment, Signalement, Status, with_photos

from .factories import (
    AttachmentFactory,
    CategoryFactory,
    ExtraFieldFactory,
    SignalementFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def drf_representation(serializer, instance):
    """What DRF itself gives: its ModelSerializer.to_representation, past the mixin."""
    return serializers.ModelSerializer.to_representation(serializer, instance)


def fast_representation(serializer, instance):
    return FastRepresentationMixin.to_representation(serializer, instance)


@pytest.fixture
def reports():
    category = CategoryFactory(code="voirie")
    ExtraFieldFactory(category=category, code="depth", datatype="number")
    ExtraFieldFactory(
        category=category,
        code="kinds",
        datatype="multivaluelist",
        choices=[{"key": "a", "label": "A"}, {"key": "b", "label": "B"}],
    )
    agent = UserFactory(username="agent-r")
    agent.groups.add(Group.objects.get(name=AGENTS_GROUP))
    full = SignalementFactory(
        category=category,
        extra={"depth": 12.5, "kinds": ["a", "b"]},
        media_url="https://photos.example.org/1.jpg",
        assigned_to=agent,
        priority="urgent",
        status=Status.RESOLVED,
        resolved_at=timezone.now(),
        reporter=UserFactory(),
    )
    bare = SignalementFactory(
        category=None,
        latitude=None,
        longitude=None,
        title="",
        address="",
        contact_name="",
        contact_email="",
        contact_phone="",
        duplicate_of=full,
        is_public=False,
    )
    # Before standard time in Paris (1911): a local offset with seconds, given in UTC.
    old = SignalementFactory(
        date=dt.datetime(1900, 6, 1, 12, 0, tzinfo=dt.UTC),
        latitude=Decimal("-89.999999"),
        longitude=Decimal("179.999999"),
    )
    utc_midnight = SignalementFactory(date=dt.datetime(2025, 1, 1, 0, 0, 0, 123456, dt.UTC))
    for report in (full, old):
        for n in range(2):
            AttachmentFactory(
                signalement=report,
                file=f"photos/{report.pk}-{n}.jpg",
                thumbnail=f"thumbnails/{report.pk}-{n}.jpg",
                size=1000 + n,
            )
    return [full, bare, old, utc_midnight]


def request_as(user=None):
    request = RequestFactory().get("/api/signalements/")
    if user is not None:
        request.user = user
    else:
        from django.contrib.auth.models import AnonymousUser

        request.user = AnonymousUser()
    return Request(request)


@pytest.mark.parametrize("serializer_class", [SignalementSerializer, PublicSignalementSerializer])
@pytest.mark.parametrize("zone", [None, "America/New_York", "UTC"])
@pytest.mark.parametrize("prefetched", [True, False])
def test_reports_read_the_same_as_with_drf(reports, serializer_class, zone, prefetched):
    queryset = Signalement.objects.filter(pk__in=[r.pk for r in reports]).select_related(
        "category", "assigned_to", "duplicate_of"
    )
    if prefetched:
        queryset = with_photos(queryset)
    context = {"request": request_as()}
    with timezone.override(ZoneInfo(zone)) if zone else _nothing():
        serializer = serializer_class(queryset, many=True, context=context).child
        for instance in queryset:
            assert fast_representation(serializer, instance) == drf_representation(
                serializer, instance
            )
            # The whole output, with what the subclass adds or removes, too.
            fast = serializer.to_representation(instance)
            assert set(fast) <= set(serializer.fields)


def test_the_outputs_cover_every_kind_of_value(reports):
    context = {"request": request_as()}
    serializer = SignalementSerializer(context=context)
    full, bare, old, utc_midnight = (fast_representation(serializer, r) for r in reports)
    assert full["category"] == "voirie" and full["assigned_to"] == "agent-r"
    assert full["extra"] == {"depth": 12.5, "kinds": ["a", "b"]}
    assert len(full["attachments"]) == 2 and full["resolved_at"]
    assert bare["duplicate_of"] == reports[0].pk and bare["latitude"] is None
    assert bare["category"] is None and bare["resolved_at"] is None
    assert old["date"] == "1900-06-01T12:00:00Z"
    assert utc_midnight["date"] == "2025-01-01T01:00:00.123456+01:00"
    assert isinstance(full["id"], int) and isinstance(full["uuid"], str)


@pytest.mark.parametrize("zone", [None, "Asia/Kathmandu"])
def test_photos_and_similar_reports_read_the_same_as_with_drf(reports, zone):
    context = {"request": request_as(), "origin": reports[0]}
    with timezone.override(ZoneInfo(zone)) if zone else _nothing():
        for attachment in Attachment.objects.all():
            serializer = AttachmentSerializer(context=context)
            assert fast_representation(serializer, attachment) == drf_representation(
                serializer, attachment
            )
        serializer = SimilarSignalementSerializer(context=context)
        for report in Signalement.objects.filter(latitude__isnull=False):
            assert fast_representation(serializer, report) == drf_representation(serializer, report)


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _model_serializer_classes():
    import inspect

    from signalements import validation
    from signalements.api import serializers as module
    from signalements.open311 import serializers as open311_module

    modules = [validation, module, open311_module]
    for candidate in [value for each in modules for value in vars(each).values()]:
        if (
            inspect.isclass(candidate)
            and issubclass(candidate, serializers.ModelSerializer)
            and hasattr(candidate, "Meta")
            and candidate.__module__.startswith("signalements")
        ):
            yield candidate


@pytest.mark.parametrize("serializer_class", list(_model_serializer_classes()))
def test_cached_fields_are_the_fields_drf_builds(serializer_class):
    """CachedFieldsMixin builds a class's fields once and copies them: the copies are
    what DRF's ModelSerializer.get_fields builds afresh (same classes and arguments),
    and each instance gets its own."""
    fresh = serializers.ModelSerializer.get_fields(serializer_class())
    first, second = serializer_class().get_fields(), serializer_class().get_fields()
    assert list(first) == list(fresh)
    for name, field in fresh.items():
        assert repr(first[name]) == repr(field), name
        assert first[name] is not second[name]
