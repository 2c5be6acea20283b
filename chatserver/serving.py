"""The event loop that serves the application, made known to whoever needs it."""

import asyncio
import gc

from messaging.fanout import get_fanout


class ServingLoop:
    """ASGI wrapper: binds the fan-out to the loop the server runs the
    application on, at its first connection or request, so that events
    committed on any thread reach this process's sockets through it. (No
    lifespan: ``manage.py serve`` runs without it, and daphne has none.)

    At that first call the objects made while starting (Django, the apps,
    the URL and template machinery) are moved out of the garbage collector's
    generations (``gc.freeze``): a full collection no longer walks them, and
    full collections were the longest pauses of the event loop.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.frozen = False

    async def __call__(self, scope, receive, send):
        get_fanout().bind(asyncio.get_running_loop())
        if not self.frozen:
            self.frozen = True
            gc.freeze()
        return await self.app(scope, receive, send)
