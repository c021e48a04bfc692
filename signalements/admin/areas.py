"""Areas in the back office: districts, neighbourhoods… that routing rules and the
`?area=` filter name. Usually imported from a GeoJSON file (`manage.py import_areas`);
here they are listed, searched, and corrected: the shape is GeoJSON text, checked on
save (`Area.clean()`, the same rule as the import and the API), and drawn on a map that
follows the text as it is typed (`area-map.js`), with the other areas of the same kind
in grey, so that an overlap or a gap shows. Saving a new shape (or (de)activating an
area) recomputes the areas of the reports around it in the background
(`areas.reassign_later`)."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from signalements import areas
from signalements.models import Area
from signalements.tasks import enqueue_on_commit

from .workflow import map_settings

# Other areas of the same kind drawn (in grey) behind the one edited, at most.
NEIGHBOURS_SHOWN = 200


class GeometryField(forms.JSONField):
    """The geometry as GeoJSON text. A whole Feature, or a FeatureCollection of one, may
    be pasted (what drawing tools such as geojson.io copy): its geometry is kept. Whether
    it is a valid polygon is the model's rule (`Area.clean()`), reported on this field."""

    widget = forms.Textarea(attrs={"rows": 8, "cols": 90, "spellcheck": "false"})

    default_error_messages = {"not_json": _("Enter a valid JSON.")}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # The model's errors on this field have the code "invalid" too: a form field's
        # message of the same code would replace them (`ModelForm._update_errors`).
        self.error_messages.pop("invalid", None)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValidationError(self.error_messages["not_json"], code="not_json") from None
        if isinstance(value, dict) and value.get("type") == "FeatureCollection":
            features = value.get("features")
            if isinstance(features, list) and len(features) == 1:
                value = features[0]
        if isinstance(value, dict) and value.get("type") == "Feature":
            value = value.get("geometry")
        return value


class AreaForm(forms.ModelForm):
    geometry = GeometryField(
        label=capfirst(_("geometry")),
        help_text=_(
            "A GeoJSON Polygon or MultiPolygon, [longitude, latitude] in WGS84 (a Feature "
            "is accepted too). The map follows the text."
        ),
    )

    class Meta:
        model = Area
        fields = ["name", "code", "kind", "is_active", "geometry"]


@admin.register(Area)
class AreaAdmin(SimpleHistoryAdmin):
    form = AreaForm
    list_display = ["code", "name", "kind", "is_active", "report_count", "updated_at"]
    list_display_links = ["code", "name"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name"]
    prepopulated_fields = {"code": ["name"]}
    ordering = ["kind", "name", "id"]
    readonly_fields = ["shape_map", "bounding_box", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "code", "kind", "is_active"]}),
        (_("Shape"), {"fields": ["shape_map", "geometry"]}),
        (
            _("Record"),
            {"fields": ["bounding_box", "created_at", "updated_at"], "classes": ["collapse"]},
        ),
    ]

    class Media:
        # Leaflet, from our static files, and the shape's map (`area-map.js`).
        css = {
            "all": ["signalements/vendor/leaflet/leaflet.css", "signalements/admin/area-map.css"]
        }
        js = ["signalements/vendor/leaflet/leaflet.js", "signalements/admin/area-map.js"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("_changelist"):
            # The list does not need the shapes, which may be large.
            queryset = queryset.defer("geometry").annotate(report_count=Count("signalements"))
        return queryset

    @admin.display(description=_("reports"), ordering="report_count")
    def report_count(self, area):
        return getattr(area, "report_count", None)

    @admin.display(description=_("bounding box"))
    def bounding_box(self, area):
        if area is None or area.pk is None:
            return "—"
        return (
            f"{area.min_longitude}, {area.min_latitude} — {area.max_longitude}, {area.max_latitude}"
        )

    @admin.display(description=_("map"))
    def shape_map(self, area):
        """The map's element, the other areas of the same kind as data (the edited
        shape is read from the geometry's text by the script)."""
        others = Area.objects.filter(is_active=True)
        if area is not None and area.pk is not None:
            others = others.filter(kind=area.kind).exclude(pk=area.pk)
        else:
            others = others.filter(kind=Area._meta.get_field("kind").default)
        neighbours = [
            {"name": name, "geometry": geometry}
            for name, geometry in others.order_by("name", "id").values_list("name", "geometry")[
                :NEIGHBOURS_SHOWN
            ]
        ]
        tiles = map_settings()
        return format_html(
            '<div id="area-map" class="sig-map" data-tiles="{}" data-attribution="{}" '
            'data-neighbours="{}" data-unreadable="{}" role="img" aria-label="{}"></div>'
            '<p class="sig-map-coordinates" id="area-map-status" aria-live="polite"></p>',
            tiles["tiles"],
            tiles["attribution"],
            json.dumps(neighbours, separators=(",", ":"), ensure_ascii=False),
            _(
                "The text is not GeoJSON that can be drawn (yet): the map shows the last shape that could."
            ),
            _("Map of the area"),
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change or {"geometry", "is_active"} & set(form.changed_data):
            enqueue_on_commit(areas.reassign_later, [obj.pk])
            messages.info(
                request,
                _("The areas of the reports around “%(name)s” are being recomputed.")
                % {"name": obj.name},
            )
