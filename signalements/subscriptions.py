"""Following reports and alerts about new ones (`models/subscriptions.py`).

- **Follow a report**: its public updates (status changes, public comments) are emailed
  to the follower (`notifications.py`). Anyone who sees a report may follow it with an
  email address they confirm; a logged-in caller's own account address is confirmed at
  once. The reporter is emailed about their report anyway; following it again after
  unsubscribing turns those emails back on.
- **Alerts**: new public reports in a circle (centre, radius) or a box, of some
  categories or all, matched here (`matching_alerts`, `reports_for`: the alert's bounding
  box first, by the database's index), emailed by `alerts.py` one by one as they come
  or in a daily digest.

An address is confirmed by a signed link (`django.core.signing`, its own salt) valid
`SUBSCRIPTION_CONFIRM_DAYS`; every notification carries a signed one-click unsubscribe
link. Asking again for what exists already changes nothing and answers the same: the
API never tells whether an address is subscribed. No address is ever shown to anyone
but its owner; subscriptions go with the retention of reports and with the erasure of a
user's contact data (`forget`, `prune_unconfirmed`)."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import BaseUserManager
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from . import emails, geo, signed_links
from .models import ReporterOptOut, Signalement, Subscription
from .signed_links import InvalidToken
from .tasks import enqueue_on_commit, retried_task

logger = logging.getLogger(__name__)

CONFIRM_SALT = "signalements.subscriptions.confirm"
UNSUBSCRIBE_SALT = "signalements.subscriptions.unsubscribe"
ADDRESS_SALT = "signalements.subscriptions.address"


def normalize(email: str) -> str:
    """An address as stored: trimmed, its domain in lower case."""
    return BaseUserManager.normalize_email(email.strip())


def reporter_address(signalement: Signalement) -> str:
    """Where the reporter is written to: their account's email, else the contact email
    given with the report."""
    if signalement.reporter_id and signalement.reporter.email:
        return signalement.reporter.email
    return signalement.contact_email


# --- Signed links -----------------------------------------------------------------------


def address_digest(address: str) -> str:
    """What a link says of an address: a keyed hash (signed links are readable: an
    address in one would be in every log of the URL)."""
    return salted_hmac(ADDRESS_SALT, address.strip().casefold()).hexdigest()[:24]


def confirm_token(subscription: Subscription) -> str:
    return signing.dumps({"s": subscription.pk, "k": subscription.key}, salt=CONFIRM_SALT)


def confirm_url(subscription: Subscription) -> str:
    return emails.public_url(reverse("subscription-confirm", args=[confirm_token(subscription)]))


def report_unsubscribe_url(report_id: int, address: str) -> str:
    """Stops the emails about this report to this address: the reporter's and a
    follow's alike."""
    token = signing.dumps({"r": report_id, "a": address_digest(address)}, salt=UNSUBSCRIBE_SALT)
    return emails.public_url(reverse("subscription-unsubscribe", args=[token]))


def alert_unsubscribe_url(alert: Subscription) -> str:
    token = signing.dumps({"s": alert.pk, "k": alert.key}, salt=UNSUBSCRIBE_SALT)
    return emails.public_url(reverse("subscription-unsubscribe", args=[token]))


def _subscription(payload: dict) -> Subscription:
    subscription_id, key = payload.get("s"), payload.get("k")
    if not isinstance(subscription_id, int) or not isinstance(key, str):
        raise InvalidToken()
    found = (
        Subscription.objects.select_related("signalement")
        .filter(pk=subscription_id, key=key)
        .first()
    )
    if found is None:  # unsubscribed, or pruned unconfirmed
        raise InvalidToken()
    return found


def confirm_period() -> timedelta:
    return timedelta(days=settings.SUBSCRIPTION_CONFIRM_DAYS)


def pending(token: str) -> Subscription:
    """The subscription a confirmation link names (InvalidToken when there is none)."""
    return _subscription(signed_links.load(token, salt=CONFIRM_SALT, max_age=confirm_period()))


def confirm(token: str) -> Subscription:
    """Confirm the subscription of this link (again: nothing more)."""
    subscription = pending(token)
    if not subscription.is_confirmed:
        with transaction.atomic():
            _confirmed(subscription)
    return subscription


