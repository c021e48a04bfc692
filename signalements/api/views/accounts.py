"""Accounts: `/api/auth/token/` (get or revoke an API token), `/api/me/` (who am I) and
`/api/me/erase-contact-data/` (the right to erasure)."""

from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from signalements import retention, subscriptions
from signalements.roles import role_of

from .. import schema
from ..serializers import ErasedContactDataSerializer, MeSerializer, TokenRequestSerializer
from ..throttling import LoginThrottle
from .base import MethodFirst


@schema.auth_token
class AuthTokenView(MethodFirst, APIView):
    """API tokens: exchange a username and password for a token; revoke it."""

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
        token, _ = Token.objects.get_or_create(user=payload.validated_data["user"])
        return Response({"token": token.key})

    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
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
