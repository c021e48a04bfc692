"""Conditional requests on one report: its ETag, and `If-Match` on its writes (no lost
updates).

The detail's ETag is strong and made of the report's version (one more at each write of
the report or of its photos, by database triggers: `Signalement.version`) and of the
representation's variant: who reads it (the public, its reporter, agents), in which
language, at which host and scheme, in which format, and the values that other tables
lend it (its category's code, its assignee, the original it duplicates as the caller may
see it). A write to another report leaves it alone.

`PUT`, `PATCH` and the transition take an `If-Match` with that ETag: checked under the
report's row lock (PostgreSQL; SQLite's writes are one at a time), in the transaction
of the write, so that of two writes made from the same read, one is made and the other
is a 412. Without `If-Match` a write is made as before, unless `REQUIRE_IF_MATCH` is on:
then it is a 428.
"""

import hashlib

from django.conf import settings
from django.db import transaction
from django.utils.http import parse_etags
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status

from signalements import photo_access
from signalements.models import Signalement

HEADER = "If-Match"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = _(
        "The report changed since this ETag was read: read it again (GET), then retry "
        "with its new ETag."
    )
    default_code = "precondition_failed"


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = _(
        "Send If-Match with the report's ETag (from GET): this server refuses writes "
        "that could overwrite a change made meanwhile."
    )
    default_code = "precondition_required"


def etag(request, report: dict, version: int) -> str:
    """The strong ETag of `report` (its representation for the caller of `request`) at
    `version`."""
    if "assigned_to" in report:
        audience = "agent"
    elif "contact_email" in report:
        audience = "reporter"
    else:
        audience = "public"
    variant = "\n".join(
        [
            audience,
            get_language() or "",
            request.get_host(),
            request.scheme,
            getattr(request, "accepted_media_type", "") or "",
            str(report.get("category")),
            str(report.get("assigned_to")),
            str(report.get("duplicate_of")),
        ]
    )
    digest = hashlib.sha256(variant.encode()).hexdigest()[:16]
    # A hidden report's photo URLs are signed until the end of a window: the bytes, and
    # so the ETag, change with it (a 304 must not keep an expired URL). `If-Match` leaves
    # that part out (`lasting`): a write made across windows is no conflict.
    signed_until = photo_access.signed_until(report)
    if signed_until is not None:
        return f'"{report["id"]}.{version}.{digest}.{signed_until}"'
    return f'"{report["id"]}.{version}.{digest}"'


def lasting(tag: str) -> str:
    """An ETag without the expiry of its photo URLs."""
    parts = tag.strip('"').split(".")
    return '"' + ".".join(parts[:3]) + '"' if len(parts) == 4 else tag


def version_of(pk: int, *, lock: bool = False) -> int | None:
    reports = Signalement.objects.filter(pk=pk)
    if lock:
        reports = reports.select_for_update()
    return reports.values_list("version", flat=True).first()


def check(request, pk: int, representation) -> None:
    """Inside the write's transaction, before it: the report's row is locked, and the
    request's `If-Match` compared with its ETag (`representation()`: the report as the
    caller sees it now). 412 when none matches; 428 when it is missing and required."""
    assert transaction.get_connection().in_atomic_block, (
        "check() belongs in the write's transaction"
    )
    given = request.META.get("HTTP_IF_MATCH")
    if given is None:
        if settings.REQUIRE_IF_MATCH:
            raise PreconditionRequired({HEADER: [PreconditionRequired.default_detail]})
        return
    version = version_of(pk, lock=True)
    if version is None:
        return  # no such report: the write answers its 404
    if given.strip() == "*":  # any current representation
        return
    current = lasting(etag(request, representation(), version))
    # Strong comparison (RFC 9110 §13.1.1): a weak validator never matches.
    if current not in [lasting(tag) for tag in parse_etags(given) if not tag.startswith("W/")]:
        raise PreconditionFailed({HEADER: [PreconditionFailed.default_detail]})
