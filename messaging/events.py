"""Fan-out of domain events to users' devices; the only caller of group_send.

Durable events (messages, edits, deletes, receipts, unread counts) are first
recorded in each recipient's event log with the next per-user ``seq``, inside
the caller's transaction; they are sent to the channel layer only after it
commits. A device that missed some (offline, cut off, or the channel layer
dropped them) gets them again from the log. Ephemeral events (presence,
typing) carry no seq and are not kept.

Each user has one group, joined by every socket (device) of theirs on any process.
"""

import asyncio
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from chatserver import metrics
from chatserver.db import calling_loop
from messaging import selectors, sequences
from messaging.models import Conversation, Message, UserEvent
from messaging.serializers import deleted_frame, edited_frame, message_frame

logger = logging.getLogger(__name__)


def user_group(user_id: uuid.UUID | str) -> str:
    return f"user.{uuid.UUID(str(user_id)).hex}"


def participants(message: Message) -> list[uuid.UUID]:
    """Who hears about a message: both users of a direct conversation, the
    current members of a group (not those who left)."""
    conversation = message.conversation
    if conversation.kind == Conversation.Kind.DIRECT:
        return [pk for pk in (conversation.user_a_id, conversation.user_b_id) if pk]
    return selectors.active_member_ids(conversation.id)


def _send_after_commit(messages: list[tuple[uuid.UUID, dict[str, Any]]]) -> None:
    """group_send each (user, channel-layer message) once the transaction commits.

    From a socket's database call the sends are handed to its event loop and
    the thread goes on: waiting for the loop would hold a database thread for
    each message while the loop is busy. Elsewhere (REST views, commands)
    the caller waits for them.
    """

    async def send() -> None:
        layer = get_channel_layer()
        for user_id, message in messages:
            await layer.group_send(user_group(user_id), message)

    def failed(error: BaseException) -> None:
        # Durable events are in the log; devices that miss this catch up from it.
        metrics.CHANNEL_LAYER_ERRORS.inc()
        logger.error("Channel layer send failed for %s", messages[0][1].get("type"), exc_info=error)

    def reported(done) -> None:
        if not done.cancelled() and (error := done.exception()) is not None:
            failed(error)

    def deliver() -> None:
        loop = calling_loop()
        if loop is not None and not loop.is_closed():
            future = asyncio.run_coroutine_threadsafe(send(), loop)
            future.add_done_callback(reported)
            return
        try:
            async_to_sync(send)()
        except Exception as error:
            failed(error)

    transaction.on_commit(deliver)


Entry = tuple[uuid.UUID, dict[str, Any]] | tuple[uuid.UUID, dict[str, Any], dict[str, Any]]


def publish(entries: list[Entry]) -> None:
    """Record each (user, frame[, meta]) in that user's event log with their next
    seq, and send it to their devices after commit. A user may appear several
    times (consecutive seqs). ``meta`` rides along to the consumer, never to the client.

    Call it once per transaction: it locks every stream involved in one pass, in
    user-id order, so concurrent publishers never deadlock.
    """
    if not entries:
        return
    counts: dict[uuid.UUID, int] = {}
    for user_id, *_ in entries:
        counts[user_id] = counts.get(user_id, 0) + 1
    # Part of the caller's transaction when there is one: no savepoint, as a
    # failure here must undo the caller's change too.
    with transaction.atomic(savepoint=False):
        heads = sequences.event_streams_advance(counts)
        next_seq = {user_id: heads[user_id] - count + 1 for user_id, count in counts.items()}
        records, metas = [], []
        for user_id, frame, *meta in entries:
            seq = next_seq[user_id]
            next_seq[user_id] = seq + 1
            records.append((user_id, seq, {**frame, "seq": seq}))
            metas.append(meta[0] if meta else {})
        sequences.user_events_insert(records, timezone.now())
    _send_after_commit(
        [
            (user_id, {"type": "chat.event", "frame": frame, **meta})
            for (user_id, _, frame), meta in zip(records, metas, strict=True)
        ]
    )


def send_ephemeral(user_ids: Iterable[uuid.UUID], frame: dict[str, Any]) -> None:
    """Presence and typing: not logged, no seq; lost if nobody is connected."""
    _send_after_commit([(pk, {"type": "chat.event", "frame": frame}) for pk in dict.fromkeys(user_ids)])


def message_created(message: Message) -> None:
    kind = message.conversation.kind
    transaction.on_commit(lambda: metrics.MESSAGES_STORED.labels(kind).inc())
    frame = message_frame(message)
    # The receiver's devices report delivery; the sender's devices do not.
    publish([(pk, frame, {"delivery": True} if pk != message.sender_id else {}) for pk in participants(message)])


def message_edited(message: Message) -> None:
    publish([(pk, edited_frame(message)) for pk in participants(message)])


def message_deleted(message: Message) -> None:
    """Tell everyone, and scrub the content from the logged frames of the message,
    so a device resuming later never sees what was deleted."""
    users = selectors.users_who_saw(message)  # members who left since had it too
    logged = list(
        UserEvent.objects.filter(
            user_id__in=users,
            frame__id=str(message.id),
            frame__type__in=["direct_message", "group_message", "message_edited"],
        ).only("id", "frame")
    )
    for event in logged:
        event.frame = {**event.frame, "content": "", "attachments": []}
    # One statement per batch rather than one per member and frame (a big group's log).
    UserEvent.objects.bulk_update(logged, ["frame"], batch_size=500)
    publish([(pk, deleted_frame(message)) for pk in users])


def conversation_event(user_ids: Iterable[uuid.UUID], frame: dict[str, Any]) -> None:
    """A change to a conversation itself (created, renamed, members): logged for each user."""
    publish([(pk, frame) for pk in dict.fromkeys(user_ids)])


def user_tokens_revoked(user_id: uuid.UUID, token_version: int) -> None:
    """Every socket of the user authenticated with an older token version closes."""
    _send_after_commit([(user_id, {"type": "session.revoked", "token_version": token_version})])
