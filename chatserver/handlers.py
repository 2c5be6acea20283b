"""Django's ASGI handler, with a whole request served in one trip to a thread."""

from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import close_old_connections
from django.http import FileResponse, HttpResponse
from django.urls import set_script_prefix

from chatserver.db import in_request_thread


class SyncPipelineASGIHandler(ASGIHandler):
    """Every middleware and view here is synchronous code, so a request crosses
    into a thread once and runs everything there: the request signals, the
    middleware chain, the view and, for a response already in memory, its
    close (which sends ``request_finished``).

    Django's own ASGI handler runs the chain in async mode, where each
    ``MiddlewareMixin`` middleware moves its ``process_request`` and
    ``process_response`` to a thread separately, and the request signals and
    the response's close go to yet another thread made for each request
    (its ``ThreadSensitiveContext``): many round trips between the event loop
    and threads per request, and a new thread every time. Here a request
    runs on a pooled thread (``chatserver.db.in_request_thread``: one of
    ``HTTP_THREADS``, apart from the sockets' database threads), so a request
    waiting on PostgreSQL or hashing a password (bcrypt releases the
    interpreter) holds up no other request and no socket.

    The event loop still owns the connection: it reads the body and sends the
    response, streaming a streamed one (then closes it in a thread). A client
    that goes away mid-request no longer cancels the view; its response is
    dropped by the server.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def __call__(self, scope, receive, send) -> None:
        # Django's, without its ThreadSensitiveContext: it gives every request
        # a new thread for thread-sensitive code, none of which runs here.
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def handle(self, scope, receive, send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        response = await in_request_thread(self._respond)(scope, body_file)
        try:
            await self.send_response(response, send)
        finally:
            if response.streaming:
                await in_request_thread(response.close)()
            body_file.close()

    def _respond(self, scope, body_file) -> HttpResponse:
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if response.streaming:
            close_old_connections()  # the view is done with the database; the body streams later
        else:
            response.close()  # request_finished, here: this thread's connection goes back to the pool
        return response
