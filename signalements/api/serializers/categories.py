"""Categories and their extra fields, as the REST API shows and takes them."""

from django.db import transaction
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from signalements.models import Category, ExtraField
from signalements.validation import (
    StrictCharField,
    StrictSlugField,
    TextSafeUniqueValidator,
    ValidatedModelSerializer,
)


class ChoiceSerializer(serializers.Serializer):
    key = StrictCharField(max_length=100)
    label = StrictCharField(max_length=200)


class ExtraFieldSerializer(ValidatedModelSerializer):
    # Explicit bounds: the model's integer range differs between SQLite and PostgreSQL,
    # and the schema must not depend on the database it was generated on.
    order = serializers.IntegerField(min_value=0, max_value=100_000, default=0)
    choices = ChoiceSerializer(
        many=True, required=False, help_text="The allowed values of list types."
    )

    class Meta:
        model = ExtraField
        fields = ["code", "label", "datatype", "required", "description", "order", "choices"]

    def validate(self, attrs):
        attrs["choices"] = [dict(choice) for choice in attrs.get("choices", [])]
        return super().validate(attrs)


class CategorySerializer(ValidatedModelSerializer):
    extra_fields = ExtraFieldSerializer(
        many=True,
        required=False,
        help_text="Questions that reports of this category answer in `extra`, in order. "
        "On update, the list given replaces the category's list.",
    )

    code = StrictSlugField(
        max_length=64,
        validators=[TextSafeUniqueValidator(queryset=Category.objects.all())],
        help_text="Stable identifier used by the API (the Open311 service_code).",
    )

    class Meta:
        model = Category
        fields = ["code", "name", "description", "group", "is_active", "extra_fields"]

    def validate_extra_fields(self, extra_fields):
        # The list replaces the category's list, in a partial update too: each item must
        # be complete (a partial update skips the items' required fields).
        required = [
            name
            for name, field in self.fields["extra_fields"].child.fields.items()
            if field.required
        ]
        missing = [
            {
                name: [ErrorDetail(_("This field is required."), code="required")]
                for name in required
                if name not in item
            }
            for item in extra_fields
        ]
        if any(missing):
            raise serializers.ValidationError(missing)
        codes = [field["code"] for field in extra_fields]
        if len(codes) != len(set(codes)):
            raise serializers.ValidationError(
                _("Extra field codes must be unique within a category."), code="unique"
            )
        return extra_fields

    def validate(self, attrs):
        extra_fields = attrs.pop("extra_fields", None)
        attrs = super().validate(attrs)
        if extra_fields is not None:
            attrs["extra_fields"] = extra_fields
        return attrs

    @transaction.atomic
    def create(self, validated_data):
        extra_fields = validated_data.pop("extra_fields", [])
        category = super().create(validated_data)
        self._replace_extra_fields(category, extra_fields)
        return category

    @transaction.atomic
    def update(self, instance, validated_data):
        extra_fields = validated_data.pop("extra_fields", None)
        category = super().update(instance, validated_data)
        if extra_fields is not None:
            self._replace_extra_fields(category, extra_fields)
        return category

    @staticmethod
    def _replace_extra_fields(category: Category, extra_fields: list[dict]) -> None:
        category.extra_fields.all().delete()
        ExtraField.objects.bulk_create(
            ExtraField(category=category, **field) for field in extra_fields
        )
