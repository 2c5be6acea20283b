"""The chat WebSocket: a thin adapter between frames and messaging.services.

What a device is sent, and in which order, is the business of its
``DeviceStream`` (``messaging.stream``); sends go to the process's writer
(``messaging.writer``) and are acknowledged after their commit; events come
from the fan-out (``messaging.fanout``) directly when they were committed on
this process, and through the channel layer's per-user group when another
process committed them.
"""

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError

from accounts.authentication import BEARER_SUBPROTOCOL
from chatserver import metrics, ratelimit, strict_json
from chatserver.channel_layer import UNAVAILABLE
from chatserver.coalesce import Coalesced
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
from messaging import services
from messaging.eventlog.selectors import event_stream_heads, event_stream_state, user_events_after
from messaging.exceptions import (
    FrameTooLarge,
    InvalidFrame,
    InvalidJson,
    InvalidRecipient,
    RateLimited,
    ServerError,
    TooManySockets,
    Unavailable,
    UnknownFrameType,
)
from messaging.fanout import Event, get_fanout, user_group
from messaging.frames import PONG, ack_frame, hello_frame, online_users_frame, resync_required_frame, synced_frame
from messaging.rules import parse_uuid
from messaging.stream import DeviceStream
from messaging.writer import DeliveryJob, SendJob, get_writer

logger = logging.getLogger(__name__)

