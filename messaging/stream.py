"""One device's view of its user's event log, independent of the socket.

A device has one cursor, ``last_seq``: every event of the user's log up to it
has been queued for the device, in order, each once. Events reach the
stream live (from the fan-out) or from the log (on connect, after a gap);
live events that arrive ahead of their predecessor wait a moment for it (two
processes' events can overtake each other on the way) before the gap is
filled from the log. Everything the device is sent, events and replies
alike, leaves through one outbox in order, so the socket itself never waits
on a slow reader: a device that stops reading stops being queued events
(they stay in the log) and catches up once it reads again.

After each event is written to the socket the stream reports it
(``on_delivered``), which moves the user's delivered cursor and, for
messages from others, tells their senders ``message_delivered``.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from chatserver import metrics
from messaging.eventlog.selectors import REPLAY_BATCH_SIZE
from messaging.fanout import Event
from messaging.frames import message_of, receipt_for

logger = logging.getLogger(__name__)

# An event that overtook its predecessor waits this long for it before the log is read.
GAP_WAIT_SECONDS = 0.1
# Frames queued for one socket at most; beyond it the device is lagging and reads the log later.
OUTBOX_LIMIT = 1000

SendText = Callable[[str], Awaitable[None]]
ReadLog = Callable[[int, int | None], Awaitable[list[dict[str, Any]]]]
OnDelivered = Callable[[int, str | None], None]


class DeviceStream:
    def __init__(
        self,
        user_id: uuid.UUID,
        send_text: SendText,
        read_log: ReadLog,
        on_delivered: OnDelivered,
        *,
        encode: Callable[[Any], str],
    ) -> None:
        self.user_id = user_id
        self._user = str(user_id)
        self._send_text = send_text
        self._read_log = read_log
        self._on_delivered = on_delivered
        self._encode = encode
        self.last_seq = 0
        self._held: dict[int, Event] = {}
        self._outbox: deque[tuple[str, int | None, str | None, float]] = deque()
        self._sender: asyncio.Task | None = None
        self._replay_lock = asyncio.Lock()
        self._replaying = 0
        self._gap_timer: asyncio.TimerHandle | None = None
        self._lagging = False
        # Until the socket has read where its stream starts, live events wait.
        self._starting = True
        self._tasks: set[asyncio.Task] = set()
        self.closed = False

    # ---- frames in ---------------------------------------------------------------

    def push(self, frame: dict[str, Any] | str) -> None:
        """A frame that is not a log event (an ack, an error, ``synced``), after
        everything queued before it."""
        self._enqueue(frame if isinstance(frame, str) else self._encode(frame))

    def offer(self, event: Event) -> None:
        """A live event of the user (from any process, in any order)."""
        if self.closed:
            return
        if event.seq is None:
            self._enqueue(event.text)  # ephemeral: presence, typing
            return
        if event.seq <= self.last_seq or self._lagging:
            return  # sent already (replayed, or a duplicate); or read from the log later
        if self._replaying or self._starting or event.seq > self.last_seq + 1:
            self._held[event.seq] = event
            if not self._replaying and not self._starting:
                self._expect_gap()
            return
        if len(self._outbox) >= OUTBOX_LIMIT:
            self._lag()
            return
        self._emit(event)
        self._release_held()

    def _lag(self) -> None:
        """The device is not reading: stop queueing its events (they are in the
        log); it is sent them once its outbox has drained."""
        self._lagging = True
        self._held.clear()

    def _emit(self, event: Event) -> None:
        self.last_seq = event.seq
        self._enqueue(event.text, event.seq, receipt_for(event.message_id, event.sender_id, self._user), event.at)

    def _release_held(self) -> None:
        while (event := self._held.pop(self.last_seq + 1, None)) is not None:
            self._emit(event)
        for seq in [seq for seq in self._held if seq <= self.last_seq]:
            del self._held[seq]
        if self._held:
            self._expect_gap()
        elif self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None

    def _expect_gap(self) -> None:
        if self._gap_timer is None:
            self._gap_timer = asyncio.get_running_loop().call_later(GAP_WAIT_SECONDS, self._gap_not_filled)

    def _gap_not_filled(self) -> None:
        self._gap_timer = None
        if self._held and not self._replaying:
            first = min(self._held)
            metrics.CHANNEL_LAYER_DROPS.inc(first - self.last_seq - 1)
            self.spawn(self.replay(until=first - 1))

    # ---- the log ---------------------------------------------------------------------

    async def replay(self, *, after: int | None = None, until: int | None = None) -> None:
        """Send the log's events after ``after`` (default: the cursor), up to
        ``until`` (default: all), in order; live events meanwhile are held and
        follow. ``after`` below the cursor sends those events again (a client's
        ``sync``). A deleted message's frames come as the log keeps them:
        blanked and marked ``deleted``, its ``message_deleted`` later."""
        async with self._replay_lock:
            self._replaying += 1
            try:
                start = self.last_seq if after is None else after
                while True:
                    frames = await self._read_log(start, until)
                    for frame in frames:
                        if len(self._outbox) >= OUTBOX_LIMIT:
                            self._lag()
                            return
                        start = frame["seq"]
                        self._enqueue(self._encode(frame), start, receipt_for(*message_of(frame), self._user))
                        self.last_seq = max(self.last_seq, start)
                    if len(frames) < REPLAY_BATCH_SIZE:
                        self._lagging = False
                        return
            finally:
                self._replaying -= 1
                if not self._replaying:
                    self._starting = False
                    self._release_held()

    def started(self) -> None:
        """The stream starts at ``last_seq`` with nothing to read from the log:
        live events flow (those held meanwhile first)."""
        self._starting = False
        self._release_held()

    async def catch_up(self, head: int) -> None:
        """The log's head is ``head``: send what this device has not had."""
        if head > self.last_seq and not self._replaying:
            await self.replay()

    # ---- frames out --------------------------------------------------------------------

    def _enqueue(self, text: str, seq: int | None = None, receipt: str | None = None, at: float = 0.0) -> None:
        if self.closed:
            return
        self._outbox.append((text, seq, receipt, at))
        if self._sender is None:
            self._sender = self.spawn(self._drain())

    async def _drain(self) -> None:
        try:
            while self._outbox:
                text, seq, receipt, at = self._outbox.popleft()
                await self._send_text(text)
                if seq is not None:
                    self._on_delivered(seq, receipt)
                    if receipt is not None and at:
                        metrics.DELIVERY_LATENCY.observe(max(0.0, time.time() - at))
        except Exception:
            # The socket is gone (the consumer's disconnect follows), or broken.
            logger.debug("Send to a socket of user %s failed", self.user_id, exc_info=True)
            self.close()
        finally:
            self._sender = None
            if self._lagging and not self._replaying and not self.closed:
                self.spawn(self.replay())

    async def drained(self) -> None:
        """Wait until everything queued so far has been written to the socket."""
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)

    def spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def close(self) -> None:
        self.closed = True
        self._outbox.clear()
        self._held.clear()
        if self._gap_timer is not None:
            self._gap_timer.cancel()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(*[t for t in self._tasks if t is not asyncio.current_task()])
