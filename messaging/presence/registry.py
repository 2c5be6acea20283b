"""Who is online: a user is online while at least one of their sockets is
connected on any process.

Each socket registers itself with an expiry it refreshes while open, so the
sockets of a process that dies vanish on their own. What contacts were last
told (the announced state, with a version that grows on every change) is kept
beside them, and every transition is one atomic step: a reconnect on one
process and a settle on another can never both win. In process memory by
default; in Redis, shared by all processes, when ``REDIS_URL`` is set.
"""

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings

from chatserver.runtime import Clock, ProcessWide

# A socket's registration lives this long unless refreshed (every third of it).
SOCKET_TTL_SECONDS = 90

logger = logging.getLogger(__name__)


def _fail_soft(default: Callable[[], object]) -> Callable:
    """Presence is advisory: while Redis is unreachable nobody is announced and
    everyone reads as offline, instead of chat and REST failing with it."""

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except self._errors as error:
                logger.warning("Presence unavailable (%s): %s", method.__name__, error)
                return default()

        return wrapper

    return decorate


@dataclass
class _UserState:
    sockets: dict[str, float] = field(default_factory=dict)
    online: bool = False
    version: int = 0
    offline_since: float | None = None


class MemoryPresence:
    blocking = False

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._users: dict[uuid.UUID, _UserState] = {}
        self._lock = threading.Lock()

    def _state(self, user_id: uuid.UUID, now: float) -> _UserState:
        state = self._users.setdefault(user_id, _UserState())
        for channel in [c for c, expires in state.sockets.items() if expires <= now]:
            del state.sockets[channel]
        return state

    def connect(self, user_id: uuid.UUID, channel: str, limit: int | None = None) -> tuple[bool, int | None]:
        """Register a socket unless the user has ``limit`` already: (registered,
        the new version if the user just came online)."""
        now = self.clock()
        with self._lock:
            state = self._state(user_id, now)
            if limit is not None and channel not in state.sockets and len(state.sockets) >= limit:
                return False, None
            state.sockets[channel] = now + SOCKET_TTL_SECONDS
            state.offline_since = None
            if state.online:
                return True, None
            state.online, state.version = True, state.version + 1
            return True, state.version

    def connect_many(self, sockets: list[tuple[uuid.UUID, str]], limit: int | None = None) -> list:
        return [self.connect(user_id, channel, limit) for user_id, channel in sockets]

    def refresh(self, sockets: list[tuple[uuid.UUID, str]]) -> None:
        """Keep these (user, channel) sockets registered for another TTL."""
        now = self.clock()
        with self._lock:
            for user_id, channel in sockets:
                self._state(user_id, now).sockets[channel] = now + SOCKET_TTL_SECONDS

    def disconnect(self, user_id: uuid.UUID, channel: str) -> None:
        now = self.clock()
        with self._lock:
            state = self._state(user_id, now)
            state.sockets.pop(channel, None)
            if not state.sockets:
                state.offline_since = now

    def disconnect_many(self, sockets: list[tuple[uuid.UUID, str]]) -> None:
        for user_id, channel in sockets:
            self.disconnect(user_id, channel)

    def settle(self, user_id: uuid.UUID) -> int | None:
        """The new version if the user had no socket left and is now announced offline."""
        with self._lock:
            state = self._state(user_id, self.clock())
            if state.sockets or not state.online:
                return None
            state.online, state.version = False, state.version + 1
            return state.version

    def online(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        now = self.clock()
        with self._lock:  # read only: asking about a user leaves no state behind
            return {
                pk
                for pk in user_ids
                if (state := self._users.get(pk)) and any(expires > now for expires in state.sockets.values())
            }

    def stale(self, grace: float) -> list[uuid.UUID]:
        """Announced online, yet no socket for longer than ``grace`` (or their
        process died): the sweeper settles these."""
        now = self.clock()
        with self._lock:
            return [
                pk
                for pk in list(self._users)
                if (state := self._state(pk, now)).online
                and not state.sockets
                and (state.offline_since is None or now - state.offline_since >= grace)
            ]


_CONNECT_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local limit = tonumber(ARGV[6])
if limit >= 0 and not redis.call('ZSCORE', KEYS[1], ARGV[3]) and redis.call('ZCARD', KEYS[1]) >= limit then
  return -1
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('HDEL', KEYS[2], 'offline_since')
if redis.call('HGET', KEYS[2], 'online') == '1' then return false end
redis.call('HSET', KEYS[2], 'online', '1')
redis.call('SADD', KEYS[3], ARGV[5])
return redis.call('HINCRBY', KEYS[2], 'version', 1)
"""

_DISCONNECT_LUA = """
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('HSET', KEYS[2], 'offline_since', ARGV[1]) end
return 0
"""

_SETTLE_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) > 0 or redis.call('HGET', KEYS[2], 'online') ~= '1' then return false end
redis.call('HSET', KEYS[2], 'online', '0')
redis.call('SREM', KEYS[3], ARGV[2])
return redis.call('HINCRBY', KEYS[2], 'version', 1)
"""


class RedisPresence:
    blocking = True

    def __init__(self, url: str, *, prefix: str, clock: Clock = time.time) -> None:
        import redis

        self.clock = clock
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._connect = self._client.register_script(_CONNECT_LUA)
        self._disconnect = self._client.register_script(_DISCONNECT_LUA)
        self._settle = self._client.register_script(_SETTLE_LUA)
        self._online_set = f"{prefix}:online"
        self._errors = (redis.RedisError, OSError)
        self._no_script = redis.exceptions.NoScriptError

    def _keys(self, user_id: uuid.UUID) -> list[str]:
        return [f"{self.prefix}:sockets:{user_id}", f"{self.prefix}:state:{user_id}", self._online_set]

    def connect(self, user_id: uuid.UUID, channel: str, limit: int | None = None) -> tuple[bool, int | None]:
        return self.connect_many([(user_id, channel)], limit)[0]

    def connect_many(
        self, sockets: list[tuple[uuid.UUID, str]], limit: int | None = None
    ) -> list[tuple[bool, int | None]]:
        """``connect`` for many sockets in one pipelined round trip."""
        try:
            now = self.clock()
            versions = self._pipelined(
                self._connect,
                [
                    (
                        self._keys(user_id),
                        [now, now + SOCKET_TTL_SECONDS, channel, SOCKET_TTL_SECONDS * 2, str(user_id), limit or -1],
                    )
                    for user_id, channel in sockets
                ],
            )
        except self._errors as error:
            logger.warning("Presence unavailable (connect): %s", error)
            return [(True, None)] * len(sockets)
        return [(False, None) if version == -1 else (True, int(version) if version else None) for version in versions]

    @_fail_soft(lambda: None)
    def refresh(self, sockets: list[tuple[uuid.UUID, str]]) -> None:
        """Keep these (user, channel) sockets registered for another TTL: one round trip."""
        expires = self.clock() + SOCKET_TTL_SECONDS
        pipe = self._client.pipeline(transaction=False)
        for user_id, channel in sockets:
            key = self._keys(user_id)[0]
            pipe.zadd(key, {channel: expires})
            pipe.expire(key, SOCKET_TTL_SECONDS * 2)
        pipe.execute()

    def disconnect(self, user_id: uuid.UUID, channel: str) -> None:
        self.disconnect_many([(user_id, channel)])

    @_fail_soft(lambda: None)
    def disconnect_many(self, sockets: list[tuple[uuid.UUID, str]]) -> None:
        """``disconnect`` for many sockets in one pipelined round trip."""
        now = self.clock()
        self._pipelined(self._disconnect, [(self._keys(user_id)[:2], [now, channel]) for user_id, channel in sockets])

    def _pipelined(self, script, calls: list[tuple[list, list]]) -> list:
        """One script for many keys in one round trip: EVALSHA in a pipeline
        (redis-py's pipelined scripts ask SCRIPT EXISTS first, a round trip
        more); a Redis that lost its scripts (restarted) gets them again once."""
        for attempt in range(2):
            pipe = self._client.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                return pipe.execute()
            except self._no_script:
                if attempt:
                    raise
                script.sha = self._client.script_load(script.script)
        return []

    @_fail_soft(lambda: None)
    def settle(self, user_id: uuid.UUID) -> int | None:
        version = self._settle(keys=self._keys(user_id), args=[self.clock(), str(user_id)])
        return int(version) if version else None

    @_fail_soft(set)
    def online(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        user_ids = list(user_ids)
        if not user_ids:
            return set()
        now = self.clock()
        pipe = self._client.pipeline()
        for pk in user_ids:
            pipe.zcount(self._keys(pk)[0], f"({now}", "+inf")
        return {pk for pk, count in zip(user_ids, pipe.execute(), strict=True) if count}

    @_fail_soft(list)
    def stale(self, grace: float) -> list[uuid.UUID]:
        now = self.clock()
        candidates = [uuid.UUID(raw.decode()) for raw in self._client.sscan_iter(self._online_set, count=500)]
        live = self.online(candidates)
        stale = []
        for pk in candidates:
            if pk in live:
                continue
            since = self._client.hget(self._keys(pk)[1], "offline_since")
            if since is None or now - float(since) >= grace:
                stale.append(pk)
        return stale


Presence = MemoryPresence | RedisPresence


def build_presence(*, prefix: str | None = None, clock: Clock | None = None) -> Presence:
    kwargs = {"clock": clock} if clock else {}
    if settings.REDIS_URL:
        return RedisPresence(settings.REDIS_URL, prefix=prefix or settings.PRESENCE_PREFIX, **kwargs)
    return MemoryPresence(**kwargs)


_presence: ProcessWide[Presence] = ProcessWide(build_presence)
get_presence = _presence.get
set_presence = _presence.set  # tests inject one with their own clock