# How long delivery reports of a process are gathered before they go to the writer.
DELIVERY_REPORT_SECONDS = 0.05


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """One socket of one device.

    Joins the user's group (every device of the user, on any process), says
    ``hello`` with the seq its stream starts from, then sends the log after
    it: after ``?since=<seq>`` when the device resumes (then ``synced``),
    else after what the user's devices were last sent (offline delivery).
    Live events follow in seq order, each once.
    """

    async def connect(self) -> None:
        self.user = self.scope["user"]  # WebSocketTokenAuthMiddleware refused the handshake without one
        bind_user(self.user.id)  # this socket's task logs with its user
        self.token_version = self.user.token_version
        self.group = user_group(self.user.id)
        self.rejected_in_a_row = 0
        self.typing: dict[uuid.UUID, asyncio.TimerHandle] = {}
        self.stream = DeviceStream(
            self.user.id,
            self._send_text,
            self._read_log,
            _deliveries().reporter(self.user.id),
            encode=strict_json.dumps,
        )
        await self._join_group()
        # A browser authenticating with the "bearer, <JWT>" subprotocol pair must see
        # one of its offers echoed; echo "bearer", never the token.
        subprotocols = self.scope.get("subprotocols") or []
        await self.accept(BEARER_SUBPROTOCOL if subprotocols[:1] == [BEARER_SUBPROTOCOL] else None)
        metrics.OPEN_SOCKETS.inc()
        self.counted = True
        try:
            await self._start()
        except TooManySockets as error:
            logger.info("Refused a socket of user %s: too many open", self.user.id)
            self.stream.push(error_frame(error))
            await self.stream.drained()
            await self.close(CLOSE_TOO_MANY_SOCKETS)
        except Exception:
            logger.exception("Failed to start the socket of user %s", self.user.id)
            metrics.ERRORS.labels("websocket").inc()
            await self.close(CLOSE_SERVER_ERROR)

    async def _start(self) -> None:
        self._close_when_credentials_expire()
        # Registered before the log's state is read: an event committed after
        # that read reaches the stream live (held until the stream starts).
        get_fanout().register(self.user.id, self)
        _live_sockets().add(self)
        try:
            # Registered for presence and the log's state read together with
            # every other socket opening in this loop turn (a reconnect storm).
            started = await _sockets_started((self.user, self.channel_name))
        finally:
            admitted = self.scope.get("admitted")
            if admitted is not None:
                admitted()
        state = started.state
        since_values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("since")
        since, problem = None, None
        if since_values:
            try:
                since = _parse_seq(since_values[0])
            except DomainError as error:
                problem = error  # said after the hello; the socket carries on as without since
        after = state.delivered if since is None else since
        in_log = state.pruned_through <= after <= state.head
        self.stream.last_seq = after if in_log else state.head
        hello = hello_frame(self.user.id, self.stream.last_seq, state.head)
        self.stream.push(hello)
        self.stream.push(online_users_frame(started.online_contacts))
        if problem is not None:
            self.stream.push(error_frame(problem))
        if not in_log:
            self.stream.push(resync_required_frame(state.head, state.pruned_through))
            self.stream.started()
            return
        if state.head > self.stream.last_seq:
            await self.stream.replay()  # one query for up to 500 events
        else:
            self.stream.started()  # nothing to read: no query
        if since is not None:
            self.stream.push(synced_frame(self.stream.last_seq))

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            metrics.OPEN_SOCKETS.dec()
            self.counted = False
        if not hasattr(self, "stream"):
            return
        get_fanout().unregister(self.user.id, self)
        _live_sockets().discard(self)
        if expiry := getattr(self, "expiry", None):
            expiry.cancel()
        self.stream.close()
        # What this socket was sent is recorded before it is reported gone (else
        # a device connecting right after would be sent it again).
        await _deliveries().settle(self.user.id)
        for conversation in list(self.typing):
            await self._stop_typing(conversation)
        with contextlib.suppress(*UNAVAILABLE):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await _sockets_closed((self.user.id, self.channel_name))
        # Not a task of this consumer: it must outlive the socket.
        _background(_settle_presence_later(self.user.id))

    async def _join_group(self) -> None:
        """Join the user's group, for events committed on other processes. The
        layer never waits on Redis here; after an outage it hands the socket
        ``layer.reconnected`` and the socket reads what it missed from the log."""
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
        except UNAVAILABLE as error:
            logger.warning("Channel layer unavailable for user %s: %s", self.user.id, error)

    async def layer_reconnected(self, event: dict[str, Any]) -> None:
        await self.stream.catch_up(2**63)
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

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Channels' own, without its ``aclose_old_connections()``: a hop to its
        sync thread for every socket that closes (a restart closes thousands)."""
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its ``aclose_old_connections()`` before
        every handler: a hop to its single sync thread for every frame and
        every event. Database work here runs through ``chatserver.db``, which
        closes stale connections on the thread that uses them."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # ---- the stream's I/O ------------------------------------------------------------

    async def _send_text(self, text: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text})

    async def _read_log(self, after: int, until: int | None) -> list[dict[str, Any]]:
        return await db(user_events_after)(self.user.id, after, until=until)

    async def send_json(self, content: Any, close: bool = False) -> None:
        """Every frame leaves through the stream, in order with the events."""
        self.stream.push(content)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return strict_json.dumps(content)

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
            self._send_error(error, frame)
        except (OperationalError, InterfaceError) as error:
            logger.warning("Database unavailable handling a frame from user %s: %s", self.user.id, error)
            self._send_error(Unavailable(), frame)
        except Exception:
            logger.exception("Unexpected error handling a frame from user %s", self.user.id)
            self._send_error(ServerError(), frame)

    async def _check_rate(self) -> None:
        """Every frame counts against the user's bucket, shared by all their devices."""
        decision = await ratelimit.ahit("ws", str(self.user.id))
        if decision.allowed:
            self.rejected_in_a_row = 0
            return
        self.rejected_in_a_row += 1
        if self.rejected_in_a_row > settings.WS_FLOOD_CLOSE_AFTER:
            logger.warning("Closing socket of user %s: kept flooding after rate-limit errors", self.user.id)
            await self.stream.drained()
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
        await self._store_and_ack(services.direct_send_request(self.user, to=frame.get("to"), **_send_fields(frame)))

    async def _on_group_message(self, frame: dict[str, Any]) -> None:
        request = services.conversation_send_request(
            self.user, conversation=frame.get("conversation"), **_send_fields(frame)
        )
        await self._store_and_ack(request)

    async def _store_and_ack(self, request: services.SendRequest) -> None:
        """Returns once the message is stored; its ack was queued right then,
        ahead of the message's own events. A message ends its sender's typing there."""
        result = await get_writer().call(SendJob(request, on_stored=self._ack))
        if result.message.conversation_id in self.typing:
            await self._stop_typing(result.message.conversation_id)

    def _ack(self, result: services.SendResult) -> None:
        self.stream.push(ack_frame(result.message, duplicate=not result.created))

    async def _on_ping(self, frame: dict[str, Any]) -> None:
        self.stream.push(PONG)

    async def _on_sync(self, frame: dict[str, Any]) -> None:
        since = _parse_seq(frame.get("since"))
        state = await db(event_stream_state)(self.user.id)
        if not state.pruned_through <= since <= state.head:
            self.stream.last_seq = max(self.stream.last_seq, state.head)
            self.stream.push(resync_required_frame(state.head, state.pruned_through))
            return
        await self.stream.replay(after=since)
        self.stream.push(synced_frame(self.stream.last_seq))

    async def _on_read(self, frame: dict[str, Any]) -> None:
        target = frame.get("conversation") or frame.get("with")
        if target is None:
            raise InvalidInput("'read' needs 'with' (a user id) or 'conversation'.", field="with")
        up_to = frame.get("up_to")
        await db(services.conversation_mark_read)(
            user=self.user,
            conversation_or_user_id=parse_uuid(target, "conversation"),
            up_to=None if up_to is None else parse_uuid(up_to, "up_to"),
        )

    async def _on_typing(self, frame: dict[str, Any]) -> None:
        typing = frame.get("typing", True)
        if not isinstance(typing, bool):
            raise InvalidInput("'typing' must be true or false.", field="typing")
        if frame.get("conversation") is not None:
            target = {"conversation": parse_uuid(frame["conversation"], "conversation")}
        else:
            target = {"to": parse_uuid(frame.get("to"), "to", InvalidRecipient)}
        conversation = await db(services.typing_notify)(user=self.user, **target, typing=typing)
        if timer := self.typing.pop(conversation, None):
            timer.cancel()
        if not typing:
            return
        loop = asyncio.get_running_loop()
        timer = loop.call_later(
            settings.TYPING_TIMEOUT_SECONDS, lambda: self.stream.spawn(self._stop_typing(conversation, expired=timer))
        )
        self.typing[conversation] = timer

    async def _stop_typing(self, conversation: uuid.UUID, expired: asyncio.TimerHandle | None = None) -> None:
        """Stop the indicator; from a timer, only if no newer typing frame replaced it."""
        timer = self.typing.get(conversation)
        if timer is None or (expired is not None and timer is not expired):
            return
        del self.typing[conversation]
        timer.cancel()
        with contextlib.suppress(DomainError):
            await db(services.typing_notify)(user=self.user, conversation=conversation, typing=False)

    FRAME_HANDLERS = {
        "direct_message": _on_direct_message,
        "group_message": _on_group_message,
        "ping": _on_ping,
        "sync": _on_sync,
        "read": _on_read,
        "typing": _on_typing,
    }

    def _send_error(self, error: DomainError, frame: Any) -> None:
        if error.status >= 500:
            metrics.ERRORS.labels("websocket").inc()
        reply = error_frame(error)
        if isinstance(frame, dict) and isinstance(frame.get("client_id"), str):
            reply["client_id"] = frame["client_id"]
        self.stream.push(reply)

    # ---- server -> client -----------------------------------------------------

    def offer(self, event: Event) -> None:
        """An event committed on this process (from the fan-out)."""
        if event.control is not None:
            if event.control["type"] == "session.revoked":
                self._revoke(event.control["token_version"])
            return
        self.stream.offer(event)

    async def chat_event(self, message: dict[str, Any]) -> None:
        """An event committed on another process (through the channel layer)."""
        self.stream.offer(Event.from_envelope(self.user.id, message))

    async def session_revoked(self, message: dict[str, Any]) -> None:
        self._revoke(message["token_version"])

    def _revoke(self, token_version: int) -> None:
        if self.token_version < token_version:
            self.stream.spawn(self.close(CLOSE_CREDENTIALS_INVALID))


