"""Domain events: recorded in each recipient's log, then fanned out after commit.

Durable events (messages, edits, deletes, receipts, unread counts, group
changes) are recorded in each recipient's event log with the next per-user
``seq``, inside the caller's transaction; once it commits they go to the
fan-out (``messaging.fanout``), which hands them to every device of the user
on every process. A device that missed some (offline, cut off, or the
channel layer dropped them) gets them again from the log. Ephemeral events
(presence, typing) carry no seq and are not kept.

Inside :func:`collected` (the writer's transactions) every ``publish`` of the
transaction is stored together when the block ends: the stream counters in
one statement and the log rows in another, whatever the number of messages.
Each frame is serialized once, for the log row and for every device.
"""

import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chatserver import metrics, strict_json
from messaging.conversations.selectors import active_member_ids
from messaging.eventlog.sql import event_streams_advance, user_events_insert
from messaging.fanout import Event, get_fanout
from messaging.frames import MESSAGE_FRAMES, deleted_frame, edited_frame, message_frame, message_of
from messaging.messages.selectors import users_who_saw
from messaging.models import Conversation, Message, UserEvent
from messaging.push.outbox import push_outbox_touch

Entry = tuple[uuid.UUID, dict[str, Any]]


def participants(message: Message) -> list[uuid.UUID]:
    """Who hears about a message: both users of a direct conversation, the
    current members of a group (not those who left)."""
    conversation = message.conversation
    if conversation.kind == Conversation.Kind.DIRECT:
        return [pk for pk in (conversation.user_a_id, conversation.user_b_id) if pk]
    return active_member_ids(conversation.id)


class _Batch:
    """The events of one transaction, stored together before it commits.

    Once it commits they go to the fan-out, or with ``defer`` into
    ``committed`` for the caller to hand over (the writer sends its batch's
    acknowledgements first)."""

    def __init__(self, *, defer: bool = False) -> None:
        self.entries: list[Entry] = []
        self.delivered: dict[uuid.UUID, int] = {}  # user -> highest seq sent to a device
        self.stored: dict[str, int] = {}  # messages stored, by conversation kind
        self.conversations: dict[uuid.UUID, int] = {}  # with new messages (their highest seq), for the push outbox
        self.defer = defer
        self.committed: list[Event] = []

    def flush(self) -> None:
        """Take the seqs (one statement, every stream locked in user-id order, so
        concurrent transactions never deadlock), insert the log rows (one
        statement), and hand the events to the fan-out once the transaction commits."""
        if not self.entries and not self.delivered:
            return
        counts: dict[uuid.UUID, int] = {}
        for user_id, _ in self.entries:
            counts[user_id] = counts.get(user_id, 0) + 1
        heads = event_streams_advance(counts, self.delivered)
        next_seq = {user_id: heads[user_id] - count + 1 for user_id, count in counts.items()}
        records: list[tuple[uuid.UUID, int, str]] = []
        pending: list[tuple[uuid.UUID, int, str, dict[str, Any]]] = []
        for user_id, frame in self.entries:
            seq = next_seq[user_id]
            next_seq[user_id] = seq + 1
            text = strict_json.dumps({**frame, "seq": seq})
            records.append((user_id, seq, text))
            pending.append((user_id, seq, text, frame))
        now = timezone.now()
        user_events_insert(records, now)
        _push_outbox_touch(self.conversations, now)
        stored = dict(self.stored)
        transaction.on_commit(lambda: self._committed(pending, stored))

    def _committed(self, pending: list[tuple[uuid.UUID, int, str, dict[str, Any]]], stored: dict[str, int]) -> None:
        for kind, count in stored.items():
            metrics.MESSAGES_STORED.labels(kind).inc(count)
        at = time.time()
        events = []
        for user_id, seq, text, frame in pending:
            message_id, sender_id = message_of(frame)
            events.append(Event(user_id, text, seq, message_id=message_id, sender_id=sender_id, at=at))
        if self.defer:
            self.committed.extend(events)
        else:
            get_fanout().publish(events)


_local = threading.local()


