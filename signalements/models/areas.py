"""Areas: districts, neighbourhoods… as GeoJSON polygons. A report's areas are those
that contain its location (`signalements/areas.py` computes them with shapely, alike on
SQLite and PostgreSQL); the bounding box columns let the database prefilter."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords


class Area(models.Model):
    """A named polygon (or several) on the map."""

    code = models.SlugField(
        _("code"),
        max_length=64,
        unique=True,
        help_text=_("Stable identifier, used by `?area=` and the routing rules."),
    )
    name = models.CharField(_("name"), max_length=120)
    kind = models.SlugField(
        _("kind"),
        max_length=40,
        default="district",
        help_text=_("What sort of area it is: district, neighbourhood…"),
    )
    geometry = models.JSONField(
        _("geometry"),
        help_text=_("A GeoJSON Polygon or MultiPolygon, in WGS84 longitude/latitude."),
    )
    # The geometry's bounding box, kept by `save()`: candidates for a point are found by
    # the database, then tested by shapely.
    min_longitude = models.FloatField(_("west"), editable=False, default=0)
    min_latitude = models.FloatField(_("south"), editable=False, default=0)
    max_longitude = models.FloatField(_("east"), editable=False, default=0)
    max_latitude = models.FloatField(_("north"), editable=False, default=0)
    is_active = models.BooleanField(pgettext_lazy("area", "active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at", "geometry"])

    class Meta:
        verbose_name = _("area")
        verbose_name_plural = _("areas")
        ordering = ["kind", "name", "id"]
        indexes = [
            models.Index(
                fields=["min_latitude", "max_latitude", "min_longitude", "max_longitude"],
                name="area_bbox_idx",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        from ..areas import geometry_problem

        problem = geometry_problem(self.geometry)
        if problem:
            raise ValidationError({"geometry": ValidationError(problem, code="invalid")})

    def save(self, *args, **kwargs):
        from ..areas import bounds

        self.min_longitude, self.min_latitude, self.max_longitude, self.max_latitude = bounds(
            self.geometry
        )
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "geometry" in update_fields:
            kwargs["update_fields"] = {
                *update_fields,
                "min_longitude",
                "min_latitude",
                "max_longitude",
                "max_latitude",
            }
        super().save(*args, **kwargs)
