"""Fan-out of domain events to users' devices; the only caller of group_send.

Durable events (messages, edits, deletes, receipts, unread counts) are first
recorded in each recipient's event log with the next per-user ``seq``, inside
the caller's transaction; they are sent to the channel layer only after it
commits. A device that missed some (offline, cut off, or the channel layer
dropped them) gets them again from the log. Ephemeral events (presence,
typing) carry no seq and are not kept.

Each user has one group, joined by every socket (device) of theirs on any process.
"""

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from messaging.models import EventStream, Message, UserEvent
from messaging.serializers import deleted_frame, edited_frame, message_frame

logger = logging.getLogger(__name__)


def user_group(user_id: uuid.UUID | str) -> str:
    return f"user.{uuid.UUID(str(user_id)).hex}"


def participants(message: Message) -> list[uuid.UUID]:
    conversation = message.conversation
    return [pk for pk in (conversation.user_a_id, conversation.user_b_id) if pk]


def _send_after_commit(messages: list[tuple[uuid.UUID, dict[str, Any]]]) -> None:
    """group_send each (user, channel-layer message) once the transaction commits."""

    async def send() -> None:
        layer = get_channel_layer()
        for user_id, message in messages:
            await layer.group_send(user_group(user_id), message)

    def deliver() -> None:
        try:
            async_to_sync(send)()
        except Exception:
            # Durable events are in the log; devices that miss this catch up from it.
            logger.exception("Channel layer send failed for %s", messages[0][1].get("type"))

    transaction.on_commit(deliver)


def publish(frames: dict[uuid.UUID, dict[str, Any]], meta: dict[uuid.UUID, dict[str, Any]] | None = None) -> None:
    """Record ``frames[user]`` in each user's event log with their next seq, and
    send it to their devices after commit. ``meta`` rides along to the consumer
    (never to the client)."""
    if not frames:
        return
    user_ids = sorted(frames, key=lambda pk: pk.hex)
    with transaction.atomic():
        EventStream.objects.bulk_create([EventStream(user_id=pk) for pk in user_ids], ignore_conflicts=True)
        # Locked in one order (by user id) so concurrent publishers never deadlock.
        streams = list(EventStream.objects.select_for_update().filter(user_id__in=user_ids).order_by("user_id"))
        records = []
        for stream in streams:
            stream.last_seq += 1
            records.append(
                UserEvent(
                    user_id=stream.user_id,
                    seq=stream.last_seq,
                    frame={**frames[stream.user_id], "seq": stream.last_seq},
                )
            )
        EventStream.objects.bulk_update(streams, ["last_seq"])
        UserEvent.objects.bulk_create(records)
    meta = meta or {}
    _send_after_commit(
        [(r.user_id, {"type": "chat.event", "frame": r.frame, **meta.get(r.user_id, {})}) for r in records]
    )


def send_ephemeral(user_ids: Iterable[uuid.UUID], frame: dict[str, Any]) -> None:
    """Presence and typing: not logged, no seq; lost if nobody is connected."""
    _send_after_commit([(pk, {"type": "chat.event", "frame": frame}) for pk in dict.fromkeys(user_ids)])


def message_created(message: Message) -> None:
    frame = message_frame(message)
    publish(
        {pk: frame for pk in participants(message)},
        # The receiver's devices report delivery; the sender's devices do not.
        meta={
            pk: {"delivery": {"conversation": str(message.conversation_id), "seq": message.seq}}
            for pk in participants(message)
            if pk != message.sender_id
        },
    )


def message_edited(message: Message) -> None:
    publish({pk: edited_frame(message) for pk in participants(message)})


def message_deleted(message: Message) -> None:
    publish({pk: deleted_frame(message) for pk in participants(message)})


def user_tokens_revoked(user_id: uuid.UUID, token_version: int) -> None:
    """Every socket of the user authenticated with an older token version closes."""
    _send_after_commit([(user_id, {"type": "session.revoked", "token_version": token_version})])
