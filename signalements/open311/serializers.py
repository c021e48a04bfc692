"""Open311 representations (services, service definitions, service requests) and the
parsing of Open311 parameters (GET filters, POST form) into what the models take.

Absent values are null in JSON (an empty element in XML), as in the GeoReport v2
examples: an empty address, no status note, no media, and what Signalements does not
track (`expected_datetime`, `address_id`, `zipcode`)."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.validators import slug_re
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from rest_framework import serializers

from signalements import photo_access
from signalements.extra import STRING_MAX_LENGTH, TEXT_MAX_LENGTH, Datatype
from signalements.models import (
    CLOSED_STATUSES,
    Category,
    ExtraField,
    Signalement,
    fits_in_utc,
    reference_to_pk,
    with_writable_offset,
)
from signalements.querystring import list_values

OPEN, CLOSED = "open", "closed"
# The spec's limits for GET requests: a window of at most 90 days (the last 90 days by
# default) and at most 1000 requests per response.
MAX_SPAN = timedelta(days=90)
MAX_RESULTS = 1000
MAX_PAGE = 1_000_000
# A service_request_id: a reference (SIG-2026-000051) or an id.
MAX_ID_DIGITS = 18


def datatype_description(datatype: str) -> str:
    """What an attribute of this datatype expects, in the request's language."""
    match datatype:
        case Datatype.STRING:
            return _("Text, at most %(count)d characters.") % {"count": STRING_MAX_LENGTH}
        case Datatype.TEXT:
            return _("Text, at most %(count)d characters.") % {"count": TEXT_MAX_LENGTH}
        case Datatype.NUMBER:
            return _("A number, e.g. 12 or 4.5.")
        case Datatype.DATETIME:
            return _("An ISO 8601 date and time, e.g. 2026-04-29T21:00:00+02:00.")
        case Datatype.SINGLEVALUELIST:
            return _("One key among the values.")
        case Datatype.MULTIVALUELIST:
            return _("One or more keys among the values: repeat attribute[code][].")
    return ""


def open311_status(status: str) -> str:
    return CLOSED if status in CLOSED_STATUSES else OPEN


def format_datetime(value: datetime | None) -> str | None:
    """ISO 8601 in the server's time zone, to the second, with its offset (UTC when
    the offset is not a whole number of minutes, which the w3c format cannot write)."""
    if value is None:
        return None
    return with_writable_offset(timezone.localtime(value)).isoformat(timespec="seconds")


def media_url_for(signalement: Signalement, request) -> str | None:
    """The URL of the report's media: the link given with it, else its first photo
    (prefetched by the views: `with_photos`), else none."""
    if signalement.media_url:
        return signalement.media_url
    photos = signalement.photos
    if not photos:
        return None
    links = photo_access.Links(request.build_absolute_uri if request is not None else None)
    return links.url(photos[0].file.name, public=signalement.is_public)


