"""Who is online: a user is online while at least one of their sockets is
connected on any process.

Each socket registers itself with an expiry it refreshes while open, so the
sockets of a process that dies vanish on their own. The announced state (what
contacts were last told) is kept separately, so a quick reconnect inside the
grace period changes nothing and nobody sees a flap. In process memory by
default; in Redis (shared by all processes) when ``REDIS_URL`` is set.
"""

import threading
import time
import uuid
from collections.abc import Iterable

from django.conf import settings

from messaging.ratelimit import Clock

# A socket's registration lives this long unless refreshed (every third of it).
SOCKET_TTL_SECONDS = 90


class MemoryPresence:
    blocking = False

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._sockets: dict[uuid.UUID, dict[str, float]] = {}
        self._announced: dict[uuid.UUID, bool] = {}
        self._lock = threading.Lock()

    def _live(self, user_id: uuid.UUID, now: float) -> dict[str, float]:
        sockets = self._sockets.setdefault(user_id, {})
        for channel in [c for c, expires in sockets.items() if expires <= now]:
            del sockets[channel]
        return sockets

    def add(self, user_id: uuid.UUID, channel: str) -> None:
        now = self.clock()
        with self._lock:
            self._live(user_id, now)[channel] = now + SOCKET_TTL_SECONDS

    def remove(self, user_id: uuid.UUID, channel: str) -> None:
        with self._lock:
            self._live(user_id, self.clock()).pop(channel, None)

    def online(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        now = self.clock()
        with self._lock:
            return {pk for pk in user_ids if self._live(pk, now)}

    def announce(self, user_id: uuid.UUID, online: bool) -> bool:
        """Record what contacts are told; True if it changed (so tell them)."""
        with self._lock:
            changed = self._announced.get(user_id, False) != online
            self._announced[user_id] = online
            return changed


class RedisPresence:
    blocking = True

    def __init__(self, url: str, *, prefix: str, clock: Clock = time.time) -> None:
        import redis

        self.clock = clock
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def _key(self, user_id: uuid.UUID) -> str:
        return f"{self.prefix}:sockets:{user_id}"

    def add(self, user_id: uuid.UUID, channel: str) -> None:
        now = self.clock()
        pipe = self._client.pipeline()
        pipe.zremrangebyscore(self._key(user_id), "-inf", now)
        pipe.zadd(self._key(user_id), {channel: now + SOCKET_TTL_SECONDS})
        pipe.expire(self._key(user_id), SOCKET_TTL_SECONDS * 2)
        pipe.execute()

    def remove(self, user_id: uuid.UUID, channel: str) -> None:
        self._client.zrem(self._key(user_id), channel)

    def online(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        user_ids = list(user_ids)
        if not user_ids:
            return set()
        now = self.clock()
        pipe = self._client.pipeline()
        for pk in user_ids:
            pipe.zcount(self._key(pk), f"({now}", "+inf")
        return {pk for pk, count in zip(user_ids, pipe.execute(), strict=True) if count}

    def announce(self, user_id: uuid.UUID, online: bool) -> bool:
        # SET ... GET swaps atomically: of two processes announcing, one sees the change.
        old = self._client.set(f"{self.prefix}:announced:{user_id}", b"1" if online else b"0", get=True)
        return (old == b"1") != online


Presence = MemoryPresence | RedisPresence

_presence: Presence | None = None


def build_presence(*, prefix: str | None = None, clock: Clock | None = None) -> Presence:
    kwargs = {"clock": clock} if clock else {}
    if settings.REDIS_URL:
        return RedisPresence(settings.REDIS_URL, prefix=prefix or settings.PRESENCE_PREFIX, **kwargs)
    return MemoryPresence(**kwargs)


def get_presence() -> Presence:
    global _presence
    if _presence is None:
        _presence = build_presence()
    return _presence


def set_presence(presence: Presence | None) -> None:
    """Replace the process-wide registry (tests inject one with their own clock)."""
    global _presence
    _presence = presence