def _confirmed(subscription: Subscription) -> None:
    subscription.confirmed_at = timezone.now()
    subscription.save(update_fields=["confirmed_at"])
    report = subscription.signalement
    if report is not None and emails.same_address(subscription.email, reporter_address(report)):
        # The reporter follows their report again: their own emails are back on.
        ReporterOptOut.objects.filter(signalement=report).delete()


@dataclass
class Unsubscription:
    """What an unsubscribe link stops: the emails about a report to one address
    (`kind` "report"), or an alert. `subscribed`: whether any is still going."""

    kind: str
    signalement: Signalement | None
    subscription: Subscription | None
    digest: str
    subscribed: bool


def unsubscription(token: str) -> Unsubscription:
    """What this unsubscribe link stops, and whether it still has anything to stop."""
    payload = signed_links.load(token, salt=UNSUBSCRIBE_SALT)
    if "r" in payload:
        report_id, digest = payload.get("r"), payload.get("a")
        if not isinstance(report_id, int) or not isinstance(digest, str):
            raise InvalidToken()
        report = Signalement.objects.select_related("reporter").filter(pk=report_id).first()
        subscribed = report is not None and (
            bool(_follows_at(report, digest))
            or (
                _is_reporters(report, digest)
                and not ReporterOptOut.objects.filter(signalement=report).exists()
            )
        )
        return Unsubscription("report", report, None, digest, subscribed)
    try:
        alert = _subscription(payload)
    except InvalidToken:
        if isinstance(payload.get("s"), int):  # a valid link whose alert is gone
            return Unsubscription("alert", None, None, "", False)
        raise
    return Unsubscription("alert", None, alert, address_digest(alert.email), True)


def unsubscribe(token: str) -> Unsubscription:
    """Stop what this link names (a second time: nothing more)."""
    found = unsubscription(token)
    with transaction.atomic():
        if found.subscription is not None:
            found.subscription.delete()
        if found.signalement is not None:
            report = found.signalement
            for follow in _follows_at(report, found.digest):
                follow.delete()
            if _is_reporters(report, found.digest):
                ReporterOptOut.objects.get_or_create(signalement=report)
    found.subscribed = False
    return found


def _follows_at(report: Signalement, digest: str) -> list[Subscription]:
    follows = Subscription.objects.filter(kind=Subscription.Kind.FOLLOW, signalement=report)
    return [follow for follow in follows if address_digest(follow.email) == digest]


def _is_reporters(report: Signalement, digest: str) -> bool:
    address = reporter_address(report)
    return bool(address) and address_digest(address) == digest


# --- Asking for a follow or an alert ------------------------------------------------------


def _account_address(user) -> str:
    return user.email if user is not None and user.is_authenticated else ""


def follow(*, signalement: Signalement, email: str, user=None, language: str) -> bool:
    """`email` (or else the logged-in `user`'s account address) follows the report.
    An address other than the account's gets a confirmation link (again, if it has not
    confirmed yet); nothing changes for one that follows already. Returns whether a
    confirmation is needed, which depends on the caller alone, never on the address."""
    account = _account_address(user)
    address = normalize(email or account)
    at_once = emails.same_address(address, account)
    if at_once:  # as the account writes it
        address = normalize(account)
    with transaction.atomic():
        existing = _follow_of(signalement, address)
        if existing is None:
            try:
                with transaction.atomic():
                    existing = Subscription.objects.create(
                        kind=Subscription.Kind.FOLLOW,
                        signalement=signalement,
                        email=address,
                        user=user if at_once else None,
                        language=language,
                    )
            except IntegrityError:  # the same follow, asked for at the same moment
                existing = _follow_of(signalement, address)
        _settle(existing, at_once=at_once, language=language)
    return not at_once


def _follow_of(signalement: Signalement, address: str) -> Subscription | None:
    return (
        Subscription.objects.select_for_update()
        .filter(kind=Subscription.Kind.FOLLOW, signalement=signalement, email__iexact=address)
        .first()
    )


def _settle(subscription: Subscription, *, at_once: bool, language: str) -> None:
    """Confirm at once, or send (again) the link of a subscription not confirmed yet."""
    if subscription.is_confirmed:
        return
    if at_once:
        _confirmed(subscription)
        return
    if subscription.language != language:
        subscription.language = language
        subscription.save(update_fields=["language"])
    enqueue_on_commit(send_confirmation_email, subscription.pk)


