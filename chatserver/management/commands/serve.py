"""``manage.py serve``: the production server.

uvicorn rather than daphne in production because it closes WebSockets with
1012 (service restart) on SIGTERM while finishing in-flight requests, and
applies back-pressure to a client that stops reading (a paused transport
blocks that socket's sends instead of buffering without bound). daphne stays
the development server behind ``runserver``.
"""

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

# Frames up to this size reach the consumer, which answers frames over
# WS_MAX_FRAME_BYTES with a frame_too_large error; larger ones are closed with
# 1009 by uvicorn before any parsing.
WS_MAX_WIRE_BYTES = 1024 * 1024


class Command(BaseCommand):
    help = "Serve HTTP and WebSocket with uvicorn (production); settings come from the environment."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=settings.SERVER_HOST)
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--workers", type=int, default=settings.SERVER_WORKERS)

    def handle(self, *args, host: str, port: int, workers: int, **options) -> None:
        uvicorn.run(
            "chatserver.asgi:application",
            host=host,
            port=port,
            workers=workers,
            lifespan="off",
            # Client addresses come from TRUSTED_PROXY_COUNT in the app, not from uvicorn.
            proxy_headers=False,
            server_header=False,
            ws="websockets-sansio",
            ws_max_size=max(WS_MAX_WIRE_BYTES, settings.WS_MAX_FRAME_BYTES),
            ws_ping_interval=settings.WS_PING_INTERVAL_SECONDS,
            ws_ping_timeout=settings.WS_PING_TIMEOUT_SECONDS,
            # Chat frames are small; compression costs CPU per message for little gain.
            ws_per_message_deflate=False,
            timeout_graceful_shutdown=settings.SHUTDOWN_TIMEOUT_SECONDS,
            # Logging stays Django's (JSON, redacted); uvicorn's loggers propagate to it.
            log_config=None,
        )
