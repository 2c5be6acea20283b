"""Channel layers: one process's own, and one over Redis pub/sub for several.

Both deliver a group message to the group's channels in this process
directly, from memory, and implement ``publish_remote``: a group message for
the *other* processes only, which the fan-out (``messaging.fanout``) uses after
it has handed an event to this process's sockets itself. The event log, not
the layer, is what makes delivery loss-proof: a device that misses an event
fills the gap from the log, so the layers may drop (a full channel, a Redis
outage) and never retry.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgpack
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer, InMemoryChannelLayer
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from chatserver import metrics

logger = logging.getLogger(__name__)

# Handed to every local channel when the Redis layer is reachable again after
# an outage: what was published meanwhile is lost to this process, so each
# socket replays the log from its last seq.
RECONNECTED = {"type": "layer.reconnected"}
UNAVAILABLE = (RedisError, OSError)
MAX_BACKOFF_SECONDS = 5.0


class LocalChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer, at a cost that does not grow with the sockets.

    The stock layer deep-copies every message for every receiving channel,
    and on every send and receive walks every channel and group membership
    of the process to expire old ones: with 10,000 sockets each message paid
    for 10,000 of them. Here a message is shared, not copied (consumers only
    read events), and the expiry walk runs at most once a second.
    """

    CLEAN_INTERVAL_SECONDS = 1.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._cleaned_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at >= self.CLEAN_INTERVAL_SECONDS:
            self._cleaned_at = now
            super()._clean_expired()

    async def send(self, channel: str, message: dict) -> None:
        if not isinstance(message, dict):
            raise TypeError("message is not a dict")
        self.require_valid_channel_name(channel)
        queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
        try:
            queue.put_nowait((time.time() + self.expiry, message))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def group_send(self, group: str, message: dict) -> None:
        """Straight onto each member's queue: no task per member. A full
        channel misses the message; its consumer fills the gap from the log."""
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)

    def publish_remote(self, group: str, message: dict) -> None:
        """One process: there are no others."""


