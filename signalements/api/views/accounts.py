"""Accounts: `/api/auth/token/` (log in for an API token; revoke all of yours),
`/api/auth/tokens/` (your tokens: list them, revoke one), `/api/me/` (who am I) and
`/api/me/erase-contact-data/` (the right to erasure)."""

from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from knox.models import AuthToken
from knox.settings import knox_settings
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from signalements import replicas, retention, subscriptions
from signalements.roles import role_of

from .. import schema
from ..serializers import ErasedContactDataSerializer, MeSerializer, TokenRequestSerializer
from ..serializers.accounts import ApiTokenSerializer, TokenSerializer
from ..throttling import LoginThrottle
from .base import MethodFirst


@schema.auth_token
@method_decorator(never_cache, name="dispatch")  # a token: kept by no cache
class AuthTokenView(MethodFirst, APIView):
    """API tokens: a username and password exchanged for a new token (each login makes
    one, valid `TOKEN_TTL_DAYS`; the user's expired ones are deleted then); all of the
    caller's tokens revoked (a logout everywhere, as when a user had a single token; one
    token alone is revoked through `ApiTokenViewSet`)."""

    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [IsAuthenticated()]
        return super().get_permissions()

    def get_throttles(self):
        if self.request.method == "DELETE":
            return []
        return super().get_throttles()

    def post(self, request):
        payload = TokenRequestSerializer(data=request.data, context={"request": request._request})
        payload.is_valid(raise_exception=True)
        user = payload.validated_data["user"]
        AuthToken.objects.filter(user=user, expiry__lte=timezone.now()).delete()
        token, key = AuthToken.objects.create(user=user)
        # Its next reads find it, on a replica behind the primary too (replicas.py).
        replicas.handed_out("Authorization", f"{knox_settings.AUTH_HEADER_PREFIX} {key}")
        return Response(
            TokenSerializer({"token": key, "expiry": token.expiry, "prefix": token.token_key}).data
        )

    def delete(self, request):
        AuthToken.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.auth_tokens
@method_decorator(never_cache, name="dispatch")
class ApiTokenViewSet(MethodFirst, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's own tokens that still work, newest first, named by their prefix
    (never the token, which the server does not keep); one revoked by its prefix. Another
    user's token is a 404, as an unknown one."""

    serializer_class = ApiTokenSerializer
    permission_classes = [IsAuthenticated]
    lookup_field = "token_key"
    lookup_url_kwarg = "prefix"
    # Printable ASCII but "/", as long as a prefix can be (knox: 25).
    lookup_value_regex = "[!-.0-~]{1,25}"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema's generation
            return AuthToken.objects.none()
        return AuthToken.objects.filter(
            Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()), user=self.request.user
        ).order_by("-created", "digest")

    def destroy(self, request, prefix: str):
        # By a filter, not get_object(): two tokens of one user could (very rarely) share
        # their first characters; both go.
        deleted, _ = self.get_queryset().filter(token_key=prefix).delete()
        if not deleted:
            raise Http404
        return Response(status=status.HTTP_204_NO_CONTENT)


@schema.me
class MeView(MethodFirst, APIView):
    """Who the credentials belong to, and their role."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        user = request.user
        return Response(
            MeSerializer(
                {
                    "id": user.pk,
                    "username": user.get_username(),
                    "email": user.email,
                    "role": role_of(user),
                }
            ).data
        )


@schema.erase_contact_data
class EraseContactDataView(MethodFirst, APIView):
    """The caller's right to erasure of the contact data given with their reports, and of
    their follows and alerts."""

    permission_classes = [IsAuthenticated]

    def post(self, request):
        # The follows and alerts first: the reports' contact addresses find them.
        unsubscribed = subscriptions.forget(user=request.user)
        erased = retention.erase_contact_data(user=request.user)
        return Response(
            ErasedContactDataSerializer({"erased": erased, "subscriptions": unsubscribed}).data
        )
