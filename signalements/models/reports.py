"""Reports (signalements): their workflow, their fields and the rules across them.

Field rules live here (validators, choices, lengths, constraints) so that every door (the
REST API, Open311, the admin) applies the same ones; rules across fields live in
`Signalement.clean()`.
"""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.manager import HistoryManager
from simple_history.models import HistoricalRecords

from ..extra import check_extra
from ..languages import default_language
from .attachments import PREFETCHED_PHOTOS, Attachment
from .categories import Category, ExtraField
from .rollup import DurationMicroseconds

DESCRIPTION_MAX_LENGTH = 4000
REFERENCE_PREFIX = "SIG"
# Members of this group are agents: they triage every report (see roles.py).
AGENTS_GROUP = "agents"


class Status(models.TextChoices):
    NEW = "new", pgettext_lazy("status", "New")
    ACKNOWLEDGED = "acknowledged", pgettext_lazy("status", "Acknowledged")
    IN_PROGRESS = "in_progress", pgettext_lazy("status", "In progress")
    RESOLVED = "resolved", pgettext_lazy("status", "Resolved")
    REJECTED = "rejected", pgettext_lazy("status", "Rejected")


CLOSED_STATUSES = frozenset({Status.RESOLVED, Status.REJECTED})

# The workflow: the states a report may move to from each state. The one source of
# truth, applied by `services.transition` (API and admin alike).
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.NEW: frozenset({Status.ACKNOWLEDGED, Status.REJECTED}),
    Status.ACKNOWLEDGED: frozenset({Status.IN_PROGRESS, Status.RESOLVED, Status.REJECTED}),
    Status.IN_PROGRESS: frozenset({Status.RESOLVED, Status.ACKNOWLEDGED}),
    Status.RESOLVED: frozenset({Status.IN_PROGRESS}),
    Status.REJECTED: frozenset({Status.ACKNOWLEDGED}),
}


class Priority(models.TextChoices):
    LOW = "low", pgettext_lazy("priority", "Low")
    NORMAL = "normal", pgettext_lazy("priority", "Normal")
    HIGH = "high", pgettext_lazy("priority", "High")
    URGENT = "urgent", pgettext_lazy("priority", "Urgent")


# Rank of each priority, for ordering by urgency rather than alphabetically.
PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