@dataclass(frozen=True)
class Area:
    """Where an alert looks: a circle (`latitude`, `longitude`, `radius_m`) or a box
    (`bbox`: min_lon, min_lat, max_lon, max_lat, as the list's `in_bbox`)."""

    kind: str
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    radius_m: int | None = None
    bbox: tuple[Decimal, Decimal, Decimal, Decimal] | None = None

    def fields(self) -> dict:
        if self.kind == Subscription.Area.CIRCLE:
            min_lat, min_lon, max_lat, max_lon = geo.bounding_box(
                self.latitude, self.longitude, self.radius_m
            )
            return {
                "area": self.kind,
                "latitude": self.latitude,
                "longitude": self.longitude,
                "radius_m": self.radius_m,
                "min_latitude": min_lat,
                "min_longitude": min_lon,
                "max_latitude": max_lat,
                "max_longitude": max_lon,
            }
        min_lon, min_lat, max_lon, max_lat = self.bbox
        return {
            "area": self.kind,
            "latitude": None,
            "longitude": None,
            "radius_m": None,
            "min_latitude": min_lat,
            "min_longitude": min_lon,
            "max_latitude": max_lat,
            "max_longitude": max_lon,
        }


def subscribe_alert(
    *, email: str, area: Area, categories: list[str], frequency: str, user=None, language: str
) -> bool:
    """An alert about new public reports in `area` (of `categories`, or all) for
    `email`, confirmed at once when it is the logged-in `user`'s account address, else
    by a link. The same alert asked for again changes nothing (its link is sent again
    while it is not confirmed). Returns whether a confirmation is needed (depends on the
    caller alone)."""
    address = normalize(email)
    account = _account_address(user)
    at_once = emails.same_address(address, account)
    if at_once:  # as the account writes it
        address = normalize(account)
    fields = {**area.fields(), "frequency": frequency}
    categories = sorted(set(categories))
    with transaction.atomic():
        same = Subscription.objects.select_for_update().filter(
            kind=Subscription.Kind.ALERT, email__iexact=address, **fields
        )
        existing = next((alert for alert in same if alert.categories == categories), None)
        if existing is None:
            existing = Subscription.objects.create(
                kind=Subscription.Kind.ALERT,
                email=address,
                user=user if at_once else None,
                language=language,
                categories=categories,
                **fields,
            )
        _settle(existing, at_once=at_once, language=language)
    return not at_once


# --- Matching new reports -------------------------------------------------------------


def covers(alert: Subscription, report: Signalement) -> bool:
    """Whether the alert is about this report: its category, inside its area."""
    if report.latitude is None or report.longitude is None:
        return False
    if alert.categories and (
        report.category is None or report.category.code not in alert.categories
    ):
        return False
    inside_box = (
        alert.min_latitude <= report.latitude <= alert.max_latitude
        and alert.min_longitude <= report.longitude <= alert.max_longitude
    )
    if not inside_box or alert.area == Subscription.Area.BBOX:
        return inside_box
    distance = geo.haversine_m(
        float(alert.latitude),
        float(alert.longitude),
        float(report.latitude),
        float(report.longitude),
    )
    return distance <= alert.radius_m


def alerts_around(report: Signalement, *, frequency: str):
    """The confirmed alerts of `frequency` whose bounding box holds the report's point
    (the prefilter, served by an index)."""
    return Subscription.objects.filter(
        kind=Subscription.Kind.ALERT,
        frequency=frequency,
        confirmed_at__isnull=False,
        min_latitude__lte=report.latitude,
        max_latitude__gte=report.latitude,
        min_longitude__lte=report.longitude,
        max_longitude__gte=report.longitude,
    )


def matching_alerts(report: Signalement, *, frequency: str) -> list[Subscription]:
    """The confirmed alerts of `frequency` about this new report: a public one with a
    location, in their box first (the database's index), then in their circle and
    categories. Not its own reporter's."""
    if not report.is_public or report.latitude is None or report.longitude is None:
        return []
    candidates = alerts_around(report, frequency=frequency).order_by("pk")
    reporter = reporter_address(report)
    return [
        alert
        for alert in candidates
        if covers(alert, report) and not emails.same_address(alert.email, reporter)
    ]


