"""One output shape per message view, shared by REST and WebSocket.

The seed's fields (``from``/``to``, ``sender_id``/``receiver_id``) are derived
from the conversation: for a direct conversation the receiver is its other member.
"""

import keyword
import math
import uuid
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging.models import GROUP_MAX_MEMBERS, GROUP_TITLE_MAX_LENGTH, Message
from messaging.rules import PAGE_DEFAULT, PAGE_MAX, clamp_limit, is_current

_DATETIME = serializers.DateTimeField()  # one instance: building a field per frame showed in profiles


def _iso(value: datetime | None) -> str | None:
    return _DATETIME.to_representation(value) if value else None


def _receiver_id(message: Message) -> str | None:
    other = message.conversation.other_user_id(message.sender_id)
    return str(other) if other else None


def message_frame(message: Message) -> dict[str, Any]:
    """The ``direct_message`` WebSocket frame (seed fields plus id, to, created_at),
    or ``group_message`` (no ``to``) for a group."""
    group = message.conversation.kind == message.conversation.Kind.GROUP
    frame = {
        "type": "group_message" if group else "direct_message",
        "id": str(message.id),
        "conversation": str(message.conversation_id),
        "from": str(message.sender_id),
        "sender_username": message.sender.username,
        **({} if group else {"to": _receiver_id(message)}),
        "content": message.content,
        "timestamp": int(message.created_at.timestamp()),
        "created_at": _iso(message.created_at),
    }
    if message.edited_at:
        frame["edited_at"] = _iso(message.edited_at)
    if message.client_id:
        frame["client_id"] = message.client_id
    if files := attachments_of(message):
        frame["attachments"] = [attachment_data(a) for a in files]
    return frame


def attachments_of(message: Message) -> list:
    """The message's files: set by the send, or prefetched by the selectors."""
    if hasattr(message, "attachment_list"):
        return message.attachment_list
    return list(message.attachments.all())


def attachment_data(attachment) -> dict[str, Any]:
    return {
        "id": str(attachment.id),
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "url": f"/attachments/{attachment.id}",
    }


def ack_frame(message: Message, *, duplicate: bool) -> dict[str, Any]:
    """Sent to the sending socket once the message is stored."""
    return {
        "type": "ack",
        "id": str(message.id),
        "conversation": str(message.conversation_id),
        "client_id": message.client_id,
        "to": _receiver_id(message),
        "timestamp": int(message.created_at.timestamp()),
        "created_at": _iso(message.created_at),
        "duplicate": duplicate,
    }


def edited_frame(message: Message) -> dict[str, Any]:
    return {
        "type": "message_edited",
        "id": str(message.id),
        "conversation": str(message.conversation_id),
        "content": message.content,
        "edited_at": _iso(message.edited_at),
    }


def deleted_frame(message: Message) -> dict[str, Any]:
    return {"type": "message_deleted", "id": str(message.id), "conversation": str(message.conversation_id)}


def delivered_frame(conversation_id: uuid.UUID, receiver_id: uuid.UUID, ids: list[uuid.UUID], at: datetime) -> dict:
    """To the sender: these messages reached a device of the receiver."""
    return {
        "type": "message_delivered",
        "id": str(ids[-1]),
        "ids": [str(pk) for pk in ids],
        "conversation": str(conversation_id),
        "to": str(receiver_id),
        "delivered_at": _iso(at),
    }


def read_frame(conversation_id: uuid.UUID, reader_id: uuid.UUID, up_to: uuid.UUID, at: datetime) -> dict:
    """To the sender: the reader has read everything up to and including ``up_to``."""
    return {
        "type": "message_read",
        "id": str(up_to),
        "conversation": str(conversation_id),
        "reader": str(reader_id),
        "read_at": _iso(at),
    }


def conversation_read_frame(
    conversation_id: uuid.UUID, reader_id: uuid.UUID, other_id: uuid.UUID, at: datetime
) -> dict:
    """To both members of a direct conversation (the Go server's frame): ``reader_id``
    read what ``user_id`` sent them; to the reader's devices only when the reader
    turned read receipts off."""
    return {
        "type": "conversation_read",
        "conversation": str(conversation_id),
        "reader_id": str(reader_id),
        "user_id": str(other_id),
        "read_at": _iso(at),
    }


def unread_frame(conversation_id: uuid.UUID, with_user: uuid.UUID | None, count: int) -> dict:
    """To the reader's own devices: the conversation's unread count changed."""
    return {
        "type": "unread",
        "conversation": str(conversation_id),
        "with": str(with_user) if with_user else None,
        "count": count,
    }


def presence_frame(user_id: uuid.UUID, online: bool, last_seen: datetime | None, version: int) -> dict:
    """``version`` grows with every change of this user's presence: a client keeps
    the highest it has seen and ignores older frames (processes race)."""
    return {
        "type": "presence",
        "user_id": str(user_id),
        "online": online,
        "last_seen": _iso(last_seen),
        "version": version,
    }


def presence_change_frame(user_id: uuid.UUID, online: bool) -> dict:
    """The Go server's presence frame, sent beside ``presence``."""
    return {"type": "presence_change", "user_id": str(user_id), "online": online}


def online_users_frame(user_ids: list[uuid.UUID]) -> dict:
    """After ``hello``: which of the user's contacts are online (the Go server's
    frame; it listed everyone online, this server only contacts)."""
    return {"type": "online_users", "user_ids": [str(pk) for pk in user_ids]}


def typing_frame(from_id: uuid.UUID, conversation_id: uuid.UUID, typing: bool) -> dict:
    return {"type": "typing", "from": str(from_id), "conversation": str(conversation_id), "typing": typing}


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
        "to": _receiver_id(message),
        "content": message.content,
        "timestamp": _iso(message.created_at),
        "edited_at": _iso(message.edited_at),
        "is_read": message.is_read,
        "read_at": _iso(message.read_at),
    }
    if files := attachments_of(message):
        item["attachments"] = [attachment_data(a) for a in files]
    return item


class MessageSerializer(KeywordNamedFields, serializers.ModelSerializer):
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
        return _receiver_id(message)


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


def member_frame(user) -> dict[str, Any]:
    return {"id": str(user.id), "username": user.username}


def group_frame(kind: str, conversation, by: uuid.UUID, **fields: Any) -> dict[str, Any]:
    """``conversation_created`` / ``conversation_renamed`` / ``member_joined`` /
    ``member_left``: changes to a group, to its members' devices."""
    return {"type": kind, "conversation": str(conversation.id), "title": conversation.title, "by": str(by), **fields}


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
    q = serializers.CharField(max_length=200, help_text="Words to find (PostgreSQL: websearch syntax).")
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
