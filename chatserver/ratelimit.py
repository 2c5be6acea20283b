"""Token-bucket rate limits, per key, shared by every process when Redis is configured.

A bucket holds up to ``capacity`` tokens and refills at ``per_second``; each
request takes one. Without Redis the buckets live in process memory; with
``REDIS_URL`` one Lua script reads, refills, takes and writes a bucket
atomically, so any number of processes together allow exactly the limit.
If Redis cannot be reached the limiter fails open (allows, and logs a warning):
an outage of the fan-out store should not also lock every user out. The clock
is injectable so tests never sleep.
"""

import asyncio
import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from chatserver import metrics
from chatserver.runtime import Clock, ProcessWide

logger = logging.getLogger(__name__)

# Refill is computed from float timestamps; don't let rounding withhold a whole token.
EPSILON = 1e-9


@dataclass(frozen=True)
class Rate:
    capacity: int  # burst size
    per_second: float  # steady refill


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: float  # seconds until the next request would be allowed (0 when allowed)
    reset_after: float  # seconds until the bucket is full again

    @classmethod
    def from_tokens(cls, allowed: bool, tokens: float, rate: Rate) -> "Decision":
        return cls(
            allowed=allowed,
            limit=rate.capacity,
            remaining=max(0, math.floor(tokens)),
            retry_after=0.0 if allowed else max(0.0, (1 - tokens) / rate.per_second),
            reset_after=max(0.0, (rate.capacity - tokens) / rate.per_second),
        )


class MemoryBuckets:
    """Buckets in this process only: the embedded, single-process default."""

    SWEEP_EVERY = 10_000

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float, Rate]] = {}
        self._lock = threading.Lock()
        self._hits = 0

    def hit(self, key: str, rate: Rate, *, take: bool = True) -> Decision:
        now = self.clock()
        with self._lock:
            tokens, updated, _ = self._buckets.get(key, (rate.capacity, now, rate))
            tokens = min(rate.capacity, tokens + max(0.0, now - updated) * rate.per_second)
            allowed = tokens >= 1 - EPSILON
            if allowed and take:
                tokens = max(0.0, tokens - 1)
            self._buckets[key] = (tokens, max(now, updated), rate)
            self._hits += 1
            if self._hits % self.SWEEP_EVERY == 0:
                self._sweep(now)
        return Decision.from_tokens(allowed, tokens, rate)

    async def ahit(self, key: str, rate: Rate, *, take: bool = True) -> Decision:
        return self.hit(key, rate, take=take)

    def _sweep(self, now: float) -> None:
        """Forget buckets that have refilled completely: they hold no state."""
        full = [
            key
            for key, (tokens, updated, rate) in self._buckets.items()
            if tokens + (now - updated) * rate.per_second >= rate.capacity
        ]
        for key in full:
            del self._buckets[key]


