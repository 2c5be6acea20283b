"""Every WebSocket frame, defined once: a typed shape per frame, both ways,
the functions that build the server's, and the registries that
``docs/protocol.md`` is checked against (``messaging/tests/test_frames.py``)
and that the tests check every frame a socket receives against.

Frames are plain dicts on the wire and here (TypedDicts cost nothing at run
time, and the message frames are built on the hottest path). Fields named by
Python keywords (``from``, ``with``) use TypedDict's functional form.
"""

import uuid
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict, get_type_hints

from django.utils import timezone

from messaging.models import Message


def iso(value: datetime | None) -> str | None:
    """A time as every API shape gives it: ISO 8601 in the server's time zone
    (UTC), with microseconds when there are some and ``Z`` for UTC; what DRF's
    DateTimeField writes, so REST and WebSocket agree (a test holds them equal)."""
    if not value:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def receiver_id(message: Message) -> str | None:
    """The other member of a direct conversation (the seed's ``to``); None in a group."""
    other = message.conversation.other_user_id(message.sender_id)
    return str(other) if other else None


# ---- client -> server -------------------------------------------------------------


class DirectMessageIn(TypedDict):
    type: Literal["direct_message"]
    to: str
    content: str
    client_id: NotRequired[str]
    attachments: NotRequired[list[str]]


class GroupMessageIn(TypedDict):
    type: Literal["group_message"]
    conversation: str
    content: str
    client_id: NotRequired[str]
    attachments: NotRequired[list[str]]


class PingIn(TypedDict):
    type: Literal["ping"]


class SyncIn(TypedDict):
    type: Literal["sync"]
    since: int


ReadIn = TypedDict(
    "ReadIn",
    {"type": Literal["read"], "with": NotRequired[str], "conversation": NotRequired[str], "up_to": NotRequired[str]},
)


class TypingIn(TypedDict):
    type: Literal["typing"]
    to: NotRequired[str]
    conversation: NotRequired[str]
    typing: NotRequired[bool]


CLIENT_FRAMES: dict[str, type] = {
    "direct_message": DirectMessageIn,
    "group_message": GroupMessageIn,
    "ping": PingIn,
    "sync": SyncIn,
    "read": ReadIn,
    "typing": TypingIn,
}

# ---- server -> client -------------------------------------------------------------
# Logged frames (messages, edits, deletes, receipts, unread, group changes)
# carry the user's event ``seq``, added when they are logged (messaging.eventlog.events).


class Attachment(TypedDict):
    id: str
    name: str
    content_type: str
    size: int
    width: int | None
    height: int | None
    url: str


class Hello(TypedDict):
    type: Literal["hello"]
    user_id: str
    seq: int
    head: int


class OnlineUsers(TypedDict):
    type: Literal["online_users"]
    user_ids: list[str]


class Ack(TypedDict):
    type: Literal["ack"]
    id: str
    conversation: str
    client_id: str | None
    to: str | None
    timestamp: int
    created_at: str
    duplicate: bool


# The fields a direct and a group message share ("from" is a keyword: the functional form).
_MessageFields = TypedDict(
    "_MessageFields",
    {
        "seq": NotRequired[int],
        "id": str,
        "conversation": str,
        "from": str,
        "sender_username": str,
        "content": str,
        "timestamp": int,
        "created_at": str,
        "edited_at": NotRequired[str],
        "client_id": NotRequired[str],
        "attachments": NotRequired[list[Attachment]],
        "deleted": NotRequired[bool],  # a replay of a message deleted since: blanked
    },
)


class DirectMessage(_MessageFields):
    type: Literal["direct_message"]
    to: str | None


class GroupMessage(_MessageFields):
    type: Literal["group_message"]


class Member(TypedDict):
    id: str
    username: str


class ConversationCreated(TypedDict):
    type: Literal["conversation_created"]
    seq: NotRequired[int]
    conversation: str
    title: str
    by: str
    members: list[Member]


class ConversationRenamed(TypedDict):
    type: Literal["conversation_renamed"]
    seq: NotRequired[int]
    conversation: str
    title: str
    by: str


class MemberJoined(TypedDict):
    type: Literal["member_joined"]
    seq: NotRequired[int]
    conversation: str
    title: str
    by: str
    members: list[Member]


class MemberLeft(TypedDict):
    type: Literal["member_left"]
    seq: NotRequired[int]
    conversation: str
    title: str
    by: str
    user_id: str
    reason: Literal["left", "removed"]


class MessageEdited(TypedDict):
    type: Literal["message_edited"]
    seq: NotRequired[int]
    id: str
    conversation: str
    content: str
    edited_at: str
    attachments: NotRequired[list[Attachment]]  # only on a blanked replay: []
    deleted: NotRequired[bool]  # a replay of an edit of a message deleted since


class MessageDeleted(TypedDict):
    type: Literal["message_deleted"]
    seq: NotRequired[int]
    id: str
    conversation: str


