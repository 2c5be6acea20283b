"""A Redis channel layer that rides out a Redis outage.

channels-redis raises from ``receive`` when Redis is unreachable, which ends
the consumer and with it the client's socket; and a restarted Redis has
forgotten every group membership. This layer retries instead, and when Redis
answers again hands the consumer one ``layer.reconnected`` message so it can
join its group again and fill what it missed from the event log.
"""

import asyncio
import logging

from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError

from chatserver import metrics

logger = logging.getLogger(__name__)

RECONNECTED = {"type": "layer.reconnected"}
UNAVAILABLE = (RedisError, OSError)
MAX_BACKOFF_SECONDS = 5.0


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
