"""ASGI entry point: HTTP goes to Django (the whole request in one thread, see
chatserver.handlers); WebSocket passes the origin check and JWT
authentication, then Channels' router."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatserver.settings")

# Set up Django (apps, models) before importing anything that touches models.
django.setup(set_prefix=False)

from chatserver.handlers import SyncPipelineASGIHandler  # noqa: E402

django_asgi_app = SyncPipelineASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.authentication import WebSocketTokenAuthMiddleware  # noqa: E402
from chatserver.daphne import adjust_daphne  # noqa: E402
from chatserver.serving import ServingLoop  # noqa: E402
from chatserver.websocket import BrowserOriginValidator  # noqa: E402
from messaging.routing import websocket_urlpatterns  # noqa: E402

adjust_daphne()

application = ServingLoop(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": BrowserOriginValidator(WebSocketTokenAuthMiddleware(URLRouter(websocket_urlpatterns))),
        }
    )
)
