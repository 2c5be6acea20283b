"""The REST shapes: queries parsed, answers written (the WebSocket's frames are
in messaging.frames, whose helpers these share).

The seed's fields (``from``/``to``, ``sender_id``/``receiver_id``) are derived
from the conversation: for a direct conversation the receiver is its other member.
"""

import keyword
import math
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging.frames import attachment_data, attachments_of, iso, receiver_id
from messaging.models import GROUP_MAX_MEMBERS, GROUP_TITLE_MAX_LENGTH, Message
from messaging.rules import PAGE_DEFAULT, PAGE_MAX, clamp_limit, is_current
from messaging.search.selectors import SEARCH_QUERY_MAX_LENGTH


class KeywordNamedFields:
    """Output fields named after Python keywords (``from``, ``with``) are
    declared with a trailing underscore (``from_``); they go out without it."""

    def get_fields(self) -> dict:
        return {
            (name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name): field
            for name, field in super().get_fields().items()
        }


class AttachmentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    url = serializers.CharField(help_text="Download (members of the conversation only).")

    def to_representation(self, attachment) -> dict:
        return attachment_data(attachment)


class HistoryMessageSerializer(KeywordNamedFields, serializers.Serializer):
    """``GET /chats/{userId}`` item: the seed's shape, timestamp in ISO 8601 (µs),
    read state as the Go server gives it, plus ``attachments`` when the message has files."""

    # The fields describe the output (the OpenAPI schema); history_item writes it.
    id = serializers.UUIDField()
    from_ = serializers.UUIDField()
    to = serializers.UUIDField(allow_null=True, help_text="The other member of a direct conversation; null in a group.")
    content = serializers.CharField()
    timestamp = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)
    is_read = serializers.BooleanField(help_text="Read by its receiver (see read_at).")
    read_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the receiver (in a group, the first other member) read it; "
        "null until then, and for readers who turned read receipts off.",
    )
    attachments = AttachmentSerializer(many=True, required=False, help_text="Only when the message has files.")

    def to_representation(self, message: Message) -> dict:
        return history_item(message)


def history_item(message: Message) -> dict[str, Any]:
    """A history page's item, built directly: DRF's field-by-field walk cost
    several times more than the page's queries on the hottest read."""
    item = {
        "id": str(message.id),
        "from": str(message.sender_id),
        "to": receiver_id(message),
        "content": message.content,
        "timestamp": iso(message.created_at),
        "edited_at": iso(message.edited_at),
        "is_read": message.is_read,
        "read_at": iso(message.read_at),
    }
    if files := attachments_of(message):
        item["attachments"] = [attachment_data(a) for a in files]
    return item


class ChangedMessageSerializer(KeywordNamedFields, serializers.ModelSerializer):
    """Edit, delete and mark-read responses: the seed README's fields (``sender_id``,
    ``receiver_id``, ``created_at``) and the running Go server's (``from``, ``to``,
    ``timestamp``, ``is_read``, ``read_at``), so a client of either works."""

    sender_id = serializers.UUIDField()
    receiver_id = serializers.SerializerMethodField()
    from_ = serializers.UUIDField(source="sender_id")
    to = serializers.SerializerMethodField(method_name="get_receiver_id")
    timestamp = serializers.DateTimeField(source="created_at")
    is_read = serializers.BooleanField(read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "sender_id",
            "receiver_id",
            "content",
            "is_deleted",
            "edited_at",
            "created_at",
            "from_",
            "to",
            "timestamp",
            "is_read",
            "read_at",
        ]

    def get_receiver_id(self, message: Message) -> str | None:
        return receiver_id(message)


class MessageContentSerializer(serializers.Serializer):
    # Shape only (a string is present); emptiness and length are rules in services.
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}], "example": 1705312800})
class TimestampField(serializers.Field):
    """Unix seconds (integer or fractional, as in the seed) or ISO 8601."""

    default_error_messages = {"invalid": "Expected unix seconds or an ISO 8601 date-time."}

    def to_internal_value(self, data: Any) -> datetime:
        try:
            seconds = float(data)
        except (TypeError, ValueError):
            seconds = None
        if seconds is not None:
            if not math.isfinite(seconds):
                self.fail("invalid")
            try:
                return datetime.fromtimestamp(seconds, tz=UTC)
            except (OverflowError, OSError, ValueError):
                self.fail("invalid")
        try:
            parsed = datetime.fromisoformat(str(data).replace("Z", "+00:00"))
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        except (ValueError, OverflowError):
            self.fail("invalid")


class PageQuerySerializer(serializers.Serializer):
    """``limit`` and ``cursor`` of every paged list (the cursor is the previous
    page's, from X-Next-Cursor); ``limit`` is always set, clamped once."""

    limit = serializers.IntegerField(
        min_value=1,
        default=PAGE_DEFAULT,
        help_text=f"Page size, default {PAGE_DEFAULT}; larger values are clamped to {PAGE_MAX}.",
    )
    cursor = serializers.CharField(
        required=False, help_text="Opaque cursor from the previous page's X-Next-Cursor header."
    )

    def validate_limit(self, value: int) -> int:
        return clamp_limit(value)


