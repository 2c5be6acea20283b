"""Helpers shared by the WebSocket unit tests (the Device client is in conftest.py)."""

from channels.db import database_sync_to_async

from messaging import services

# A message sent through the service, from async test code.
send_async = database_sync_to_async(services.message_send)


def dm(to, content: str = "hi", **extra) -> dict:
    """A ``direct_message`` frame to the user ``to``."""
    return {"type": "direct_message", "to": str(to.id), "content": content, **extra}
