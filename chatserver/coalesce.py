"""Calls made in one turn of the event loop, made as one call for all of them."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalesced(Generic[Item, Result]):
    """``await coalesced(item)`` from many coroutines of one loop turn runs
    ``run(items)`` once (in submission order) and gives each caller its own
    outcome: a result, or an exception instance raised to that caller alone.

    A burst of handshakes (a reconnect storm) then costs one database call
    and a few queries per burst rather than per socket, while a lone
    handshake waits for nothing but the end of the current loop turn.
    """

    def __init__(self, run: Callable[[list[Item]], Awaitable[list[Result | BaseException]]]) -> None:
        self.run = run
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[Item, asyncio.Future]]] = {}

    async def __call__(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        pending = self._pending.setdefault(loop, [])
        pending.append((item, future))
        if len(pending) == 1:
            loop.call_soon(self._start, loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop, [])
        loop.create_task(self._run(batch))

    async def _run(self, batch: list[tuple[Item, asyncio.Future]]) -> None:
        try:
            outcomes = await self.run([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as error:  # the whole call failed: every caller hears it
            outcomes = [error] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
