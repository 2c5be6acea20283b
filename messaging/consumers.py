"""The chat WebSocket: a thin adapter between frames and messaging.services."""

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError

from accounts.authentication import BEARER_SUBPROTOCOL
from chatserver import metrics, strict_json
from chatserver.channel_layer import RECONNECTED, UNAVAILABLE
from chatserver.db import db
from chatserver.errors import DomainError, InvalidInput
from chatserver.log import bind_user
from chatserver.websocket import (
    CLOSE_CREDENTIALS_INVALID,
    CLOSE_RATE_LIMITED,
    CLOSE_SERVER_ERROR,
    CLOSE_TOO_MANY_SOCKETS,
    error_frame,
)
from messaging import events, ratelimit, selectors, services
from messaging.exceptions import (
    FrameTooLarge,
    InvalidFrame,
    InvalidJson,
    RateLimited,
    ServerError,
    TooManySockets,
    Unavailable,
    UnknownFrameType,
)
from messaging.serializers import ack_frame, message_frame

logger = logging.getLogger(__name__)

MESSAGE_FRAMES = ("direct_message", "group_message")


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """One socket of one device.

    Joins the user's group (every device of the user, on any process), says
    ``hello`` with the head of the user's event log, then either resumes from
    ``?since=<seq>`` (every logged event after it, in order) or, without it,
    replays the messages no device of the user has been sent (offline delivery).
    Live events are forwarded in seq order: duplicates are dropped and a gap
    (an event the channel layer lost) is filled from the log.
    """

    async def connect(self) -> None:
        user = self.scope["user"]  # WebSocketTokenAuthMiddleware refused the handshake without one
        self.user = user
        bind_user(user.id)  # this socket's task logs with its user
        self.token_version = user.token_version
        self.group = events.user_group(user.id)
        self.rejected_in_a_row = 0
        self.last_seq = 0
        # Ids sent by offline delivery; a live copy of one arriving later is a duplicate.
        self.replayed: set[str] = set()
        self.typing: dict[uuid.UUID, asyncio.TimerHandle] = {}
        self.tasks: set[asyncio.Task] = set()
        # Live forwarding, gap fills and catch-ups send in seq order, one at a time.
        self.delivering = asyncio.Lock()
        await self._join_group()
        # A browser authenticating with the "bearer, <JWT>" subprotocol pair must see
        # one of its offers echoed; echo "bearer", never the token.
        subprotocols = self.scope.get("subprotocols") or []
        await self.accept(BEARER_SUBPROTOCOL if subprotocols[:1] == [BEARER_SUBPROTOCOL] else None)
        metrics.OPEN_SOCKETS.inc()
        self.counted = True
        try:
            await self._start()
            _live_sockets().add(self)
        except TooManySockets as error:
            logger.info("Refused a socket of user %s: too many open", self.user.id)
            await self.send_json(error_frame(error))
            await self.close(CLOSE_TOO_MANY_SOCKETS)
        except Exception:
            logger.exception("Failed to start the socket of user %s", self.user.id)
            metrics.ERRORS.labels("websocket").inc()
            await self.close(CLOSE_SERVER_ERROR)

    async def _start(self) -> None:
        self._close_when_credentials_expire()
        await db(services.presence_connected)(self.user, self.channel_name)
        head, _ = await db(selectors.event_stream_state)(self.user.id)
        await self.send_json({"type": "hello", "user_id": str(self.user.id), "seq": head})
        since = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("since")
        if since:
            try:
                await self._resume(since[0])
                return
            except DomainError as error:
                await self._send_error(error, None)  # then carry on as without since
        self.last_seq = head
        await self._deliver_offline()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            metrics.OPEN_SOCKETS.dec()
            self.counted = False
        if not hasattr(self, "group"):
            return
        _live_sockets().discard(self)
        if expiry := getattr(self, "expiry", None):
            expiry.cancel()
        for task in self.tasks:
            task.cancel()
        # Receipts of frames already sent are stored before the socket is
        # reported gone (else those messages come again with offline delivery).
        await _receipts().drain(self.user.id)
        for recipient in list(self.typing):
            await self._stop_typing(recipient)
        with contextlib.suppress(*UNAVAILABLE):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await db(services.presence_disconnected)(self.user, self.channel_name)
        # Not a task of this consumer: it must outlive the socket.
        _background(_settle_presence_later(self.user.id))

    async def _join_group(self) -> bool:
        """Join the user's group; while the channel layer is down the socket still
        works (sends are stored and acknowledged) and a task keeps trying."""
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
            return True
        except UNAVAILABLE as error:
            logger.warning(
                "Channel layer unavailable; user %s gets no live events until it returns: %s", self.user.id, error
            )
            self._spawn(self._rejoin_when_layer_returns())
            return False

    async def _rejoin_when_layer_returns(self) -> None:
        delay = 0.2
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            with contextlib.suppress(*UNAVAILABLE):
                # Handled in order with live events, by layer_reconnected.
                await self.channel_layer.send(self.channel_name, dict(RECONNECTED))
                return

    async def layer_reconnected(self, event: dict[str, Any]) -> None:
        """The channel layer is back (possibly a restarted Redis that forgot every
        group): join again, then send what the log holds beyond the last seq sent."""
        if await self._join_group():
            async with self.delivering:
                await self._replay(after=self.last_seq)
            with contextlib.suppress(TooManySockets):  # this socket was counted before the outage
                await db(services.presence_connected)(self.user, self.channel_name)

    def _close_when_credentials_expire(self) -> None:
        expire_at = self.scope.get("credentials_expire_at")
        if expire_at is None:
            return
        loop = asyncio.get_running_loop()
        self.expiry = loop.call_later(
            max(0.0, expire_at - time.time()), lambda: loop.create_task(self.close(CLOSE_CREDENTIALS_INVALID))
        )

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def catch_up(self, head: int) -> None:
        """A channel layer may drop an event (a full channel, a Redis failover);
        the next live event fills the gap, and this, run now and then by the
        process's housekeeping, covers a gap with no next event."""
        if head > self.last_seq:
            async with self.delivering:
                await self._replay(after=self.last_seq)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its ``aclose_old_connections()`` before
        every handler: a hop to its single sync thread for every frame and
        every event. Database work here runs through ``chatserver.db``, which
        closes stale connections on the thread that uses them."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # ---- client -> server -------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame: Any = None
        try:
            try:
                frame = self._parse(text_data)
            finally:
                # Every frame counts, even one that does not parse; a refusal wins.
                await self._check_rate()
            frame_type = frame.get("type")
            handler = self.FRAME_HANDLERS.get(frame_type) if isinstance(frame_type, str) else None
            if handler is None:
                raise UnknownFrameType(f"Unknown frame type {frame.get('type')!r}.", field="type")
            await handler(self, frame)
        except DomainError as error:
            await self._send_error(error, frame)
        except (OperationalError, InterfaceError) as error:
            logger.warning("Database unavailable handling a frame from user %s: %s", self.user.id, error)
            await self._send_error(Unavailable(), frame)
        except Exception:
            logger.exception("Unexpected error handling a frame from user %s", self.user.id)
            await self._send_error(ServerError(), frame)

    async def _check_rate(self) -> None:
        """Every frame counts against the user's bucket, shared by all their devices."""
        decision = await ratelimit.ahit("ws", str(self.user.id))
        if decision.allowed:
            self.rejected_in_a_row = 0
            return
        self.rejected_in_a_row += 1
        if self.rejected_in_a_row > settings.WS_FLOOD_CLOSE_AFTER:
            logger.warning("Closing socket of user %s: kept flooding after rate-limit errors", self.user.id)
            await self.close(CLOSE_RATE_LIMITED)
        logger.info("Rate limited WebSocket frame from user %s", self.user.id)
        raise RateLimited(retry_after=decision.retry_after)

    @staticmethod
    def _parse(text_data: str | None) -> dict[str, Any]:
        if text_data is None:
            raise InvalidFrame("Binary frames are not supported; send JSON text.")
        # Checked before parsing, so an oversized frame costs no JSON work
        # (a UTF-8 character is at most 4 bytes, so short frames skip the encode).
        limit = settings.WS_MAX_FRAME_BYTES
        if len(text_data) * 4 > limit and len(text_data.encode()) > limit:
            raise FrameTooLarge(f"Frames are limited to {limit} bytes.")
        try:
            frame = strict_json.loads(text_data)
        except strict_json.MalformedJson:
            raise InvalidJson() from None
        if not isinstance(frame, dict):
            raise InvalidFrame()
        return frame

    async def _on_direct_message(self, frame: dict[str, Any]) -> None:
        message = await self._send_and_ack(services.message_send, frame, to=frame.get("to"))
        recipient = message.conversation.other_user_id(self.user.id)
        if recipient is not None and recipient in self.typing:
            await self._stop_typing(recipient)

    async def _on_group_message(self, frame: dict[str, Any]) -> None:
        await self._send_and_ack(services.conversation_message_send, frame, conversation=frame.get("conversation"))

    async def _send_and_ack(self, send, frame: dict[str, Any], **target: Any):
        result = await db(send)(
            sender=self.user,
            content=frame.get("content"),
            client_id=frame.get("client_id"),
            attachments=frame.get("attachments"),
            **target,
        )
        await self.send_json(ack_frame(result.message, duplicate=not result.created))
        return result.message

    async def _on_ping(self, frame: dict[str, Any]) -> None:
        await self.send_json({"type": "pong"})

    async def _on_sync(self, frame: dict[str, Any]) -> None:
        async with self.delivering:
            await self._resume(frame.get("since"))

    async def _on_read(self, frame: dict[str, Any]) -> None:
        target = frame.get("conversation") or frame.get("with")
        if target is None:
            raise InvalidInput("'read' needs 'with' (a user id) or 'conversation'.", field="with")
        await db(services.conversation_mark_read)(self.user, target, frame.get("up_to"))

    async def _on_typing(self, frame: dict[str, Any]) -> None:
        typing = frame.get("typing", True)
        if not isinstance(typing, bool):
            raise InvalidInput("'typing' must be true or false.", field="typing")
        if not typing:
            recipient = await db(services.typing_notify)(self.user, frame.get("to"), False)
            if timer := self.typing.pop(recipient, None):
                timer.cancel()
            return
        recipient = await db(services.typing_notify)(self.user, frame.get("to"), True)
        if timer := self.typing.get(recipient):
            timer.cancel()
        loop = asyncio.get_running_loop()
        timer = loop.call_later(
            settings.TYPING_TIMEOUT_SECONDS, lambda: self._spawn(self._stop_typing(recipient, expired=timer))
        )
        self.typing[recipient] = timer

    async def _stop_typing(self, recipient: uuid.UUID, expired: asyncio.TimerHandle | None = None) -> None:
        """Stop the indicator; from a timer, only if no newer typing frame replaced it."""
        timer = self.typing.get(recipient)
        if timer is None or (expired is not None and timer is not expired):
            return
        del self.typing[recipient]
        timer.cancel()
        with contextlib.suppress(DomainError):
            await db(services.typing_notify)(self.user, str(recipient), False)

    FRAME_HANDLERS = {
        "direct_message": _on_direct_message,
        "group_message": _on_group_message,
        "ping": _on_ping,
        "sync": _on_sync,
        "read": _on_read,
        "typing": _on_typing,
    }

    async def _send_error(self, error: DomainError, frame: Any) -> None:
        if error.status >= 500:
            metrics.ERRORS.labels("websocket").inc()
        reply = error_frame(error)
        if isinstance(frame, dict) and isinstance(frame.get("client_id"), str):
            reply["client_id"] = frame["client_id"]
        await self.send_json(reply)

    # ---- server -> client -----------------------------------------------------

    async def chat_event(self, event: dict[str, Any]) -> None:
        try:
            async with self.delivering:
                await self._forward(event)
        except Exception:
            # The device may now miss events; make it reconnect and resume.
            logger.exception("Failed to forward an event to user %s", self.user.id)
            metrics.ERRORS.labels("websocket").inc()
            await self.close(CLOSE_SERVER_ERROR)

    async def _forward(self, event: dict[str, Any]) -> None:
        frame = event["frame"]
        seq = frame.get("seq")
        if seq is not None:
            if seq <= self.last_seq:
                return  # already sent (replayed, or a duplicate)
            if seq > self.last_seq + 1:
                metrics.CHANNEL_LAYER_DROPS.inc(seq - self.last_seq - 1)
                await self._replay(after=self.last_seq, until=seq - 1)  # the channel layer lost some
            self.last_seq = seq
        if frame["type"] in MESSAGE_FRAMES and frame["id"] in self.replayed:
            return
        await self.send_json(frame)
        if "delivery" in event:
            committed_at = datetime.fromisoformat(frame["created_at"]).timestamp()
            metrics.DELIVERY_LATENCY.observe(max(0.0, time.time() - committed_at))
            _receipts().add(self.user.id, uuid.UUID(frame["id"]))

    async def session_revoked(self, event: dict[str, Any]) -> None:
        if self.token_version < event["token_version"]:
            await self.close(CLOSE_CREDENTIALS_INVALID)

    # ---- resume and offline delivery --------------------------------------------

    async def _resume(self, since: Any) -> None:
        """Send every logged event after ``since``, or ``resync_required`` when
        the log no longer reaches back that far."""
        since = _parse_seq(since)
        head, pruned_through = await db(selectors.event_stream_state)(self.user.id)
        if since < pruned_through or since > head:
            await self.send_json(
                {
                    "type": "resync_required",
                    "seq": head,
                    "oldest_seq": pruned_through + 1,
                    "detail": "Fetch state over REST, then resume from seq.",
                }
            )
            self.last_seq = max(self.last_seq, head)
            return
        await self._replay(after=since)
        await self.send_json({"type": "synced", "seq": self.last_seq})

    async def _replay(self, *, after: int, until: int | None = None) -> None:
        while True:
            frames = await db(selectors.user_events_after)(self.user.id, after, until=until)
            delivered = []
            for frame in frames:
                after = frame["seq"]
                if frame["type"] in MESSAGE_FRAMES and frame["id"] in self.replayed:
                    continue  # already sent by offline delivery
                await self.send_json(frame)
                if frame["type"] in MESSAGE_FRAMES and frame["from"] != str(self.user.id):
                    delivered.append(uuid.UUID(frame["id"]))
            self.last_seq = max(self.last_seq, after)
            await db(services.messages_delivered)(self.user, delivered)
            if len(frames) < selectors.REPLAY_BATCH_SIZE:
                return

    async def _deliver_offline(self) -> None:
        while True:
            batch = await db(selectors.messages_undelivered)(self.user)
            for message in batch:
                await self.send_json(message_frame(message))
                self.replayed.add(str(message.id))
            await db(services.messages_delivered)(self.user, [m.id for m in batch])
            if len(batch) < selectors.OFFLINE_BATCH_SIZE:
                return


