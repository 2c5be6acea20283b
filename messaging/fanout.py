"""Fan-out: committed events to the devices of their users, on every process.

One :class:`Fanout` per process, bound to the event loop that serves the
application (``bind``, from the ASGI entry point on its first call). After a
transaction commits, its events arrive here once, from whatever thread
committed, and each goes

- to the streams of its user's sockets on this process, directly, with no
  channel-layer hop;
- to the other processes through the channel layer, one publish per user
  group (``publish_remote``), where that process's layer hands it to its own
  sockets of that user (``ChatConsumer.chat_event``).

A frame is serialized once per user, whatever the number of their devices.
"""

import asyncio
import contextvars
import logging
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from chatserver import metrics

logger = logging.getLogger(__name__)


def user_group(user_id: uuid.UUID | str) -> str:
    """The channel-layer group every socket of the user joins, on every process."""
    return f"user.{uuid.UUID(str(user_id)).hex}"


@dataclass(frozen=True, slots=True)
class Event:
    """One frame for one user's devices, or a control message for their sockets."""

    user_id: uuid.UUID
    text: str | None  # the frame as sent; None for a control message
    seq: int | None = None  # the user's event seq; None: ephemeral (presence, typing), never logged
    message_id: str | None = None  # a message frame: its id, for delivery receipts...
    sender_id: str | None = None  # ...unless its sender is this user
    control: dict[str, Any] | None = None  # e.g. session.revoked
    at: float = 0.0  # when its transaction committed (unix time), for the delivery-latency metric

    def envelope(self) -> dict[str, Any]:
        """The channel-layer message that carries this event to another process."""
        if self.control is not None:
            return self.control
        return {
            "type": "chat.event",
            "text": self.text,
            "seq": self.seq,
            "m": self.message_id,
            "f": self.sender_id,
            "at": self.at,
        }

    @classmethod
    def from_envelope(cls, user_id: uuid.UUID, envelope: dict[str, Any]) -> "Event":
        return cls(
            user_id,
            envelope["text"],
            envelope.get("seq"),
            envelope.get("m"),
            envelope.get("f"),
            at=envelope.get("at") or 0.0,
        )


class Receiver(Protocol):
    """What a socket registers to receive its user's events (``messaging.stream.DeviceStream``)."""

    def offer(self, event: Event) -> None: ...


class Fanout:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.receivers: dict[uuid.UUID, set[Receiver]] = {}
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve events on ``loop`` from now on (a new loop replaces a closed one:
        the test suite runs one per test)."""
        if self.loop is not loop:
            with self._lock:
                self.loop = loop
                self.receivers = {}
            layer = get_channel_layer()
            if hasattr(layer, "group_handler"):
                layer.group_handler = self._from_other_process

    def _from_other_process(self, group: str, message: dict[str, Any]) -> bool:
        """A user's event that another process committed, from the channel layer:
        to the user's sockets here, as if committed here."""
        if message.get("type") not in ("chat.event", "session.revoked") or not group.startswith("user."):
            return False
        user_id = uuid.UUID(group.removeprefix("user."))
        event = (
            Event(user_id, None, control=message)
            if message["type"] == "session.revoked"
            else Event.from_envelope(user_id, message)
        )
        for receiver in tuple(self.receivers.get(user_id, ())):
            receiver.offer(event)
        return True

    @property
    def serving(self) -> bool:
        return self.loop is not None and not self.loop.is_closed()

    # ---- sockets of this process (on the loop) ----------------------------------

    def register(self, user_id: uuid.UUID, receiver: Receiver) -> None:
        self.receivers.setdefault(user_id, set()).add(receiver)

    def unregister(self, user_id: uuid.UUID, receiver: Receiver) -> None:
        receivers = self.receivers.get(user_id)
        if receivers is not None:
            receivers.discard(receiver)
            if not receivers:
                del self.receivers[user_id]

    def local_users(self) -> set[uuid.UUID]:
        return set(self.receivers)

    # ---- events -------------------------------------------------------------------

    def publish(self, events: list[Event]) -> None:
        """Hand committed events to every device of their users; from any thread."""
        if not events:
            return
        loop = self.loop
        if loop is None or loop.is_closed():
            # No serving loop in this process (a management command, a sync test):
            # nobody here to tell; the other processes hear it through the layer.
            self._publish_remote_blocking(events)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._publish_now(events)
        else:
            # A fresh context: the caller's (a database thread's, asgiref's
            # markers included) must not leak into the sockets' tasks.
            loop.call_soon_threadsafe(self._publish_now, events, context=contextvars.Context())

    def _publish_now(self, events: Iterable[Event]) -> None:
        layer = get_channel_layer()
        for event in events:
            for receiver in tuple(self.receivers.get(event.user_id, ())):
                receiver.offer(event)
            try:
                layer.publish_remote(user_group(event.user_id), event.envelope())
            except Exception:  # the log has it; a device that misses it catches up
                metrics.CHANNEL_LAYER_ERRORS.inc()
                logger.exception("Channel layer publish failed")

    def _publish_remote_blocking(self, events: list[Event]) -> None:
        async def send() -> None:
            layer = get_channel_layer()
            for event in events:
                await layer.group_send(user_group(event.user_id), event.envelope())

        try:
            async_to_sync(send)()
        except Exception:
            metrics.CHANNEL_LAYER_ERRORS.inc()
            logger.exception("Channel layer send failed")


_fanout = Fanout()


def get_fanout() -> Fanout:
    return _fanout
