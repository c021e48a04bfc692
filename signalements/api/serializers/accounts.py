"""Accounts: API tokens, who am I, the erasure of one's contact data."""

from django.contrib.auth import authenticate
from django.utils.translation import gettext as _
from knox.models import AuthToken
from rest_framework import serializers

from signalements.roles import Role

from ..throttling import check_login_lockout, login_failed, login_succeeded


class TokenRequestSerializer(serializers.Serializer):
    """A username and password, exchanged for a new API token."""

    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )

    def validate(self, attrs):
        # Refused without checking the password when the account is locked out from the
        # client's address (a 429, `signalements/lockout.py`); a failure counts towards
        # the lockout, a success forgets the failures.
        request = self.context["request"]
        username = attrs["username"]
        check_login_lockout(request, username)
        user = authenticate(request=request, username=username, password=attrs["password"])
        if user is None or not user.is_active:
            login_failed(request, username)
            raise serializers.ValidationError(
                _("Unable to log in with the credentials provided."), code="invalid_credentials"
            )
        login_succeeded(request, username)
        return {"user": user}


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(
        help_text="Send it as `Authorization: Token <token>`. Shown this once: the "
        "server keeps only its digest."
    )
    expiry = serializers.DateTimeField(
        allow_null=True,
        help_text="When the token stops working (`TOKEN_TTL_DAYS` after the login); null "
        "when it works until revoked.",
    )
    prefix = serializers.CharField(
        help_text="The token's first characters: how `GET /api/auth/tokens/` names it, "
        "and how to revoke it alone (`DELETE /api/auth/tokens/{prefix}/`)."
    )


class ApiTokenSerializer(serializers.ModelSerializer):
    """One of the caller's tokens, without its secret (which the server does not have)."""

    prefix = serializers.CharField(
        source="token_key",
        read_only=True,
        help_text="The token's first characters (the token itself is never shown again).",
    )
    current = serializers.SerializerMethodField(
        help_text="Whether this request was authenticated with this token."
    )

    class Meta:
        model = AuthToken
        fields = ["prefix", "created", "expiry", "current"]
        read_only_fields = fields
        extra_kwargs = {
            "created": {"help_text": "When it was made (at a login)."},
            "expiry": {"help_text": "When it stops working; null when it works until revoked."},
        }

    def get_current(self, token: AuthToken) -> bool:
        used = self.context["request"].auth
        return isinstance(used, AuthToken) and used.digest == token.digest


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices)


class ErasedContactDataSerializer(serializers.Serializer):
    erased = serializers.IntegerField(
        min_value=0,
        help_text="How many of your reports had contact data, now erased (0 when none had "
        "any left).",
    )
    subscriptions = serializers.IntegerField(
        min_value=0,
        help_text="How many follows and alerts of yours were deleted: asked for while "
        "logged in, or at your account's address or your reports' contact addresses.",
    )