def _parse_seq(value: Any) -> int:
    """A seq from ``?since=`` (text) or a ``sync`` frame (a JSON integer)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    raise InvalidInput("'since' must be a non-negative integer seq.", field="since")


class _Receipts:
    """The delivery receipts of every socket of one process (event loop).

    Stored in one call however many arrive while the previous call runs:
    under load one transaction covers many messages and users instead of
    one transaction per message. When the database is down they wait for
    the next delivery.
    """

    def __init__(self) -> None:
        self.pending: dict[uuid.UUID, list[uuid.UUID]] = {}
        self.storing: dict[uuid.UUID, list[uuid.UUID]] = {}
        self.task: asyncio.Task | None = None

    def add(self, user_id: uuid.UUID, message_id: uuid.UUID) -> None:
        self.pending.setdefault(user_id, []).append(message_id)
        self._start()

    def _start(self) -> None:
        if self.pending and (self.task is None or self.task.done()):
            self.task = asyncio.get_running_loop().create_task(self._store())

    async def drain(self, user_id: uuid.UUID) -> None:
        """Wait until the user's receipts so far are stored (or postponed)."""
        while self.task is not None and not self.task.done() and (user_id in self.storing or user_id in self.pending):
            await asyncio.shield(self.task)

    async def _store(self) -> None:
        self.storing, self.pending = self.pending, {}
        try:
            await db(services.messages_delivered_many)(self.storing)
        except (OperationalError, InterfaceError) as error:
            for user_id, ids in self.storing.items():
                self.pending[user_id] = ids + self.pending.get(user_id, [])
            logger.warning("Delivery receipts postponed: %s", error)
            return
        except Exception:
            logger.exception("Storing delivery receipts failed")
            metrics.ERRORS.labels("websocket").inc()
        finally:
            self.storing = {}
        self._start()