class HistoryQuerySerializer(PageQuerySerializer):
    before = TimestampField(
        required=False, help_text="Only messages created before this time (unix seconds or ISO 8601)."
    )


class PresenceSerializer(serializers.Serializer):
    online = serializers.BooleanField()
    last_seen = serializers.DateTimeField(allow_null=True)


class PeerSerializer(serializers.Serializer):
    """Another user as seen by a chat partner: never their email."""

    id = serializers.UUIDField()
    username = serializers.CharField()


class ConversationPeerSerializer(PeerSerializer):
    presence = PresenceSerializer()


class OtherUserSerializer(PeerSerializer):
    email = serializers.EmailField(
        required=False, help_text="Only when the server shares partners' emails (SHARE_PEER_EMAILS), as Go's did."
    )


class LastMessageSerializer(HistoryMessageSerializer):
    """A conversation list's last message: a history item with the sender's name,
    so a group's preview can say who wrote it."""

    sender_username = serializers.CharField(help_text="The sender's username now.")

    def to_representation(self, message: Message) -> dict:
        return {**history_item(message), "sender_username": message.sender.username}


class ConversationSerializer(KeywordNamedFields, serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    title = serializers.CharField(allow_null=True, help_text="A group's title; null for a direct conversation.")
    role = serializers.CharField(help_text="Mine: admin or member.")
    active = serializers.BooleanField(help_text="False once I left or was removed: I keep the history until then.")
    with_ = ConversationPeerSerializer(
        source="with_", allow_null=True, help_text="The other member of a direct conversation."
    )
    other_user = OtherUserSerializer(
        allow_null=True, help_text="The other member of a direct conversation, as the Go server named it."
    )
    last_message = LastMessageSerializer(allow_null=True)
    unread_count = serializers.IntegerField()
    muted = serializers.BooleanField(help_text="Mine: a muted conversation sends me no push notifications.")
    last_activity_at = serializers.DateTimeField()


def conversation_item(membership, last_message, online: set, user_id) -> dict:
    """The plain data a ConversationSerializer renders, for one membership."""
    conversation = membership.conversation
    other = conversation.user_b if conversation.user_a_id == user_id else conversation.user_a
    peer = other_user = None
    if other is not None:
        peer = {
            "id": other.id,
            "username": other.username,
            "presence": {"online": other.id in online, "last_seen": other.last_seen},
        }
        other_user = {"id": other.id, "username": other.username}
        if settings.SHARE_PEER_EMAILS:
            other_user["email"] = other.email
    return {
        "id": conversation.id,
        "kind": conversation.kind,
        "title": conversation.title if conversation.kind == conversation.Kind.GROUP else None,
        "role": membership.role,
        "active": is_current(membership),
        "with_": peer,
        "other_user": other_user,
        "last_message": last_message,
        "unread_count": membership.unread,
        "muted": membership.muted,
        "last_activity_at": membership.activity_at,
    }


class ConversationOpenSerializer(serializers.Serializer):
    user_id = serializers.UUIDField()


class MuteSerializer(serializers.Serializer):
    muted = serializers.BooleanField()


class ReadSerializer(serializers.Serializer):
    up_to = serializers.UUIDField(required=False, help_text="Read up to and including this message; default: all.")


class UnreadSerializer(serializers.Serializer):
    conversation = serializers.UUIDField()
    unread_count = serializers.IntegerField()


class UserSearchQuerySerializer(PageQuerySerializer):
    q = serializers.RegexField(
        r"^[A-Za-z0-9_.-]{0,32}$",
        required=False,
        allow_blank=True,
        help_text="Username prefix (case-insensitive). Missing or empty: no users (as the Go server answered).",
    )


class MessageEditSerializer(serializers.Serializer):
    editor = serializers.UUIDField(source="editor_id")
    edited_at = serializers.DateTimeField()
    previous_content = serializers.CharField()


class MemberSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="user_id")
    username = serializers.CharField(source="user.username")
    role = serializers.CharField()
    joined_at = serializers.DateTimeField()


class GroupCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=GROUP_TITLE_MAX_LENGTH)
    members = serializers.ListField(child=serializers.UUIDField(), max_length=GROUP_MAX_MEMBERS - 1)


class GroupRenameSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=GROUP_TITLE_MAX_LENGTH)


class MembersAddSerializer(serializers.Serializer):
    user_ids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=GROUP_MAX_MEMBERS)


class SearchQuerySerializer(PageQuerySerializer):
    q = serializers.CharField(
        max_length=SEARCH_QUERY_MAX_LENGTH, help_text="Words to find (PostgreSQL: websearch syntax)."
    )
    order = serializers.ChoiceField(
        ["recent", "best"], default="recent", help_text="Newest first, or best match first."
    )


class SearchResultSerializer(LastMessageSerializer):
    conversation = serializers.UUIDField()
    highlights = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="[start, end) character ranges of the matches in content.",
    )

    def to_representation(self, message: Message) -> dict:
        return {
            **super().to_representation(message),
            "conversation": str(message.conversation_id),
            "highlights": [list(span) for span in self.context["highlights"].get(str(message.id), [])],
        }