def reports_for(alert: Subscription, *, since: datetime, until: datetime) -> list[Signalement]:
    """The public reports created in (since, until] that the alert is about, oldest
    first."""
    reports = (
        Signalement.objects.select_related("category")
        .filter(
            is_public=True,
            created_at__gt=since,
            created_at__lte=until,
            latitude__gte=alert.min_latitude,
            latitude__lte=alert.max_latitude,
            longitude__gte=alert.min_longitude,
            longitude__lte=alert.max_longitude,
        )
        .order_by("created_at", "pk")
    )
    if alert.categories:
        reports = reports.filter(category__code__in=alert.categories)
    return [report for report in reports if covers(alert, report)]


# --- The emails -------------------------------------------------------------------------


def area_description(alert: Subscription) -> str:
    """The alert's area and categories in words, in the active language."""
    if alert.area == Subscription.Area.CIRCLE:
        where = _("within %(radius)s m of %(latitude)s, %(longitude)s") % {
            "radius": alert.radius_m,
            "latitude": alert.latitude,
            "longitude": alert.longitude,
        }
    else:
        where = _("in the box %(min_lon)s, %(min_lat)s – %(max_lon)s, %(max_lat)s") % {
            "min_lon": alert.min_longitude,
            "min_lat": alert.min_latitude,
            "max_lon": alert.max_longitude,
            "max_lat": alert.max_latitude,
        }
    if alert.categories:
        return _("%(where)s, categories: %(codes)s") % {
            "where": where,
            "codes": ", ".join(alert.categories),
        }
    return _("%(where)s, all categories") % {"where": where}


def report_summary(report: Signalement) -> dict:
    """What an email to anyone but the reporter says of a report: its public fields,
    never its contact data nor who filed it."""
    return {
        "reference": report.reference,
        "title": report.title,
        "description": report.description,
        "category": report.category.name if report.category_id else "",
        "address": report.address,
        "created_at": report.created_at,
        "url": emails.report_url(report.pk),
    }


@retried_task(delays=emails.RETRY_DELAYS)
def send_confirmation_email(subscription_id: int) -> str:
    """The link that confirms a follow or an alert, to its address."""
    subscription = (
        Subscription.objects.select_related("signalement").filter(pk=subscription_id).first()
    )
    if subscription is None:
        return "subscription deleted"
    if subscription.is_confirmed:
        return "confirmed already"
    with translation.override(subscription.language):
        if subscription.kind == Subscription.Kind.FOLLOW:
            reference = subscription.signalement.reference
            subject = _("[%(reference)s] Confirm that you follow this report") % {
                "reference": reference
            }
            template, context = "confirm_follow", {"reference": reference}
        else:
            subject = _("Confirm your alert about new reports")
            template, context = "confirm_alert", {"alert": area_description(subscription)}
        context.update(
            confirm_url=confirm_url(subscription),
            days=settings.SUBSCRIPTION_CONFIRM_DAYS,
            frequency=subscription.get_frequency_display(),
        )
        message = emails.compose(template, to=subscription.email, subject=subject, context=context)
    message.send()
    return "sent"


# --- Retention and erasure -----------------------------------------------------------------


def forget(*, user) -> int:
    """Delete every follow and alert of `user`: made while logged in, or at their
    account's address or one of the contact addresses given with their reports (their
    request to erase their contact data). Returns how many."""
    addresses = {user.email} | set(
        Signalement.objects.filter(reporter=user)
        .exclude(contact_email="")
        .values_list("contact_email", flat=True)
        .distinct()
    )
    condition = Q(user=user)
    for address in filter(None, addresses):
        condition |= Q(email__iexact=address)
    return Subscription.objects.filter(condition).delete()[1].get(Subscription._meta.label, 0)


def prune_unconfirmed(*, now: datetime | None = None, dry_run: bool = False) -> int:
    """Delete the subscriptions whose address was not confirmed within
    SUBSCRIPTION_CONFIRM_DAYS (their link has expired). Returns how many."""
    cutoff = (now or timezone.now()) - confirm_period()
    stale = Subscription.objects.filter(confirmed_at__isnull=True, created_at__lt=cutoff)
    if dry_run:
        return stale.count()
    return stale.delete()[1].get(Subscription._meta.label, 0)
