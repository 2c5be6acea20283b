"""Reads of the per-user event log."""

import uuid
from collections.abc import Iterable
from typing import NamedTuple

from messaging.models import EventStream, UserEvent

REPLAY_BATCH_SIZE = 500


class StreamState(NamedTuple):
    head: int  # the seq of the user's last event
    pruned_through: int  # events up to this seq were pruned
    delivered: int  # the highest seq sent to a device of the user


def event_stream_state(user_id: uuid.UUID) -> StreamState:
    """A user's event log: its head, how far it was pruned and how far it was
    delivered; zeros before any event."""
    row = EventStream.objects.filter(user_id=user_id).values_list("last_seq", "pruned_through", "delivered_seq").first()
    return StreamState(*row) if row else StreamState(0, 0, 0)


def event_stream_states(user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, StreamState]:
    """``event_stream_state`` of many users in one query (users without events are left out)."""
    rows = EventStream.objects.filter(user_id__in=set(user_ids)).values_list(
        "user_id", "last_seq", "pruned_through", "delivered_seq"
    )
    return {user_id: StreamState(*state) for user_id, *state in rows}


def event_stream_heads(user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Head seq of each user's event log (users without events are left out);
    in chunks, within SQLite's limit on query parameters."""
    user_ids = list(user_ids)
    heads: dict[uuid.UUID, int] = {}
    for start in range(0, len(user_ids), 1000):
        chunk = user_ids[start : start + 1000]
        heads.update(EventStream.objects.filter(user_id__in=chunk).values_list("user_id", "last_seq"))
    return heads


def user_events_after(
    user_id: uuid.UUID, after: int, *, until: int | None = None, limit: int = REPLAY_BATCH_SIZE
) -> list[dict]:
    """Frames of the user's events with seq > ``after`` (and <= ``until``), in seq order."""
    events = UserEvent.objects.filter(user_id=user_id, seq__gt=after)
    if until is not None:
        events = events.filter(seq__lte=until)
    return list(events.order_by("seq").values_list("frame", flat=True)[:limit])