class RedisPubSubLayer(BaseChannelLayer):
    """Groups across processes over Redis pub/sub, one subscription per group
    per process, everything else in memory.

    - ``group_send`` hands the message to this process's members directly and
      publishes it once for the others; a process skips what it published
      itself. PUBLISHes queued in one turn of the event loop go to Redis in one
      pipelined round trip.
    - A consumer's channel is local (``...!<id>`` names the process); no Redis
      call opens or closes one. ``send`` to another process's channel goes
      through that process's own Redis channel.
    - ``group_add`` subscribes the group on the first local member and never
      waits on Redis: while Redis is unreachable it only records the
      membership. One task reads every subscription; when Redis is back after
      an outage it subscribes everything again and hands every local channel
      ``layer.reconnected``, since what was published meanwhile never arrived.
    """

    extensions = ["groups", "flush"]

    def __init__(
        self,
        hosts: list[dict[str, Any]] | None = None,
        prefix: str = "chat",
        expiry: int = 60,
        group_expiry: int = 86400,
        capacity: int = 1000,
        channel_capacity: dict | None = None,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        host = (hosts or [{"address": "redis://127.0.0.1:6379/0"}])[0]
        self.address = host["address"] if isinstance(host, dict) else host
        self.connect_options = {k: v for k, v in host.items() if k != "address"} if isinstance(host, dict) else {}
        self.prefix = prefix
        self.process = uuid.uuid4().hex
        self.channels: dict[str, asyncio.Queue] = {}
        self.groups: dict[str, set[str]] = {}
        self._process_channel = f"{prefix}:process:{self.process}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._publisher: aioredis.Redis | None = None
        self._pubsub = None
        self._reader: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._outgoing: list[tuple[str, bytes]] = []
        self._flushing = False
        # Takes a group message from another process before the members' queues
        # do, returning True when it handled it (the fan-out hands chat events
        # to its sockets' streams directly).
        self.group_handler: Callable[[str, dict], bool] | None = None

    # ---- names -----------------------------------------------------------

    def _group_channel(self, group: str) -> str:
        return f"{self.prefix}:group:{group}"

    def _is_local(self, channel: str) -> bool:
        return channel.partition("!")[0].endswith(self.process)

    # ---- channels --------------------------------------------------------

    async def new_channel(self, prefix: str = "specific.") -> str:
        self._ensure_started()
        channel = f"{self.prefix}.{prefix}{self.process}!{uuid.uuid4().hex}"
        self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return channel

    async def send(self, channel: str, message: dict) -> None:
        self.require_valid_channel_name(channel)
        if self._is_local(channel):
            self._put(channel, message)
            return
        process = channel.partition("!")[0].rsplit(".", 1)[-1][-32:]
        self._queue_publish(f"{self.prefix}:process:{process}", {"c": channel, "m": message})

    async def receive(self, channel: str) -> dict:
        self._ensure_started()
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        try:
            return await queue.get()
        except asyncio.CancelledError:
            # Channels ends a consumer by cancelling its receive: the channel goes with it.
            self.channels.pop(channel, None)
            raise

    def _put(self, channel: str, message: dict) -> None:
        queue = self.channels.get(channel)
        if queue is None:
            return
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            metrics.CHANNEL_LAYER_ERRORS.inc()  # the consumer fills the gap from the log

    # ---- groups ------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self._ensure_started()
        members = self.groups.setdefault(group, set())
        first = not members
        members.add(channel)
        if first and self._connected.is_set():
            with contextlib.suppress(*UNAVAILABLE):
                await self._pubsub.subscribe(self._group_channel(group))

    async def group_discard(self, group: str, channel: str) -> None:
        members = self.groups.get(group)
        if not members or channel not in members:
            return
        members.discard(channel)
        if not members:
            del self.groups[group]
            if self._connected.is_set():
                with contextlib.suppress(*UNAVAILABLE):
                    await self._pubsub.unsubscribe(self._group_channel(group))

    async def group_send(self, group: str, message: dict) -> None:
        """To this process's members, and one PUBLISH, awaited, for the others.
        (The hot path is ``publish_remote``.)"""
        self.require_valid_group_name(group)
        if self._loop is asyncio.get_running_loop():
            self._deliver_group(group, message)
        data = self._pack({"m": message})
        if self._loop is asyncio.get_running_loop() and self._publisher is not None:
            await self._publisher.publish(self._group_channel(group), data)
            return
        # From another loop (async_to_sync in a thread): a connection of its own.
        client = self._client()
        try:
            await client.publish(self._group_channel(group), data)
        finally:
            await client.aclose()

    def publish_remote(self, group: str, message: dict) -> None:
        """The message for this group's members on the other processes only."""
        self._queue_publish(self._group_channel(group), {"m": message})

    def _deliver_group(self, group: str, message: dict) -> None:
        for channel in self.groups.get(group, ()):
            self._put(channel, message)

    # ---- Redis ---------------------------------------------------------------

    def _ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._reader is not None and not self._reader.done():
            return
        if self._loop is not loop:
            # A new event loop (tests run one per test): nothing of the old one is usable.
            self.channels, self.groups, self._outgoing = {}, {}, []
            self._connected = asyncio.Event()
            self._publisher = None
            self._loop = loop
        self._reader = loop.create_task(self._read_forever())

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self.address, **self.connect_options)

    def _pack(self, payload: dict) -> bytes:
        payload["o"] = self.process
        return msgpack.packb(payload, use_bin_type=True)

    def _queue_publish(self, redis_channel: str, payload: dict) -> None:
        self._outgoing.append((redis_channel, self._pack(payload)))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._start_flush)

    def _start_flush(self) -> None:
        asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Every PUBLISH queued so far in one pipelined round trip; those queued
        meanwhile go in the next. While Redis is down they are dropped."""
        try:
            while self._outgoing:
                batch, self._outgoing = self._outgoing, []
                if self._publisher is None:
                    self._publisher = self._client()
                try:
                    async with self._publisher.pipeline(transaction=False) as pipe:
                        for redis_channel, data in batch:
                            pipe.publish(redis_channel, data)
                        await pipe.execute()
                except UNAVAILABLE as error:
                    metrics.CHANNEL_LAYER_ERRORS.inc()
                    logger.warning("Channel layer publish failed (%d messages dropped): %s", len(batch), error)
                    await self._drop_publisher()
        finally:
            self._flushing = False

    async def _drop_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(Exception):
                await publisher.aclose()

    async def _read_forever(self) -> None:
        delay = 0.1
        outage = False
        while True:
            client = self._client()
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                # The first SUBSCRIBE opens the pubsub's one connection; only then may
                # group_add subscribe on it (a concurrent first call would open a second).
                await pubsub.subscribe(self._process_channel)
                self._pubsub = pubsub
                self._connected.set()
                if self.groups:  # added meanwhile, or before an outage
                    await pubsub.subscribe(*(self._group_channel(g) for g in list(self.groups)))
                if self._publisher is None:
                    self._publisher = self._client()
                if outage:
                    logger.info("Channel layer reachable again")
                    for channel in list(self.channels):
                        self._put(channel, dict(RECONNECTED))
                    outage, delay = False, 0.1
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self._receive(message["channel"], message["data"])
            except UNAVAILABLE as error:
                if not outage:
                    metrics.CHANNEL_LAYER_ERRORS.inc()
                    logger.warning("Channel layer unreachable, retrying: %s", error)
                outage = True
            finally:
                self._connected.clear()
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    def _receive(self, redis_channel: bytes, data: bytes) -> None:
        try:
            payload = msgpack.unpackb(data, raw=False)
        except (ValueError, msgpack.UnpackException):
            logger.warning("Dropped an undecodable channel-layer message")
            return
        if payload.get("o") == self.process:
            return  # published here; this process's members had it already
        name = redis_channel.decode() if isinstance(redis_channel, bytes) else redis_channel
        if "c" in payload:
            self._put(payload["c"], payload["m"])
            return
        group = name.removeprefix(f"{self.prefix}:group:")
        if self.group_handler is not None and self.group_handler(group, payload["m"]):
            return
        self._deliver_group(group, payload["m"])

    async def flush(self) -> None:
        self.channels, self.groups, self._outgoing = {}, {}, []
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        await self._drop_publisher()
