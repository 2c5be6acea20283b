"""Fan-out of domain events to users' devices; the only caller of group_send.

Every event leaves after the surrounding transaction commits, so no device
hears about a row that may still roll back. Each user has one group, joined
by every socket (device) of theirs on any process.
"""

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from messaging.models import Message
from messaging.serializers import deleted_frame, edited_frame, message_frame

logger = logging.getLogger(__name__)


def user_group(user_id: uuid.UUID | str) -> str:
    return f"user.{uuid.UUID(str(user_id)).hex}"


def _participants(message: Message) -> list[uuid.UUID]:
    conversation = message.conversation
    return [pk for pk in (conversation.user_a_id, conversation.user_b_id) if pk]


def _send_on_commit(user_ids: Iterable[uuid.UUID], event: dict[str, Any]) -> None:
    groups = [user_group(pk) for pk in dict.fromkeys(user_ids)]

    async def send() -> None:
        layer = get_channel_layer()
        for group in groups:
            await layer.group_send(group, event)

    def deliver() -> None:
        try:
            async_to_sync(send)()
        except Exception:
            # The row is committed; devices that miss this catch up on reconnect.
            logger.exception("Channel layer send failed for %s", event["type"])

    transaction.on_commit(deliver)


def message_created(message: Message) -> None:
    _send_on_commit(
        _participants(message),
        {
            "type": "chat.message",
            "frame": message_frame(message),
            "conversation": str(message.conversation_id),
            "sender": str(message.sender_id),
            "seq": message.seq,
        },
    )


def message_edited(message: Message) -> None:
    _send_on_commit(_participants(message), {"type": "chat.event", "frame": edited_frame(message)})


def message_deleted(message: Message) -> None:
    _send_on_commit(_participants(message), {"type": "chat.event", "frame": deleted_frame(message)})


def user_tokens_revoked(user_id: uuid.UUID, token_version: int) -> None:
    """Every socket of the user authenticated with an older token version closes."""
    _send_on_commit([user_id], {"type": "session.revoked", "token_version": token_version})
