"""WebSocket routes. The chat consumer is added with the messaging feature."""

websocket_urlpatterns: list = []