def fits_in_utc(value: datetime) -> bool:
    """Whether an aware datetime can be converted to UTC (and so stored or compared)
    without leaving the calendar: 0001-01-01T00:00:00+05:00 cannot."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


def validate_web_url(value: str) -> None:
    """A link that browsers open: http or https only (Django's URLField also takes ftp)."""
    if not value.lower().startswith(("http://", "https://")):
        raise ValidationError(_("Enter an http or https URL."), code="invalid")


def with_writable_offset(value: datetime) -> datetime:
    """The same instant, in UTC when its UTC offset has seconds (Paris before 1911:
    +00:09:21), which RFC 3339 and ISO 8601 offsets cannot write."""
    offset = value.utcoffset()
    if offset is not None and offset % timedelta(minutes=1):
        return value.astimezone(UTC)
    return value


def validate_not_in_future(value):
    """An incident cannot have happened in the future (a little clock skew is allowed)."""
    if value > timezone.now() + settings.SIGNALEMENT_DATE_CLOCK_SKEW:
        raise ValidationError(_("The date cannot be in the future."), code="future_date")


class ReportHistoryManager(HistoryManager):
    """simple-history's manager of a report's history rows. Its descriptor builds the
    manager's class again (`from_queryset`) at each `report.history`, which each write
    of a report does to save its history row: a quarter of a millisecond, a sixth of an
    anonymous create's time. The class is built once here."""

    @classmethod
    def from_queryset(cls, queryset_class, class_name=None):
        key = (cls, queryset_class, class_name)
        built = _history_manager_classes.get(key)
        if built is None:
            built = _history_manager_classes[key] = super().from_queryset(
                queryset_class, class_name
            )
        return built


_history_manager_classes: dict[tuple, type] = {}


class Signalement(models.Model):
    """An incident report."""

    uuid = models.UUIDField(_("UUID"), default=uuid.uuid4, unique=True, editable=False)
    title = models.CharField(_("title"), max_length=200, blank=True)
    description = models.TextField(
        _("description"),
        max_length=DESCRIPTION_MAX_LENGTH,
        validators=[MaxLengthValidator(DESCRIPTION_MAX_LENGTH)],
        help_text=_("What happened, in plain text (1 to 4000 characters)."),
    )
    date = models.DateTimeField(
        _("date"),
        validators=[validate_not_in_future],
        help_text=_("When the incident happened (not in the future)."),
    )
    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        on_delete=models.PROTECT,
        related_name="signalements",
        null=True,
        blank=True,
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.NEW
    )
    priority = models.CharField(
        _("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    latitude = models.DecimalField(
        _("latitude"),
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("-90")), MaxValueValidator(Decimal("90"))],
        help_text=_("WGS84 latitude in degrees, with longitude or not at all."),
    )
    longitude = models.DecimalField(
        _("longitude"),
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("-180")), MaxValueValidator(Decimal("180"))],
        help_text=_("WGS84 longitude in degrees, with latitude or not at all."),
    )
    address = models.CharField(_("address"), max_length=300, blank=True)
    media_url = models.URLField(
        _("media URL"),
        max_length=500,
        blank=True,
        validators=[validate_web_url],
        help_text=_("Link to a photo or other media of the problem (http or https)."),
    )
    extra = models.JSONField(
        _("extra"),
        default=dict,
        blank=True,
        help_text=_("Answers to the category's extra fields, by field code."),
    )

    # Private: only the reporter and staff may ever read these.
    contact_name = models.CharField(_("contact name"), max_length=200, blank=True)
    contact_email = models.EmailField(_("contact email"), blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=40, blank=True)

    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reporter"),
        on_delete=models.SET_NULL,
        related_name="signalements",
        null=True,
        blank=True,
        help_text=_("The logged-in user who filed the report, if any."),
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned to"),
        on_delete=models.SET_NULL,
        related_name="assigned_signalements",
        null=True,
        blank=True,
        limit_choices_to={"groups__name": AGENTS_GROUP},
    )
    duplicate_of = models.ForeignKey(
        "self",
        verbose_name=_("duplicate of"),
        on_delete=models.SET_NULL,
        related_name="duplicates",
        null=True,
        blank=True,
    )
    # Routing (signalements/routing.py): the department in charge, the areas the report
    # lies in, and by when it is due (its category's service level).
    department = models.ForeignKey(
        "Department",
        verbose_name=_("department"),
        on_delete=models.SET_NULL,
        related_name="signalements",
        null=True,
        blank=True,
    )
    keep_routing = models.BooleanField(
        _("keep department and priority"),
        default=False,
        help_text=_("Set by hand: a change of category or place does not route the report again."),
    )
    areas = models.ManyToManyField(
        "Area", verbose_name=_("areas"), related_name="signalements", blank=True
    )
    due_at = models.DateTimeField(_("due at"), null=True, blank=True, editable=False)
    is_public = models.BooleanField(
        _("public"), default=True, help_text=_("Visible to everyone (moderation).")
    )
    api_key = models.ForeignKey(
        "ApiKey",
        verbose_name=_("submitted via"),
        on_delete=models.SET_NULL,
        related_name="signalements",
        null=True,
        blank=True,
        help_text=_("The Open311 API key the report came in with, if any (agents only)."),
    )
    # The report's id in the system it was imported from (`import_signalements`, a
    # migration from another system): importing the same file again skips it.
    external_id = models.CharField(
        _("external id"),
        max_length=100,
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text=_("Its id in the system it was imported from, if any."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True, editable=False)
    # One more at every write of the report or of its photos, whoever makes it (the API,
    # the admin, `.update()`, raw SQL): database triggers of migration 0011 bump it, so
    # the code never sets it. The REST API's ETag is built from it (`If-Match`).
    version = models.PositiveBigIntegerField(_("version"), default=1, editable=False)

    # The language of the request that created the report (`fr`, `en`): its reporter's
    # emails are written in it.
    language = models.CharField(
        _("language"), max_length=10, default=default_language, editable=False
    )

    # An anonymous reporter's proof of authorship: the SHA-256 of the secret returned
    # once by the create (see `reporter_tokens.py`), and when it stops being valid.
    reporter_token_hash = models.CharField(
        _("reporter token (hashed)"),
        max_length=64,
        null=True,
        blank=True,
        unique=True,
        editable=False,
    )
    reporter_token_expires_at = models.DateTimeField(
        _("reporter token expires at"), null=True, blank=True, editable=False
    )

    history = HistoricalRecords(
        history_manager=ReportHistoryManager,
        # The history is read by report and date: the copies of the report's own indexes
        # would only slow every write (a bulk import by a tenth on PostgreSQL).
        no_db_index=[
            "api_key",
            "assigned_to",
            "category",
            "department",
            "duplicate_of",
            "external_id",
            "reporter",
            "uuid",
        ],
        excluded_fields=[
            "updated_at",
            "reporter_token_hash",
            "reporter_token_expires_at",
            "version",
            "language",
        ],
        cascade_delete_history=True,
        # The public note of a status change is kept with the change itself.
        history_change_reason_field=models.TextField(null=True),
    )

    class Meta:
        verbose_name = _("signalement")
        verbose_name_plural = _("signalements")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="sig_created_idx"),
            models.Index(fields=["is_public", "-created_at", "-id"], name="sig_public_created_idx"),
            # Covering: the list's common filters with a status (a category, the
            # visibility, a box) are decided within the index, in the list's order, and
            # the count without reading the table. (Key columns rather than INCLUDE, which
            # SQLite lacks: both databases read the index alone.)
            models.Index(
                fields=[
                    "status",
                    "-created_at",
                    "-id",
                    "category",
                    "is_public",
                    "latitude",
                    "longitude",
                ],
                name="sig_status_cover_idx",
            ),
            models.Index(fields=["category", "-created_at", "-id"], name="sig_category_recent_idx"),
            # Covering: the agents' triage, a status in a category (and a box), read in
            # the list's order (at a million reports, a tenth of the status' entries).
            models.Index(
                fields=[
                    "status",
                    "category",
                    "-created_at",
                    "-id",
                    "is_public",
                    "latitude",
                    "longitude",
                ],
                name="sig_status_category_idx",
            ),
            models.Index(fields=["priority"], name="sig_priority_idx"),
            models.Index(fields=["date"], name="sig_date_idx"),
            # Covering: a box or a radius, its count and the page's order are decided
            # within the index; the page's reports alone are read.
            models.Index(
                fields=["latitude", "longitude", "is_public", "created_at", "id"],
                name="sig_location_cover_idx",
            ),
            models.Index(
                fields=["department", "-created_at", "-id"], name="sig_department_recent_idx"
            ),
            # Covering: the statistics' open reports not yet due, counted within the index
            # (scattered reads of the table took 4-9 ms at a million reports).
            models.Index(
                fields=["due_at", "status", "department", "category", "is_public", "created_at"],
                name="sig_due_cover_idx",
            ),
            # The medians' exact lookups (`rollup.py`): times to resolution and lateness,
            # in microseconds, in SQL of the database's own.
            models.Index(
                DurationMicroseconds("resolved_at", "created_at"),
                condition=models.Q(resolved_at__isnull=False),
                name="sig_resolution_time_idx",
            ),
            models.Index(
                DurationMicroseconds("resolved_at", "due_at"),
                condition=models.Q(resolved_at__gt=models.F("due_at")),
                name="sig_lateness_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    GreaterThanOrEqual(Length("description"), 1),
                    LessThanOrEqual(Length("description"), DESCRIPTION_MAX_LENGTH),
                ),
                name="sig_description_length",
            ),
            models.CheckConstraint(
                condition=models.Q(latitude__isnull=True, longitude__isnull=True)
                | models.Q(latitude__isnull=False, longitude__isnull=False),
                name="sig_location_both_or_neither",
            ),
            models.CheckConstraint(
                condition=models.Q(latitude__isnull=True)
                | models.Q(latitude__gte=-90, latitude__lte=90),
                name="sig_latitude_range",
            ),
            models.CheckConstraint(
                condition=models.Q(longitude__isnull=True)
                | models.Q(longitude__gte=-180, longitude__lte=180),
                name="sig_longitude_range",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=Status.values), name="sig_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(priority__in=Priority.values), name="sig_priority_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title or self.description[:60]}"

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        if "category_id" in instance.__dict__ and "latitude" in instance.__dict__:
            from ..routing import remember

            remember(instance)
        return instance

    def save(self, *args, **kwargs):
        """Saved with what routing derives from the write (`signalements/routing.py`):
        areas, department and priority, due date, and the reason in the history."""
        from ..routing import after_save, before_save

        plan, update_fields = before_save(self, kwargs.get("update_fields"))
        if update_fields is not None:
            kwargs["update_fields"] = update_fields
        super().save(*args, **kwargs)
        after_save(self, plan)

    @property
    def reference(self) -> str:
        """Human reference, e.g. SIG-2025-000123: creation year and id (not stored)."""
        return reference_of(self.pk, self.created_at) if self.pk is not None else ""

    @property
    def photos(self) -> list[Attachment]:
        """Its photos, oldest first: those prefetched by `with_photos()`, else queried."""
        prefetched = self.__dict__.get(PREFETCHED_PHOTOS)
        return prefetched if prefetched is not None else list(self.attachments.all())

    @property
    def area_codes(self) -> list[str]:
        """The codes of its areas, sorted (prefetched `areas` if they are)."""
        return sorted(area.code for area in self.areas.all())

    def extra_fields(self) -> list[ExtraField]:
        """The extra fields that this report's category asks for."""
        return list(self.category.extra_fields.all()) if self.category_id else []

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    def clean(self) -> None:
        super().clean()
        if self.duplicate_of_id is not None and self.duplicate_of_id == self.pk:
            raise ValidationError(
                {
                    "duplicate_of": ValidationError(
                        _("A report cannot duplicate itself."), code="self"
                    )
                }
            )
        cleaned, errors = check_extra(self.extra_fields(), self.extra)
        if errors:
            raise ValidationError(
                {
                    "extra": [
                        ValidationError(f"{code}: {' '.join(error.messages)}")
                        if code is not None
                        else error
                        for code, error in errors.items()
                    ]
                }
            )
        self.extra = cleaned
        if (self.latitude is None) != (self.longitude is None):
            missing = "longitude" if self.longitude is None else "latitude"
            message = _("Latitude and longitude go together: give both or neither.")
            raise ValidationError({missing: ValidationError(message, code="incomplete_location")})


def reference_of(pk: int, created_at: datetime) -> str:
    """The reference of the report `pk` created at `created_at`, without loading it."""
    return f"{REFERENCE_PREFIX}-{timezone.localtime(created_at).year}-{pk:06d}"


def reference_to_pk(reference: str) -> int | None:
    """The id in a reference such as "SIG-2025-000123", or None if it is not one."""
    parts = reference.strip().upper().split("-")
    if len(parts) != 3 or parts[0] != REFERENCE_PREFIX:
        return None
    year, number = parts[1], parts[2]
    if not (f"{year}{number}".isascii() and year.isdigit() and number.isdigit()):
        return None
    if len(number) > 18:
        return None
    return int(number)
