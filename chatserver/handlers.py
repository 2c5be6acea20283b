"""Django's ASGI handler, with the middleware and the view run in one thread."""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse


class SyncPipelineASGIHandler(ASGIHandler):
    """Every middleware and view here is synchronous code, so a request
    crosses into a thread once and runs the whole chain there.

    Django's own ASGI handler runs the chain in async mode, where each
    ``MiddlewareMixin`` middleware moves its ``process_request`` and
    ``process_response`` to a thread separately: about sixteen round trips
    between the event loop and a thread for one request, which cost more CPU
    than the request's own work. The event loop still owns the connection
    (reading the body, streaming the response); an async view would run
    through ``async_to_sync`` in the thread.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponse:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
