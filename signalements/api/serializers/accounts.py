"""Accounts: API tokens, who am I, the erasure of one's contact data."""

from django.contrib.auth import authenticate
from django.utils.translation import gettext as _
from rest_framework import serializers

from signalements.roles import Role


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )

    def validate(self, attrs):
        user = authenticate(
            request=self.context.get("request"),
            username=attrs["username"],
            password=attrs["password"],
        )
        if user is None or not user.is_active:
            raise serializers.ValidationError(
                _("Unable to log in with the credentials provided."), code="invalid_credentials"
            )
        return {"user": user}


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")


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