class MessageDelivered(TypedDict):
    type: Literal["message_delivered"]
    seq: NotRequired[int]
    id: str
    ids: list[str]
    conversation: str
    to: str
    delivered_at: str


class MessageRead(TypedDict):
    type: Literal["message_read"]
    seq: NotRequired[int]
    id: str
    conversation: str
    reader: str
    read_at: str


class ConversationRead(TypedDict):
    type: Literal["conversation_read"]
    seq: NotRequired[int]
    conversation: str
    reader_id: str
    user_id: str
    read_at: str


Unread = TypedDict(
    "Unread",
    {
        "type": Literal["unread"],
        "seq": NotRequired[int],
        "conversation": str,
        "with": str | None,
        "count": int,
    },
)


class Presence(TypedDict):
    type: Literal["presence"]
    user_id: str
    online: bool
    last_seen: str | None
    version: int


class PresenceChange(TypedDict):
    type: Literal["presence_change"]
    user_id: str
    online: bool


Typing = TypedDict(
    "Typing",
    {"type": Literal["typing"], "from": str, "conversation": str, "typing": bool},
)


class Synced(TypedDict):
    type: Literal["synced"]
    seq: int


class ResyncRequired(TypedDict):
    type: Literal["resync_required"]
    seq: int
    oldest_seq: int
    detail: str


class Pong(TypedDict):
    type: Literal["pong"]


class Error(TypedDict):
    """chatserver.websocket.error_frame: a DomainError's ``as_dict``."""

    type: Literal["error"]
    code: str
    detail: str
    field: NotRequired[str]
    retry_after: NotRequired[float]
    client_id: NotRequired[str]


SERVER_FRAMES: dict[str, type] = {
    "hello": Hello,
    "online_users": OnlineUsers,
    "ack": Ack,
    "direct_message": DirectMessage,
    "group_message": GroupMessage,
    "conversation_created": ConversationCreated,
    "conversation_renamed": ConversationRenamed,
    "member_joined": MemberJoined,
    "member_left": MemberLeft,
    "message_edited": MessageEdited,
    "message_deleted": MessageDeleted,
    "message_delivered": MessageDelivered,
    "message_read": MessageRead,
    "conversation_read": ConversationRead,
    "unread": Unread,
    "presence": Presence,
    "presence_change": PresenceChange,
    "typing": Typing,
    "synced": Synced,
    "resync_required": ResyncRequired,
    "pong": Pong,
    "error": Error,
}

# The frames that carry a message (its text, its files): a device's receipt
# reports them, a deletion scrubs them from the log.
MESSAGE_FRAMES = frozenset({"direct_message", "group_message"})


def message_of(frame: dict[str, Any]) -> tuple[str | None, str | None]:
    """(message id, sender id) of a message frame; (None, None) for any other."""
    if frame["type"] in MESSAGE_FRAMES:
        return frame["id"], frame["from"]
    return None, None


def receipt_for(message_id: str | None, sender_id: str | None, user_id: str) -> str | None:
    """The delivery rule: a device of ``user_id`` that was sent a message frame
    reports that message delivered, unless the user sent it."""
    return message_id if message_id is not None and sender_id != user_id else None


def shape_problems(frame: Any, registry: dict[str, type] = SERVER_FRAMES) -> list[str]:
    """What makes ``frame`` not a frame of ``registry``: an unknown type, a
    missing required field, a field its shape does not have (top level)."""
    if not isinstance(frame, dict) or frame.get("type") not in registry:
        return [f"unknown frame {frame!r}"]
    shape = registry[frame["type"]]
    fields = set(get_type_hints(shape))
    problems = [f"{frame['type']}: missing {name}" for name in sorted(shape.__required_keys__ - set(frame))]
    problems += [f"{frame['type']}: unexpected {name}" for name in sorted(set(frame) - fields)]
    return problems


# ---- builders of the server's frames ----------------------------------------------


def attachments_of(message: Message) -> list:
    """The message's files: set by the send, or prefetched by the selectors."""
    if hasattr(message, "attachment_list"):
        return message.attachment_list
    return list(message.attachments.all())


def attachment_data(attachment) -> Attachment:
    return {
        "id": str(attachment.id),
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "url": f"/attachments/{attachment.id}",
    }


def message_frame(message: Message) -> DirectMessage | GroupMessage:
    """``direct_message`` (seed fields plus id, to, created_at), or
    ``group_message`` (no ``to``) for a group."""
    group = message.conversation.kind == message.conversation.Kind.GROUP
    frame = {
        "type": "group_message" if group else "direct_message",
        "id": str(message.id),
        "conversation": str(message.conversation_id),
        "from": str(message.sender_id),
        "sender_username": message.sender.username,
        **({} if group else {"to": receiver_id(message)}),
        "content": message.content,
        "timestamp": int(message.created_at.timestamp()),
        "created_at": iso(message.created_at),
    }
    if message.edited_at:
        frame["edited_at"] = iso(message.edited_at)
    if message.client_id:
        frame["client_id"] = message.client_id
    if files := attachments_of(message):
        frame["attachments"] = [attachment_data(a) for a in files]
    return frame  # type: ignore[return-value]


