"""Process-wide parts shared by the apps: the clock type the injectable
services take, and a holder for a part built on first use and replaced by
tests (the rate limiter, the presence registry)."""

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

# Seconds since some epoch: time.time for values other processes read
# (Redis), time.monotonic for in-process ones; tests pass a fake.
Clock = Callable[[], float]

T = TypeVar("T")


class ProcessWide(Generic[T]):
    """One ``build()`` per process, made on first use (settings are read then,
    not at import); ``set`` replaces it, ``set(None)`` makes the next ``get``
    build afresh."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value

    def set(self, value: T | None) -> None:
        self._value = value
