"""Request shapes (types, presence, format) and response shapes for accounts.

Uniqueness and password strength are rules, checked in ``accounts.services``.
"""

from rest_framework import serializers

from accounts.models import EMAIL_MAX_LENGTH, USERNAME_MAX_LENGTH, User, username_validator

PASSWORD_MAX_LENGTH = 256  # bounds the hashing cost of a hostile request


class RegisterSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=USERNAME_MAX_LENGTH, validators=[username_validator])
    email = serializers.EmailField(max_length=EMAIL_MAX_LENGTH)
    password = serializers.CharField(max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, write_only=True)


class LoginSerializer(serializers.Serializer):
    # Not an EmailField: a malformed address is just another failed login (same 401).
    email = serializers.CharField(max_length=EMAIL_MAX_LENGTH)
    password = serializers.CharField(max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, write_only=True)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="HS256 JWT, valid 24 h; send as `Authorization: Bearer <token>`.")


class ProfileUpdateSerializer(serializers.Serializer):
    """Both optional; any other key (``password``, ``id``, ...) is ignored."""

    username = serializers.CharField(max_length=USERNAME_MAX_LENGTH, validators=[username_validator], required=False)
    email = serializers.EmailField(max_length=EMAIL_MAX_LENGTH, required=False)
    read_receipts = serializers.BooleanField(
        required=False, help_text="Whether others see when you have read their messages."
    )
    push_show_content = serializers.BooleanField(
        required=False,
        help_text="Whether push notifications carry an excerpt of the message (off by default: they pass "
        "through Google's, Apple's or Mozilla's push services).",
    )


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "created", "read_receipts", "push_show_content"]
        read_only_fields = fields


class UserUpdatedSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "updated", "read_receipts", "push_show_content"]
        read_only_fields = fields


class PasswordChangeSerializer(serializers.Serializer):
    current_password = serializers.CharField(max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, write_only=True)
    new_password = serializers.CharField(max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, write_only=True)
    forget_devices = serializers.BooleanField(
        default=False, help_text="Also remove every push target (a lost or stolen device stops getting notifications)."
    )


class TicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="Single use; open the socket with /ws?ticket=<ticket>.")
    expires_in = serializers.IntegerField(help_text="Seconds the ticket stays valid.")
