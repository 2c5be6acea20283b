"""chatserver.db: database calls from async code, counted in /metrics."""

import threading

import pytest
from prometheus_client import REGISTRY

from chatserver.db import db


def _sample(name: str, call: str) -> float:
    return REGISTRY.get_sample_value(name, {"call": call}) or 0.0


def busy_call(n: int) -> tuple[int, int]:
    return sum(i * i for i in range(n)), threading.get_ident()


@pytest.mark.django_db(transaction=True)
async def test_a_call_runs_off_the_event_loop_and_is_counted_with_its_cpu_time():
    calls, cpu, wall = (
        _sample(name, "busy_call")
        for name in ("chat_db_calls_total", "chat_db_call_cpu_seconds_total", "chat_db_call_seconds_total")
    )
    total, thread = await db(busy_call)(200_000)
    assert total == sum(i * i for i in range(200_000))
    assert thread != threading.get_ident()
    assert _sample("chat_db_calls_total", "busy_call") == calls + 1
    spent_cpu = _sample("chat_db_call_cpu_seconds_total", "busy_call") - cpu
    spent_wall = _sample("chat_db_call_seconds_total", "busy_call") - wall
    assert 0 < spent_cpu <= spent_wall + 0.01  # the thread's own CPU, within its wall time