_receipts_by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Receipts]" = weakref.WeakKeyDictionary()


def _receipts() -> _Receipts:
    loop = asyncio.get_running_loop()
    if loop not in _receipts_by_loop:
        _receipts_by_loop[loop] = _Receipts()
    return _receipts_by_loop[loop]


_background_tasks: set[asyncio.Task] = set()


def _background(coroutine) -> None:
    """Run a task that outlives any socket; keep a reference so it is not collected."""
    task = asyncio.get_running_loop().create_task(coroutine)
    _background_tasks.add(task)
    task.add_done_callback(_background_tasks.discard)


async def _settle_presence_later(user_id: uuid.UUID) -> None:
    await asyncio.sleep(settings.PRESENCE_GRACE_SECONDS)
    try:
        await db(services.presence_settle)(user_id)
    except Exception:
        logger.exception("Presence update failed for user %s", user_id)


_live_by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[ChatConsumer]]" = weakref.WeakKeyDictionary()


def _live_sockets() -> set[ChatConsumer]:
    """The started sockets of this process (event loop); the first one starts
    the process's housekeeping."""
    loop = asyncio.get_running_loop()
    if loop not in _live_by_loop:
        _live_by_loop[loop] = set()
        _background(_keep_presence_forever())
        _background(_catch_up_forever())
    return _live_by_loop[loop]


