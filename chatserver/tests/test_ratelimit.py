"""Token buckets on the configured backend (memory, or real Redis when REDIS_URL is set)."""

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chatserver.ratelimit import MemoryBuckets, Rate, build_limiter

SEED_WS = Rate(capacity=10, per_second=10)
SEED_REST = Rate(capacity=60, per_second=1)


def test_burst_then_refuse_then_steady_refill(rate_limiter, clock):
    key = f"k:{uuid.uuid4()}"
    decisions = [rate_limiter.hit(key, SEED_REST) for _ in range(61)]
    assert all(d.allowed for d in decisions[:60])
    refused = decisions[60]
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after == pytest.approx(1.0)
    assert refused.reset_after == pytest.approx(60.0)

    clock.advance(0.5)
    assert not rate_limiter.hit(key, SEED_REST).allowed
    clock.advance(0.5)
    assert rate_limiter.hit(key, SEED_REST).allowed  # one token a second
    assert not rate_limiter.hit(key, SEED_REST).allowed
    clock.advance(120)
    assert rate_limiter.hit(key, SEED_REST).remaining == 59  # full again, never beyond capacity


def test_remaining_counts_down(rate_limiter):
    key = f"k:{uuid.uuid4()}"
    assert [rate_limiter.hit(key, SEED_WS).remaining for _ in range(3)] == [9, 8, 7]


def test_keys_are_independent(rate_limiter):
    a, b = f"a:{uuid.uuid4()}", f"b:{uuid.uuid4()}"
    for _ in range(10):
        rate_limiter.hit(a, SEED_WS)
    assert not rate_limiter.hit(a, SEED_WS).allowed
    assert rate_limiter.hit(b, SEED_WS).allowed


def test_concurrent_hits_allow_exactly_the_burst(rate_limiter):
    key = f"k:{uuid.uuid4()}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: rate_limiter.hit(key, SEED_REST).allowed, range(200)))
    assert results.count(True) == 60


async def test_hits_from_the_event_loop_in_one_turn_allow_exactly_the_burst(rate_limiter, clock):
    """Frames of many sockets checked at once (one pipelined round trip with Redis)."""
    import asyncio

    key = f"k:{uuid.uuid4()}"
    decisions = await asyncio.gather(*(rate_limiter.ahit(key, SEED_WS) for _ in range(25)))
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 15
    assert [d.remaining for d in decisions[:3]] == [9, 8, 7]  # in the order they were asked
    clock.advance(0.1)
    assert (await rate_limiter.ahit(key, SEED_WS)).allowed


async def test_unreachable_redis_fails_open_from_the_event_loop(clock, caplog):
    import asyncio

    from chatserver.ratelimit import RedisBuckets

    with socket_that_refuses() as port:
        limiter = RedisBuckets(f"redis://127.0.0.1:{port}/0", clock=clock)
        decisions = await asyncio.gather(*(limiter.ahit("k", SEED_WS) for _ in range(20)))
    assert all(d.allowed for d in decisions)
    assert "Rate limiter unavailable" in caplog.text


def test_two_limiters_sharing_redis_allow_the_limit_once(clock):
    """Two processes' limiters (same prefix) draw from one bucket."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL: in-memory buckets are per process by design")
    prefix = f"test:{uuid.uuid4().hex}"
    one, two = build_limiter(prefix=prefix, clock=clock), build_limiter(prefix=prefix, clock=clock)
    allowed = sum((one if n % 2 else two).hit("user", SEED_WS).allowed for n in range(20))
    assert allowed == 10


def test_memory_buckets_forget_full_buckets(clock):
    buckets = MemoryBuckets(clock)
    buckets.SWEEP_EVERY = 5
    for n in range(4):
        buckets.hit(f"k{n}", SEED_WS)
    clock.advance(10)
    buckets.hit("k-last", SEED_WS)  # 5th hit sweeps
    assert list(buckets._buckets) == ["k-last"]


def test_unreachable_redis_fails_open(clock, caplog):
    from chatserver.ratelimit import RedisBuckets

    with socket_that_refuses() as port:
        limiter = RedisBuckets(f"redis://127.0.0.1:{port}/0", clock=clock)
        decisions = [limiter.hit("k", SEED_WS) for _ in range(20)]
    assert all(d.allowed for d in decisions)
    assert "Rate limiter unavailable" in caplog.text


def socket_that_refuses():
    """A local port with nothing listening."""
    import contextlib
    import socket

    @contextlib.contextmanager
    def port():
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            yield sock.getsockname()[1]  # bound but not listening: connections are refused

    return port()
