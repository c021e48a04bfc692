"""Follows and alerts (`signalements/subscriptions.py`):

- `POST /api/signalements/{id}/follow/`: follow a report one may see (an action of the
  reports' viewset, `FollowActions`);
- `POST /api/alerts/`: an alert about new reports in a circle or a box;
- `GET|POST /api/subscriptions/confirm/{token}/`: what a confirmation link names; POST
  confirms it;
- `GET|POST /api/subscriptions/unsubscribe/{token}/`: what an unsubscribe link stops;
  POST stops it (RFC 8058's one-click POST, whatever its body).

The answer to a follow or an alert is a 202 with the same body whether the address was
subscribed or not; no answer holds an address. The links' pages answer in JSON, or in
HTML to a browser (a page with the button that POSTs), in the request's language."""

from django.utils.translation import gettext as _
from rest_framework import exceptions, renderers, serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from signalements import subscriptions
from signalements.languages import active_language
from signalements.models import Subscription

from .. import schema
from ..serializers.subscriptions import (
    ConfirmationSerializer,
    FollowSerializer,
    SubscriptionAcceptedSerializer,
    UnsubscriptionSerializer,
    alert_serializer,
)
from ..throttling import SubscribeThrottle
from .base import MethodFirst


def throttle_address(request, email: str) -> None:
    """One more request for this address (THROTTLE_SUBSCRIBE, counted per address)."""
    wait = SubscribeThrottle().wait_for_address(email)
    if wait is not None:
        raise exceptions.Throttled(wait)


def accepted(confirmation_required: bool, *, alert: bool) -> Response:
    if confirmation_required:
        detail = _(
            "If this address can receive emails, a link to confirm was sent to it: "
            "nothing else will be sent before it is followed."
        )
    elif alert:
        detail = _("Your account's address gets this alert.")
    else:
        detail = _("Your account's address follows this report.")
    body = {"detail": detail, "confirmation_required": confirmation_required}
    return Response(SubscriptionAcceptedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class FollowActions:
    """Anyone who may see a report follows it (a report they may not see is a 404)."""

    @action(
        detail=True,
        methods=["post"],
        permission_classes=[AllowAny],
        throttle_classes=[SubscribeThrottle],
        serializer_class=FollowSerializer,
        pagination_class=None,
        filterset_class=None,
    )
    def follow(self, request, pk=None):
        signalement = self.get_object()
        payload = FollowSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        email = payload.validated_data.get("email", "")
        if not email and request.user.is_authenticated:
            email = request.user.email
        if not email:
            raise serializers.ValidationError(
                {"email": [_("Give the email address that will follow the report.")]},
                code="email_required",
            )
        throttle_address(request, email)
        confirmation_required = subscriptions.follow(
            signalement=signalement,
            email=email,
            user=request.user,
            language=active_language(),
        )
        return accepted(confirmation_required, alert=False)


@schema.alerts
class AlertsView(MethodFirst, APIView):
    """Alerts about new public reports in an area, of some categories or all."""

    permission_classes = [AllowAny]
    throttle_classes = [SubscribeThrottle]

    def post(self, request):
        payload = alert_serializer(request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        throttle_address(request, data["email"])
        area = subscriptions.Area(
            kind=data["kind"],
            latitude=data.get("lat"),
            longitude=data.get("lng"),
            radius_m=data.get("radius_m"),
            bbox=data.get("bbox"),
        )
        confirmation_required = subscriptions.subscribe_alert(
            email=data["email"],
            area=area,
            categories=data["categories"],
            frequency=data["frequency"],
            user=request.user,
            language=active_language(),
        )
        return accepted(confirmation_required, alert=True)


class PageRenderer(renderers.TemplateHTMLRenderer):
    """The page of a link, for a browser (its template is the response's). An error is
    not a page: the API's error JSON, served as `application/json`."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        renderer_context = renderer_context or {}
        response = renderer_context.get("response")
        if response is not None and (response.exception or response.status_code >= 400):
            # Response.rendered_content sets Content-Type before calling render().
            response["Content-Type"] = renderers.JSONRenderer.media_type
            return renderers.JSONRenderer().render(data, None, renderer_context)
        return super().render(data, accepted_media_type, renderer_context)


class LinkView(MethodFirst, APIView):
    """A link from an email: the token in its path is the only credential (no login, no
    CSRF: a mail client's one-click POST carries no cookie)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    renderer_classes = [renderers.JSONRenderer, PageRenderer]
    template_name = ""

    def page(self, data: dict, serializer_class) -> Response:
        return Response(serializer_class(data).data, template_name=self.template_name)

    @staticmethod
    def refused(error: subscriptions.InvalidToken):
        if error.expired:
            return exceptions.NotFound(_("This link has expired: ask again."))
        return exceptions.NotFound(_("This link is not valid, or what it named is gone."))


def described(subscription: Subscription) -> dict:
    if subscription.kind == Subscription.Kind.FOLLOW:
        reference = subscription.signalement.reference
        return {
            "kind": "follow",
            "reference": reference,
            "description": _("Follow the report %(reference)s: its status changes and updates.")
            % {"reference": reference},
        }
    return {
        "kind": "alert",
        "reference": None,
        "description": _("Alerts about new reports %(area)s.")
        % {"area": subscriptions.area_description(subscription)},
    }


@schema.subscription_confirm
class ConfirmView(LinkView):
    """A confirmation link: GET says what it confirms, POST confirms it."""

    template_name = "signalements/api/subscription_confirm.html"

    def get(self, request, token):
        try:
            subscription = subscriptions.pending(token)
        except subscriptions.InvalidToken as error:
            raise self.refused(error) from None
        return self.page(
            {**described(subscription), "confirmed": subscription.is_confirmed},
            ConfirmationSerializer,
        )

    def post(self, request, token):
        try:
            subscription = subscriptions.confirm(token)
        except subscriptions.InvalidToken as error:
            raise self.refused(error) from None
        return self.page({**described(subscription), "confirmed": True}, ConfirmationSerializer)


def stopped(found: subscriptions.Unsubscription) -> dict:
    if found.kind == "alert":
        if found.subscription is None:
            description = _("An alert about new reports, already stopped.")
        else:
            description = _("Alerts about new reports %(area)s.") % {
                "area": subscriptions.area_description(found.subscription)
            }
        return {"kind": "alert", "reference": None, "description": description}
    reference = found.signalement.reference if found.signalement is not None else None
    return {
        "kind": "report",
        "reference": reference,
        "description": _("The emails about the report %(reference)s to this address.")
        % {"reference": reference or "—"},
    }


@schema.subscription_unsubscribe
class UnsubscribeView(LinkView):
    """An unsubscribe link: GET says what it stops, POST stops it (one click)."""

    template_name = "signalements/api/subscription_unsubscribe.html"

    def get(self, request, token):
        try:
            found = subscriptions.unsubscription(token)
        except subscriptions.InvalidToken as error:
            raise self.refused(error) from None
        return self.page(
            {**stopped(found), "subscribed": found.subscribed}, UnsubscriptionSerializer
        )

    def post(self, request, token):
        try:
            found = subscriptions.unsubscribe(token)
        except subscriptions.InvalidToken as error:
            raise self.refused(error) from None
        return self.page({**stopped(found), "subscribed": False}, UnsubscriptionSerializer)
