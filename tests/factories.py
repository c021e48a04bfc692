import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from signalements.models import Attachment, Category, ExtraField, Signalement


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    password = factory.django.Password("correct horse battery staple")


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"categorie-{n}")
    name = factory.Sequence(lambda n: f"Catégorie {n}")
    group = "Voirie et espace public"


class SignalementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Signalement

    title = "Lampadaire éteint"
    description = factory.Sequence(lambda n: f"Le lampadaire n°{n} est éteint depuis hier soir.")
    date = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=2))
    category = factory.SubFactory(CategoryFactory)
    latitude = Decimal("48.111000")
    longitude = Decimal("-1.680000")
    address = "Place Sainte-Anne, 35000 Rennes"
    contact_name = "Camille Martin"
    contact_email = "camille@example.org"
    contact_phone = "06 12 34 56 78"


class ExtraFieldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExtraField

    category = factory.SubFactory(CategoryFactory)
    code = factory.Sequence(lambda n: f"champ_{n}")
    label = factory.LazyAttribute(lambda field: field.code.replace("_", " ").capitalize())
    datatype = "string"


class AttachmentFactory(factory.django.DjangoModelFactory):
    """A photo's row, without its files: for tests that read rows, not images."""

    class Meta:
        model = Attachment

    signalement = factory.SubFactory(SignalementFactory)
    file = factory.Sequence(lambda n: f"photos/{n}.jpg")
    thumbnail = factory.Sequence(lambda n: f"thumbnails/{n}.jpg")
    content_type = "image/jpeg"
    size = 1000
    width = 64
    height = 48


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "signalements.Department"
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"department-{n}")
    name = factory.Sequence(lambda n: f"Department {n}")


def square(west: float, south: float, east: float, north: float) -> dict:
    """A GeoJSON Polygon: the box between these longitudes and latitudes."""
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


class AreaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "signalements.Area"
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"area-{n}")
    name = factory.Sequence(lambda n: f"Area {n}")
    kind = "district"
    geometry = factory.LazyFunction(lambda: square(-1.70, 48.10, -1.66, 48.13))
