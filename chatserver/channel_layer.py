"""Channel layers: one process's own, and a Redis one that rides out an outage.

The Redis layer:

channels-redis raises from ``receive`` when Redis is unreachable, which ends
the consumer and with it the client's socket; and a restarted Redis has
forgotten every group membership. This layer retries instead, and when Redis
answers again hands the consumer one ``layer.reconnected`` message so it can
join its group again and fill what it missed from the event log.
"""

import asyncio
import contextlib
import logging
import time

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError

from chatserver import metrics

logger = logging.getLogger(__name__)

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


class ResilientRedisChannelLayer(RedisChannelLayer):
    async def receive(self, channel: str) -> dict:
        delay = 0.1
        failed = False
        while True:
            try:
                if failed:
                    await self._ping(channel)
                    logger.info("Channel layer reachable again")
                    return dict(RECONNECTED)
                return await super().receive(channel)
            except UNAVAILABLE as error:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the consumer is going away; an error on the way out is not an outage
                if not failed:
                    metrics.CHANNEL_LAYER_ERRORS.inc()
                    logger.warning("Channel layer unreachable, retrying: %s", error)
                failed = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    async def _ping(self, channel: str) -> None:
        index = self.consistent_hash(channel)
        connection = self.connection(index)
        await connection.ping()