def _send_fields(frame: dict[str, Any]) -> dict[str, Any]:
    """What both send frames carry besides their target."""
    return {
        "content": frame.get("content"),
        "client_id": frame.get("client_id"),
        "attachments": frame.get("attachments"),
    }


def _parse_seq(value: Any) -> int:
    """A seq from ``?since=`` (text) or a ``sync`` frame (a JSON integer)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    raise InvalidInput("'since' must be a non-negative integer seq.", field="since")


async def _start_sockets(sockets: list[tuple[Any, str]]) -> list:
    return await db(services.sockets_start)(sockets)


_sockets_started = Coalesced(_start_sockets)


async def _close_sockets(sockets: list[tuple[uuid.UUID, str]]) -> list[None]:
    await db(services.sockets_closed)(sockets)
    return [None] * len(sockets)


_sockets_closed = Coalesced(_close_sockets)


class _Deliveries:
    """What the sockets of one process (event loop) were sent, reported to the
    writer: per user, the highest seq sent and the messages from others
    among it, gathered for ``DELIVERY_REPORT_SECONDS`` and sent as one job
    per user. A receipt is not urgent (a tick on the sender's screen), and
    under load one report then covers several messages of a conversation:
    one cursor update and one ``message_delivered`` instead of one each."""

    def __init__(self) -> None:
        self.pending: dict[uuid.UUID, tuple[int, list[uuid.UUID]]] = {}
        self.in_flight: dict[uuid.UUID, asyncio.Future] = {}
        self.scheduled = False

    def reporter(self, user_id: uuid.UUID):
        def report(seq: int, message_id: str | None) -> None:
            top, messages = self.pending.get(user_id, (0, []))
            if message_id is not None:
                messages.append(uuid.UUID(message_id))
            self.pending[user_id] = (max(top, seq), messages)
            if not self.scheduled:
                self.scheduled = True
                self.timer = asyncio.get_running_loop().call_later(DELIVERY_REPORT_SECONDS, self.submit)

        return report

    def submit(self) -> None:
        if self.scheduled:
            self.timer.cancel()
        self.scheduled = False
        pending, self.pending = self.pending, {}
        loop = asyncio.get_running_loop()
        writer = get_writer()
        for user_id, (seq, messages) in pending.items():
            future = loop.create_future()
            self.in_flight[user_id] = future
            future.add_done_callback(lambda done, user_id=user_id: self._done(user_id, done))
            writer.submit(DeliveryJob(user_id, seq, messages, future=future))

    def _done(self, user_id: uuid.UUID, future: asyncio.Future) -> None:
        if self.in_flight.get(user_id) is future:
            del self.in_flight[user_id]
        if not future.cancelled() and future.exception() is not None:
            logger.error("Storing delivery receipts failed", exc_info=future.exception())

    async def settle(self, user_id: uuid.UUID) -> None:
        """Wait until what the user's sockets were sent so far is stored (or postponed)."""
        if user_id in self.pending:
            self.submit()
        future = self.in_flight.get(user_id)
        if future is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(future), timeout=10)