async def _keep_presence_forever() -> None:
    """Every socket of the process stays registered in one call, and users whose
    sockets vanished without a settle (their process died, or its grace task
    was lost) are settled: per process, not a task per socket."""
    from messaging.presence import SOCKET_TTL_SECONDS

    while True:
        await asyncio.sleep(SOCKET_TTL_SECONDS / 3)
        sockets = [(consumer.user.id, consumer.channel_name) for consumer in _live_sockets()]
        try:
            if sockets:
                await db(services.presence_refresh)(sockets)
            await db(services.presence_sweep)()
        except Exception:
            logger.exception("Presence refresh failed; retrying")


async def _catch_up_forever() -> None:
    """Now and then, compare every socket's last seq with the head of its
    user's log (one query for the process) and replay what a socket missed."""
    while True:
        await asyncio.sleep(settings.WS_CATCH_UP_SECONDS)
        consumers = list(_live_sockets())
        try:
            heads = await db(selectors.event_stream_heads)({consumer.user.id for consumer in consumers})
        except (OperationalError, InterfaceError) as error:
            logger.warning("Catch-up skipped: %s", error)
            continue
        for consumer in consumers:
            if heads.get(consumer.user.id, 0) > consumer.last_seq:
                consumer._spawn(_caught_up(consumer, heads[consumer.user.id]))


async def _caught_up(consumer: ChatConsumer, head: int) -> None:
    try:
        await consumer.catch_up(head)
    except (OperationalError, InterfaceError) as error:
        logger.warning("Catch-up for user %s skipped: %s", consumer.user.id, error)