_BUCKET_SCRIPT_LUA = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local take = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 - 1e-9 then
  allowed = 1
  if take == 1 then
    tokens = math.max(0, tokens - 1)
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(math.max(now, ts)))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    """Buckets in Redis, one atomic script call per hit, shared by all processes.

    ``hit`` (REST views, in their threads) calls Redis synchronously. ``ahit``
    (WebSocket frames and handshakes, on the event loop) queues the call, and
    the calls queued in one turn of the loop go to Redis as one pipelined
    round trip: no thread per frame, and a few hundred frames a second cost a
    few round trips, not hundreds.
    """

    def __init__(self, url: str, *, prefix: str = "rl", clock: Clock = time.time) -> None:
        import redis

        self.url = url
        self.clock = clock
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._client.register_script(_BUCKET_SCRIPT_LUA)
        self._errors = (redis.RedisError, OSError)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queued: list[tuple[str, list, Rate, asyncio.Future]] = []

    def _args(self, key: str, rate: Rate, take: bool) -> tuple[str, list]:
        return f"{self.prefix}:{key}", [rate.capacity, repr(rate.per_second), repr(self.clock()), int(take)]

    def _decision(self, reply, rate: Rate) -> Decision:
        allowed, tokens = reply
        return Decision.from_tokens(bool(allowed), float(tokens), rate)

    def _fail_open(self, rate: Rate, error: Exception) -> Decision:
        # Fail open: an unreachable Redis must not take the chat down with it.
        logger.warning("Rate limiter unavailable, allowing request: %s", error)
        return Decision.from_tokens(True, rate.capacity, rate)

    def hit(self, key: str, rate: Rate, *, take: bool = True) -> Decision:
        redis_key, args = self._args(key, rate, take)
        try:
            return self._decision(self._script(keys=[redis_key], args=args), rate)
        except self._errors as error:
            return self._fail_open(rate, error)

    async def ahit(self, key: str, rate: Rate, *, take: bool = True) -> Decision:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            from redis import asyncio as aioredis

            self._loop, self._queued = loop, []
            self._async_client = aioredis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
            self._async_script = self._async_client.register_script(_BUCKET_SCRIPT_LUA)
        future = loop.create_future()
        self._queued.append((*self._args(key, rate, take), rate, future))
        if len(self._queued) == 1:
            loop.call_soon(lambda: loop.create_task(self._flush()))
        return await future

    async def _flush(self) -> None:
        batch, self._queued = self._queued, []
        try:
            replies = await self._evalsha_all(batch)
        except self._errors as error:
            for _, _, rate, future in batch:
                if not future.done():
                    future.set_result(self._fail_open(rate, error))
            return
        for (_, _, rate, future), reply in zip(batch, replies, strict=True):
            if not future.done():
                future.set_result(self._decision(reply, rate))

    async def _evalsha_all(self, batch: list) -> list:
        """EVALSHA in a pipeline: redis-py's pipelined scripts ask SCRIPT EXISTS
        first, a round trip more per flush. A Redis that lost its scripts
        (restarted) is given the script again, once."""
        from redis.exceptions import NoScriptError

        for attempt in range(2):
            async with self._async_client.pipeline(transaction=False) as pipe:
                for redis_key, args, _, _ in batch:
                    pipe.evalsha(self._async_script.sha, 1, redis_key, *args)
                try:
                    return await pipe.execute()
                except NoScriptError:
                    if attempt:
                        raise
                    self._async_script.sha = await self._async_client.script_load(_BUCKET_SCRIPT_LUA)
        return []


Buckets = MemoryBuckets | RedisBuckets


def build_limiter(*, prefix: str | None = None, clock: Clock | None = None) -> Buckets:
    if settings.REDIS_URL:
        return RedisBuckets(
            settings.REDIS_URL, prefix=prefix or settings.RATE_LIMIT_PREFIX, **({"clock": clock} if clock else {})
        )
    return MemoryBuckets(**({"clock": clock} if clock else {}))


_limiter: ProcessWide[Buckets] = ProcessWide(build_limiter)
get_limiter = _limiter.get
set_limiter = _limiter.set  # tests inject one with their own clock


def rate(name: str) -> Rate:
    """The configured limit ``name`` from settings.RATE_LIMITS: (burst, refill per second)."""
    capacity, per_second = settings.RATE_LIMITS[name]
    return Rate(capacity, per_second)


def _counted(name: str, decision: Decision) -> Decision:
    if not decision.allowed:
        metrics.RATE_LIMITED.labels(name).inc()
    return decision


def hit(name: str, key: str) -> Decision:
    return _counted(name, get_limiter().hit(f"{name}:{key}", rate(name)))


def peek(name: str, key: str) -> Decision:
    """Whether a request would be allowed, without spending a token."""
    return get_limiter().hit(f"{name}:{key}", rate(name), take=False)


async def ahit(name: str, key: str) -> Decision:
    """``hit`` from the event loop, without blocking it."""
    return _counted(name, await get_limiter().ahit(f"{name}:{key}", rate(name)))