_deliveries_by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deliveries]" = weakref.WeakKeyDictionary()


def _deliveries() -> _Deliveries:
    loop = asyncio.get_running_loop()
    if loop not in _deliveries_by_loop:
        _deliveries_by_loop[loop] = _Deliveries()
    return _deliveries_by_loop[loop]


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
    from messaging.presence.registry import SOCKET_TTL_SECONDS

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
    """Now and then, compare every socket's cursor with the head of its user's
    log (one query for the process) and send what a socket missed: an event
    the channel layer lost with no later event to reveal the gap."""
    while True:
        await asyncio.sleep(settings.WS_CATCH_UP_SECONDS)
        consumers = list(_live_sockets())
        try:
            heads = await db(event_stream_heads)({consumer.user.id for consumer in consumers})
        except (OperationalError, InterfaceError) as error:
            logger.warning("Catch-up skipped: %s", error)
            continue
        for consumer in consumers:
            head = heads.get(consumer.user.id, 0)
            if head > consumer.stream.last_seq:
                consumer.stream.spawn(_catch_up_socket(consumer, head))


async def _catch_up_socket(consumer: ChatConsumer, head: int) -> None:
    try:
        await consumer.stream.catch_up(head)
    except (OperationalError, InterfaceError) as error:
        logger.warning("Catch-up for user %s skipped: %s", consumer.user.id, error)
