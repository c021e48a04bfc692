"""Departments, areas, routing rules, service levels and reply templates, as the REST API
shows and takes them (`api/views/routing.py`)."""

from django.contrib.auth import get_user_model
from django.core.validators import slug_re
from django.db.models import Q
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from signalements import areas as area_shapes
from signalements import routing
from signalements.models import (
    AGENTS_GROUP,
    Area,
    Category,
    Department,
    ReplyTemplate,
    RoutingRule,
    ServiceLevel,
)
from signalements.validation import (
    USERNAME_RE,
    SafeSlugRelatedField,
    StrictSlugField,
    TextSafeUniqueValidator,
    ValidatedModelSerializer,
)


def codes_of(model, **kwargs) -> SafeSlugRelatedField:
    return SafeSlugRelatedField(
        pattern=slug_re, slug_field="code", queryset=model.objects.all(), **kwargs
    )


def unique_code(model, help_text: str) -> StrictSlugField:
    return StrictSlugField(
        max_length=64,
        validators=[TextSafeUniqueValidator(queryset=model.objects.all())],
        help_text=help_text,
    )


class DepartmentSerializer(ValidatedModelSerializer):
    """A department as everyone reads it: its code and name."""

    code = unique_code(Department, "Stable identifier, used by `?department=` and the rules.")

    class Meta:
        model = Department
        fields = ["code", "name", "is_active"]


class StaffDepartmentSerializer(DepartmentSerializer):
    """For agents and admins: its address and its members (agents' usernames) too."""

    members = SafeSlugRelatedField(
        pattern=USERNAME_RE,
        slug_field="username",
        many=True,
        required=False,
        queryset=get_user_model()
        .objects.filter(Q(groups__name=AGENTS_GROUP) | Q(is_superuser=True))
        .distinct(),
        help_text="Usernames of the agents of the department.",
    )

    class Meta(DepartmentSerializer.Meta):
        fields = ["code", "name", "email", "is_active", "members"]


@extend_schema_field(
    {
        "type": "object",
        "description": "A GeoJSON geometry: `Polygon` or `MultiPolygon`, "
        "[longitude, latitude] in WGS84 degrees.",
        "properties": {
            "type": {"type": "string", "enum": list(area_shapes.GEOMETRY_TYPES)},
            "coordinates": {"type": "array", "items": {}},
        },
        "required": ["type", "coordinates"],
    }
)
class GeometryField(serializers.JSONField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        problem = area_shapes.geometry_problem(value)
        if problem:
            raise serializers.ValidationError(problem, code="invalid_geometry")
        return value


class AreaSerializer(ValidatedModelSerializer):
    code = unique_code(Area, "Stable identifier, used by `?area=` and the routing rules.")
    kind = StrictSlugField(max_length=40, default="district", help_text="district, neighbourhood…")
    geometry = GeometryField()
    bbox = serializers.SerializerMethodField(
        help_text="The geometry's bounding box: [west, south, east, north]."
    )

    class Meta:
        model = Area
        fields = ["code", "name", "kind", "is_active", "geometry", "bbox", "updated_at"]
        read_only_fields = ["updated_at"]

    def get_bbox(self, area) -> list[float]:
        return [area.min_longitude, area.min_latitude, area.max_longitude, area.max_latitude]


class RoutingRuleSerializer(ValidatedModelSerializer):
    categories = codes_of(
        Category,
        many=True,
        required=False,
        help_text="Category codes the rule applies to (empty: any category).",
    )
    areas = codes_of(Area, many=True, required=False, help_text="Area codes (empty: anywhere).")
    department = codes_of(Department, help_text="Code of the department the reports go to.")
    order = serializers.IntegerField(
        min_value=0, max_value=1_000_000, default=0, help_text="Tried from the lowest up."
    )
    extra_field = StrictSlugField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="Code of an extra field whose answer the rule tests (with `extra_value`).",
    )
    description = serializers.SerializerMethodField(
        help_text='The rule in words, as the history records it ("rule 3: Voirie in Nord '
        '→ Voirie Nord").'
    )

    class Meta:
        model = RoutingRule
        fields = [
            "id",
            "order",
            "name",
            "categories",
            "areas",
            "extra_field",
            "extra_value",
            "department",
            "priority",
            "is_active",
            "description",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def get_description(self, rule) -> str:
        return routing.describe(rule)


class ServiceLevelSerializer(ValidatedModelSerializer):
    category = codes_of(Category, help_text="Code of the category.")
    amount = serializers.IntegerField(
        min_value=1, max_value=100_000, help_text="The handling time, in `unit`."
    )

    class Meta:
        model = ServiceLevel
        fields = ["id", "category", "priority", "amount", "unit", "updated_at"]
        read_only_fields = ["id", "updated_at"]
        validators = []  # the unique (category, priority) pair is checked in `validate`

    def validate(self, attrs):
        attrs = super().validate(attrs)
        category = attrs.get("category", getattr(self.instance, "category", None))
        priority = attrs.get("priority", getattr(self.instance, "priority", ""))
        taken = ServiceLevel.objects.filter(category=category, priority=priority)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError(
                {"priority": [_("This category already has a service level for this priority.")]},
                code="unique",
            )
        return attrs


class ReplyTemplateSerializer(ValidatedModelSerializer):
    code = unique_code(ReplyTemplate, "Stable identifier, used by `?template=`.")
    category = codes_of(
        Category,
        required=False,
        allow_null=True,
        help_text="For reports of this category only (null: any).",
    )

    class Meta:
        model = ReplyTemplate
        fields = ["code", "name", "body", "category", "to_status", "is_active", "updated_at"]
        read_only_fields = ["updated_at"]


class RuleTrialSerializer(serializers.Serializer):
    rule = serializers.IntegerField(source="rule.pk", help_text="The rule's id.")
    description = serializers.SerializerMethodField()
    matches = serializers.BooleanField()
    why_not = serializers.CharField(help_text="Why it does not match (empty when it does).")

    def get_description(self, trial) -> str:
        return routing.describe(trial.rule)


class RoutingDryRunSerializer(serializers.Serializer):
    """Where routing would send a report now, and each active rule's verdict."""

    signalement = serializers.IntegerField(help_text="The report's id.")
    areas = serializers.ListField(child=serializers.CharField(), help_text="Its areas' codes.")
    department = serializers.CharField(
        allow_null=True, help_text="The department routing would choose (code), or null."
    )
    priority = serializers.CharField(
        allow_null=True, help_text="The priority the matching rule sets, or null."
    )
    rule = serializers.IntegerField(allow_null=True, help_text="The matching rule's id.")
    reason = serializers.CharField()
    keep_routing = serializers.BooleanField(
        help_text="The report keeps its routing: a change would not apply it."
    )
    current_department = serializers.CharField(allow_null=True)
    rules = RuleTrialSerializer(many=True)


class DryRunQuerySerializer(serializers.Serializer):
    signalement = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="The report's id."
    )


__all__ = [
    "AreaSerializer",
    "DepartmentSerializer",
    "DryRunQuerySerializer",
    "ReplyTemplateSerializer",
    "RoutingDryRunSerializer",
    "RoutingRuleSerializer",
    "ServiceLevelSerializer",
    "StaffDepartmentSerializer",
]