def parse_service_request_id(value: str) -> int | None:
    """The id that a service_request_id names (a reference or a plain id), or None."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        return int(value) if len(value) <= MAX_ID_DIGITS else None
    return reference_to_pk(value)


class NullIfBlankField(serializers.CharField):
    def to_representation(self, value):
        return str(value) or None


class DateTimeField(serializers.Field):
    def to_representation(self, value):
        return format_datetime(value)


class ServiceSerializer(serializers.ModelSerializer):
    """A category as an Open311 service (`has_extra_fields` is annotated)."""

    service_code = serializers.CharField(source="code")
    service_name = serializers.CharField(source="name")
    description = NullIfBlankField()
    metadata = serializers.BooleanField(source="has_extra_fields")
    type = serializers.SerializerMethodField()
    keywords = serializers.SerializerMethodField()
    group = NullIfBlankField()

    class Meta:
        model = Category
        fields = [
            "service_code",
            "service_name",
            "description",
            "metadata",
            "type",
            "keywords",
            "group",
        ]

    def get_type(self, category) -> str:
        return "realtime"  # a POST creates the request at once: no token

    def get_keywords(self, category) -> None:
        return None


class AttributeSerializer(serializers.ModelSerializer):
    """An extra field as a service definition attribute. `order` is the position, from
    1; the question is the `description`, the field's help text (or else what its type
    expects) the `datatype_description`."""

    variable = serializers.SerializerMethodField()
    datatype_description = serializers.SerializerMethodField()
    order = serializers.SerializerMethodField()
    description = serializers.CharField(source="label")
    values = serializers.SerializerMethodField()

    class Meta:
        model = ExtraField
        fields = [
            "variable",
            "code",
            "datatype",
            "required",
            "datatype_description",
            "order",
            "description",
            "values",
        ]

    def get_variable(self, field) -> bool:
        return True  # every extra field asks for an answer

    def get_datatype_description(self, field) -> str:
        return field.description or datatype_description(field.datatype)

    def get_order(self, field) -> int:
        return self.context["positions"][field.pk]

    def get_values(self, field) -> list[dict]:
        return [{"key": choice["key"], "name": choice["label"]} for choice in field.choices or []]


class ServiceDefinitionSerializer(serializers.ModelSerializer):
    service_code = serializers.CharField(source="code")
    attributes = serializers.SerializerMethodField()

    class Meta:
        model = Category
        fields = ["service_code", "attributes"]

    def get_attributes(self, category) -> list:
        fields = list(category.extra_fields.all())
        positions = {field.pk: position for position, field in enumerate(fields, start=1)}
        return AttributeSerializer(fields, many=True, context={"positions": positions}).data


class ServiceRequestSerializer(serializers.ModelSerializer):
    """A public report as an Open311 service request: never its contact data, reporter,
    assignee, internal notes or API key. `status_notes` is annotated (see views)."""

    service_request_id = serializers.CharField(source="reference")
    status = serializers.SerializerMethodField()
    status_notes = NullIfBlankField()
    service_name = serializers.SerializerMethodField()
    service_code = serializers.SerializerMethodField()
    agency_responsible = serializers.SerializerMethodField()
    service_notice = serializers.SerializerMethodField()
    requested_datetime = DateTimeField(source="created_at")
    updated_datetime = DateTimeField(source="updated_at")
    expected_datetime = serializers.SerializerMethodField()
    address = NullIfBlankField()
    address_id = serializers.SerializerMethodField()
    zipcode = serializers.SerializerMethodField()
    lat = serializers.DecimalField(
        source="latitude", max_digits=9, decimal_places=6, coerce_to_string=False
    )
    long = serializers.DecimalField(
        source="longitude", max_digits=9, decimal_places=6, coerce_to_string=False
    )
    media_url = serializers.SerializerMethodField()

    class Meta:
        model = Signalement
        fields = [
            "service_request_id",
            "status",
            "status_notes",
            "service_name",
            "service_code",
            "description",
            "agency_responsible",
            "service_notice",
            "requested_datetime",
            "updated_datetime",
            "expected_datetime",
            "address",
            "address_id",
            "zipcode",
            "lat",
            "long",
            "media_url",
        ]

    def get_status(self, signalement) -> str:
        return open311_status(signalement.status)

    def get_service_name(self, signalement) -> str | None:
        return signalement.category.name if signalement.category_id else None

    def get_service_code(self, signalement) -> str:
        # Required by the standard; a report filed without a category has none.
        return signalement.category.code if signalement.category_id else ""

    def get_agency_responsible(self, signalement) -> str | None:
        return settings.OPEN311_AGENCY_RESPONSIBLE or None

    def get_service_notice(self, signalement) -> str | None:
        return settings.OPEN311_SERVICE_NOTICE or None

    def get_expected_datetime(self, signalement) -> None:
        return None

    def get_address_id(self, signalement) -> None:
        return None

    def get_zipcode(self, signalement) -> None:
        return None

    def get_media_url(self, signalement) -> str | None:
        return media_url_for(signalement, self.context.get("request"))


class CreatedServiceRequestSerializer(serializers.ModelSerializer):
    """The answer to a POST: the new request's id (no token: requests are created at
    once)."""

    service_request_id = serializers.CharField(source="reference")
    service_notice = serializers.SerializerMethodField()

    class Meta:
        model = Signalement
        fields = ["service_request_id", "service_notice"]

    def get_service_notice(self, signalement) -> str | None:
        return settings.OPEN311_SERVICE_NOTICE or None


# --- Parameters ------------------------------------------------------------------------


def single_values(params, names) -> dict[str, str]:
    """The parameters among `names` that were given, each once: a repeated one is a 400
    naming it (which of two values would be meant?)."""
    values, errors = {}, {}
    for name in names:
        given = params.getlist(name)
        if len(given) > 1:
            errors[name] = [_("Give one value.")]
        elif given:
            values[name] = given[0]
    if errors:
        raise serializers.ValidationError(errors)
    return values


class AwareDateTimeField(serializers.Field):
    """A w3c/ISO 8601 datetime with its time zone (`Z` or `±HH:MM`), as UTC. A `+` that
    an unencoded query string turned into a space is read as `+`."""

    default_error_messages = {
        "invalid": gettext_lazy("Expected an ISO 8601 date and time, e.g. 2026-01-01T00:00:00Z."),
        "naive": gettext_lazy("Give a time zone: Z or ±HH:MM, e.g. 2026-01-01T00:00:00+01:00."),
        "overflow": gettext_lazy("Date and time out of range."),
    }
    SPACE_FOR_PLUS = re.compile(r"(T[\d:.]+) (\d{2}:?\d{2})$")

    def to_internal_value(self, data):
        if not isinstance(data, str) or "\x00" in data or len(data) > 64:
            self.fail("invalid")
        text = self.SPACE_FOR_PLUS.sub(r"\1+\2", data.strip())
        try:
            value = parse_datetime(text)
        except ValueError:
            value = None
        if value is None:
            self.fail("invalid")
        if value.tzinfo is None:
            self.fail("naive")
        if not fits_in_utc(value):
            self.fail("overflow")
        return value.astimezone(UTC)


def _shift(value: datetime, delta: timedelta) -> datetime:
    try:
        return value + delta
    except OverflowError:
        return (
            datetime.max.replace(tzinfo=UTC)
            if delta > timedelta(0)
            else datetime.min.replace(tzinfo=UTC)
        )


class RequestsQuerySerializer(serializers.Serializer):
    """The filters of GET requests.{json,xml}.

    `service_request_id` (one or more, comma-separated) overrides the other filters, as
    the spec says. Otherwise the window is `start_date`..`end_date` on
    `requested_datetime`, at most 90 days: the last 90 days when neither is given, 90
    days from `start_date` or up to `end_date` when only one is. `page` and `page_size`
    (at most and by default 1000) page through the results."""

    service_request_id = serializers.ListField(child=serializers.CharField(), required=False)
    service_code = serializers.ListField(child=serializers.CharField(), required=False)
    status = serializers.ListField(
        child=serializers.ChoiceField(choices=[OPEN, CLOSED]), required=False
    )
    start_date = AwareDateTimeField(required=False)
    end_date = AwareDateTimeField(required=False)
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, required=False)
    page_size = serializers.IntegerField(min_value=1, required=False)

    LIST_PARAMS = ("service_request_id", "service_code", "status")
    SINGLE_PARAMS = ("start_date", "end_date", "page", "page_size")

    @classmethod
    def from_query(cls, params) -> "RequestsQuerySerializer":
        data = single_values(params, cls.SINGLE_PARAMS)
        for name in cls.LIST_PARAMS:
            values = list_values(params, name)
            if values:
                data[name] = values
        return cls(data=data)

    def validate_service_request_id(self, values):
        if len(values) > MAX_RESULTS:
            raise serializers.ValidationError(
                ngettext("At most %(count)d id.", "At most %(count)d ids.", MAX_RESULTS)
                % {"count": MAX_RESULTS}
            )
        ids = []
        for value in values:
            pk = parse_service_request_id(value)
            if pk is None:
                raise serializers.ValidationError(
                    _("%(value)r is not a service_request_id (e.g. SIG-2026-000051 or 51).")
                    % {"value": value[:40]}
                )
            ids.append(pk)
        return ids

    def validate_service_code(self, values):
        for value in values:
            if not slug_re.fullmatch(value):
                raise serializers.ValidationError(
                    _("%(value)r is not a service_code.") % {"value": value[:64]}
                )
        return values

    def validate(self, attrs):
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if start is None and end is None:
            end = timezone.now()
            start = end - MAX_SPAN
        elif end is None:
            end = _shift(start, MAX_SPAN)
        elif start is None:
            start = _shift(end, -MAX_SPAN)
        elif end < start:
            raise serializers.ValidationError({"end_date": [_("Must not be before start_date.")]})
        elif end - start > MAX_SPAN:
            raise serializers.ValidationError(
                {
                    "end_date": [
                        _("start_date and end_date may not span more than %(days)d days.")
                        % {"days": MAX_SPAN.days}
                    ]
                }
            )
        attrs["start_date"], attrs["end_date"] = start, end
        attrs["page_size"] = min(attrs.get("page_size", MAX_RESULTS), MAX_RESULTS)
        attrs.setdefault("page", 1)
        return attrs


# The POST form: Open311 parameter -> REST field (see `to_signalement_data`).
POST_SINGLE_PARAMS = (
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "description",
    "media_url",
)
OPEN311_NAMES = {
    "category": "service_code",
    "latitude": "lat",
    "longitude": "long",
    "address": "address_string",
    "contact_email": "email",
    "contact_name": "first_name/last_name",
    "contact_phone": "phone",
}
ATTRIBUTE_PARAM = re.compile(r"attribute\[([^\[\]]*)\](\[\])?")


def _number(text: str):
    """An attribute's number: int when it is a whole number a JSON reader keeps exact,
    float otherwise; the text itself (refused by the extra-field rules) when it is no
    finite number."""
    try:
        number = Decimal(text.strip()) if len(text) <= 100 else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        return text
    if number == number.to_integral_value() and abs(number) <= 2**53:
        return int(number)
    value = float(number)
    return value if value not in (float("inf"), float("-inf")) else text


def attributes_from(params, category: Category | None) -> dict:
    """`attribute[code]=value` parameters as an `extra` object, each value converted to
    what the category's field of that code takes: a number for `number`, a list of keys
    for `multivaluelist` (`attribute[code][]=a&attribute[code][]=b`, or the plain name
    repeated). Unknown codes are kept as given, for the extra-field rules to refuse."""
    fields = {field.code: field for field in category.extra_fields.all()} if category else {}
    given: dict[str, list[str]] = {}
    for name in params:
        if not name.startswith("attribute"):
            continue
        match = ATTRIBUTE_PARAM.fullmatch(name)
        if match is None:
            raise serializers.ValidationError(
                {name[:80]: [_("Expected attribute[code]=value or attribute[code][]=value.")]}
            )
        given.setdefault(match.group(1), []).extend(params.getlist(name))
    extra = {}
    for code, values in given.items():
        field = fields.get(code)
        if field is not None and field.datatype == Datatype.MULTIVALUELIST:
            extra[code] = [value for value in values if value != ""]
            continue
        if len(values) > 1:
            raise serializers.ValidationError({f"attribute[{code[:64]}]": [_("Give one value.")]})
        value = values[0]
        if field is not None and field.datatype == Datatype.NUMBER and value.strip():
            value = _number(value)
        extra[code] = value
    return extra


def to_signalement_data(params, category: Category | None) -> dict:
    """The REST create's fields from an Open311 POST form, for `SignalementWriteSerializer`
    to validate with the REST rules. Open311's own rules are checked here: a service_code
    and a location (lat and long, or address_string) are required."""
    values = single_values(params, POST_SINGLE_PARAMS)
    errors = {}
    if not values.get("service_code", "").strip():
        errors["service_code"] = [_("This field is required.")]
    has_point = values.get("lat", "").strip() or values.get("long", "").strip()
    if not has_point and not values.get("address_string", "").strip():
        errors["lat"] = [_("A location is required: lat and long, or address_string.")]
    if errors:
        raise serializers.ValidationError(errors)
    name = " ".join(
        part
        for part in (values.get("first_name", "").strip(), values.get("last_name", "").strip())
        if part
    )
    data = {
        "category": values["service_code"].strip(),
        "date": timezone.now(),
        "address": values.get("address_string", ""),
        "media_url": values.get("media_url", ""),
        "contact_name": name,
        "contact_email": values.get("email", "").strip(),
        "contact_phone": values.get("phone", ""),
        "extra": attributes_from(params, category),
    }
    if "description" in values:
        data["description"] = values["description"]
    if has_point:
        data["latitude"] = values.get("lat", "").strip() or None
        data["longitude"] = values.get("long", "").strip() or None
    return data


def open311_errors(detail: dict) -> dict:
    """The REST create's validation errors named after the Open311 parameters."""
    errors = {}
    for name, messages in detail.items():
        if name == "extra" and isinstance(messages, dict):
            for code, problems in messages.items():
                errors[f"attribute[{str(code)[:64]}]"] = problems
        elif name == "extra":
            errors["attribute"] = messages
        elif name == "category":
            errors["service_code"] = [_("Unknown service_code, or a service closed to requests.")]
        else:
            errors[OPEN311_NAMES.get(name, name)] = messages
    return errors