@contextmanager
def collected(*, defer: bool = False) -> Iterator[_Batch]:
    """Inside a transaction: every ``publish`` until the block ends is stored
    together when it ends (the writer's batches). With ``defer`` the events
    wait in the batch's ``committed`` after the commit, for the caller to publish."""
    batch = _Batch(defer=defer)
    outer = getattr(_local, "batch", None)
    _local.batch = batch
    try:
        yield batch
        batch.flush()
    finally:
        _local.batch = outer


def _current() -> _Batch | None:
    return getattr(_local, "batch", None)


def publish(entries: Iterable[Entry]) -> None:
    """Record each (user, frame) in that user's event log with their next seq,
    and send it to their devices after commit. A user may appear several
    times (consecutive seqs, in order)."""
    entries = list(entries)
    if not entries:
        return
    batch = _current()
    if batch is not None:
        batch.entries.extend(entries)
        return
    # Part of the caller's transaction when there is one: no savepoint, as a
    # failure here must undo the caller's change too.
    with transaction.atomic(savepoint=False):
        alone = _Batch()
        alone.entries = entries
        alone.flush()


def delivered(cursors: dict[uuid.UUID, int]) -> None:
    """Each user's devices were sent their log up to this seq: a device of theirs
    connecting without ``since`` starts after it (offline delivery)."""
    batch = _current()
    if batch is not None:
        for user_id, seq in cursors.items():
            batch.delivered[user_id] = max(batch.delivered.get(user_id, 0), seq)
        return
    with transaction.atomic(savepoint=False):
        alone = _Batch()
        alone.delivered = dict(cursors)
        alone.flush()


def send_ephemeral(user_ids: Iterable[uuid.UUID], frame: dict[str, Any]) -> None:
    """Presence and typing: not logged, no seq; lost if nobody is connected."""
    text = strict_json.dumps(frame)
    events = [Event(pk, text) for pk in dict.fromkeys(user_ids)]
    transaction.on_commit(lambda: get_fanout().publish(events))


def message_created(message: Message) -> None:
    batch = _current()
    kind = message.conversation.kind
    if batch is not None:
        batch.stored[kind] = batch.stored.get(kind, 0) + 1
        batch.conversations[message.conversation_id] = max(
            message.seq, batch.conversations.get(message.conversation_id, 0)
        )
    else:
        transaction.on_commit(lambda: metrics.MESSAGES_STORED.labels(kind).inc())
        _push_outbox_touch({message.conversation_id: message.seq}, timezone.now())
    frame = message_frame(message)
    publish([(pk, frame) for pk in participants(message)])


def _push_outbox_touch(conversation_ids: dict[uuid.UUID, int], now) -> None:
    """Offline members may be pushed once the grace period has passed (messaging.push)."""
    push_outbox_touch(conversation_ids, now + timedelta(seconds=settings.PUSH_GRACE_SECONDS))


def message_edited(message: Message) -> None:
    publish([(pk, edited_frame(message)) for pk in participants(message)])


def message_deleted(message: Message) -> None:
    """Tell everyone, and scrub the content from the logged frames of the message,
    so a device resuming later never sees what was deleted (replays skip the
    message's frame, marked ``deleted``, and send only ``message_deleted``)."""
    users = users_who_saw(message)  # members who left since had it too
    logged = list(
        UserEvent.objects.filter(
            user_id__in=users,
            frame__id=str(message.id),
            frame__type__in=[*MESSAGE_FRAMES, "message_edited"],
        ).only("id", "frame")
    )
    for event in logged:
        event.frame = {**event.frame, "content": "", "attachments": [], "deleted": True}
    # One statement per batch rather than one per member and frame (a big group's log).
    UserEvent.objects.bulk_update(logged, ["frame"], batch_size=500)
    publish([(pk, deleted_frame(message)) for pk in users])


def conversation_event(user_ids: Iterable[uuid.UUID], frame: dict[str, Any]) -> None:
    """A change to a conversation itself (created, renamed, members): logged for each user."""
    publish([(pk, frame) for pk in dict.fromkeys(user_ids)])


def user_tokens_revoked(user_id: uuid.UUID, token_version: int) -> None:
    """Every socket of the user authenticated with an older token version closes."""
    control = {"type": "session.revoked", "token_version": token_version}
    transaction.on_commit(lambda: get_fanout().publish([Event(user_id, None, control=control)]))
