"""ORM calls from async code, on a pool of threads instead of one."""

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import close_old_connections

from chatserver import metrics

_executors: dict[str, ThreadPoolExecutor] = {}
_lock = threading.Lock()


# Each pool of threads, by name, and the setting that sizes it.
_POOL_SIZES = {"db": "DATABASE_THREADS", "http": "HTTP_THREADS"}


def _get_executor(name: str) -> ThreadPoolExecutor:
    """The process's pool of threads called ``name``, started on first use."""
    with _lock:
        if name not in _executors:
            size = getattr(settings, _POOL_SIZES[name])
            _executors[name] = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
        return _executors[name]


def db(function: Callable[..., Any]) -> Callable[..., Any]:
    """``database_sync_to_async`` on ``DATABASE_THREADS`` threads.

    Channels runs every consumer's sync code on one thread per process, so a
    process makes one query at a time and, on PostgreSQL, that thread spends
    most of its time waiting on the network. The services keep no state on
    their thread between calls (each call takes a pooled connection and gives
    it back when it ends), so any thread will do; row locks, not threads,
    order concurrent sends. SQLite has one writer anyway and stays on one thread.
    """
    if settings.DATABASE_THREADS <= 1:
        return database_sync_to_async(_measured(function))
    return database_sync_to_async(_closing(_measured(function)), thread_sensitive=False, executor=_get_executor("db"))


def in_request_thread(function: Callable[..., Any]) -> Callable[..., Any]:
    """Where a whole HTTP request runs (``chatserver.handlers``): threads of
    its own, so requests (a login hashing a password, a search) never queue
    the sockets' database work, nor the sockets' work a request."""
    return database_sync_to_async(_closing(function), thread_sensitive=False, executor=_get_executor("http"))


@functools.cache
def _counters(name: str) -> tuple:
    """The labelled counters of one call name, looked up once per process."""
    return metrics.DB_CALLS.labels(name), metrics.DB_CALL_CPU.labels(name), metrics.DB_CALL_WALL.labels(name)


def _measured(function: Callable[..., Any]) -> Callable[..., Any]:
    """Count the call and the CPU and wall time it took, labelled by its name."""
    calls, cpu, wall = _counters(function.__name__)

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        cpu_started, started = time.thread_time(), time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            calls.inc()
            cpu.inc(time.thread_time() - cpu_started)
            wall.inc(time.perf_counter() - started)

    return call


def _closing(function: Callable[..., Any]) -> Callable[..., Any]:
    """Give the call's connection back to the pool inside the call itself.

    ``database_sync_to_async`` closes connections after the call, but outside
    the context asgiref ran it in, and there (asgiref 3.13) it did not always
    see the connection: each thread kept its last one checked out of the pool
    until its next call, and a stopped thread kept it for good.
    """

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return call


def shutdown() -> None:
    """Wait for the threads' calls in flight and the writer's queue, and stop
    them (later calls start new ones); their connections are closed or back in
    the pool when this returns."""
    from messaging.writer import get_writer

    with _lock:
        executors = list(_executors.values())
        _executors.clear()
    for executor in executors:
        executor.shutdown(wait=True)
    get_writer().shutdown()