def ack_frame(message: Message, *, duplicate: bool) -> Ack:
    """Sent to the sending socket once the message is stored."""
    return {
        "type": "ack",
        "id": str(message.id),
        "conversation": str(message.conversation_id),
        "client_id": message.client_id,
        "to": receiver_id(message),
        "timestamp": int(message.created_at.timestamp()),
        "created_at": iso(message.created_at),
        "duplicate": duplicate,
    }


def edited_frame(message: Message) -> MessageEdited:
    return {
        "type": "message_edited",
        "id": str(message.id),
        "conversation": str(message.conversation_id),
        "content": message.content,
        "edited_at": iso(message.edited_at),
    }


def deleted_frame(message: Message) -> MessageDeleted:
    return {"type": "message_deleted", "id": str(message.id), "conversation": str(message.conversation_id)}


def delivered_frame(
    conversation_id: uuid.UUID, receiver: uuid.UUID, ids: list[uuid.UUID], at: datetime
) -> MessageDelivered:
    """To the sender: these messages reached a device of the receiver."""
    return {
        "type": "message_delivered",
        "id": str(ids[-1]),
        "ids": [str(pk) for pk in ids],
        "conversation": str(conversation_id),
        "to": str(receiver),
        "delivered_at": iso(at),
    }


def read_frame(conversation_id: uuid.UUID, reader_id: uuid.UUID, up_to: uuid.UUID, at: datetime) -> MessageRead:
    """To the sender: the reader has read everything up to and including ``up_to``."""
    return {
        "type": "message_read",
        "id": str(up_to),
        "conversation": str(conversation_id),
        "reader": str(reader_id),
        "read_at": iso(at),
    }


def conversation_read_frame(
    conversation_id: uuid.UUID, reader_id: uuid.UUID, other_id: uuid.UUID, at: datetime
) -> ConversationRead:
    """To both members of a direct conversation (the Go server's frame): ``reader_id``
    read what ``user_id`` sent them; to the reader's devices only when the reader
    turned read receipts off."""
    return {
        "type": "conversation_read",
        "conversation": str(conversation_id),
        "reader_id": str(reader_id),
        "user_id": str(other_id),
        "read_at": iso(at),
    }


def unread_frame(conversation_id: uuid.UUID, with_user: uuid.UUID | None, count: int) -> Unread:
    """To the reader's own devices: the conversation's unread count changed."""
    return {
        "type": "unread",
        "conversation": str(conversation_id),
        "with": str(with_user) if with_user else None,
        "count": count,
    }


def presence_frame(user_id: uuid.UUID, online: bool, last_seen: datetime | None, version: int) -> Presence:
    """``version`` grows with every change of this user's presence: a client keeps
    the highest it has seen and ignores older frames (processes race)."""
    return {
        "type": "presence",
        "user_id": str(user_id),
        "online": online,
        "last_seen": iso(last_seen),
        "version": version,
    }


def presence_change_frame(user_id: uuid.UUID, online: bool) -> PresenceChange:
    """The Go server's presence frame, sent beside ``presence``."""
    return {"type": "presence_change", "user_id": str(user_id), "online": online}


def online_users_frame(user_ids: list[uuid.UUID]) -> OnlineUsers:
    """After ``hello``: which of the user's contacts are online (the Go server's
    frame; it listed everyone online, this server only contacts)."""
    return {"type": "online_users", "user_ids": [str(pk) for pk in user_ids]}


def typing_frame(from_id: uuid.UUID, conversation_id: uuid.UUID, typing: bool) -> Typing:
    return {"type": "typing", "from": str(from_id), "conversation": str(conversation_id), "typing": typing}


def member_frame(user) -> Member:
    return {"id": str(user.id), "username": user.username}


def group_frame(kind: str, conversation, by: uuid.UUID, **fields: Any) -> dict[str, Any]:
    """``conversation_created`` / ``conversation_renamed`` / ``member_joined`` /
    ``member_left``: changes to a group, to its members' devices."""
    return {"type": kind, "conversation": str(conversation.id), "title": conversation.title, "by": str(by), **fields}


def hello_frame(user_id: uuid.UUID, seq: int, head: int) -> Hello:
    return {"type": "hello", "user_id": str(user_id), "seq": seq, "head": head}


def synced_frame(seq: int) -> Synced:
    return {"type": "synced", "seq": seq}


def resync_required_frame(head: int, pruned_through: int) -> ResyncRequired:
    return {
        "type": "resync_required",
        "seq": head,
        "oldest_seq": pruned_through + 1,
        "detail": "Fetch state over REST, then resume from seq.",
    }


PONG = '{"type":"pong"}'  # sent as text: the same bytes every time
