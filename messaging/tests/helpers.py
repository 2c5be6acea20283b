"""Helpers shared by the WebSocket unit tests (the Device client is in conftest.py)."""

from channels.db import database_sync_to_async
from django.db.models import F

from messaging import services
from messaging.models import Message
from messaging.rules import visible_to

# A message sent through the service, from async test code.
send_async = database_sync_to_async(services.message_send)


def dm(to, content: str = "hi", **extra) -> dict:
    """A ``direct_message`` frame to the user ``to``."""
    return {"type": "direct_message", "to": str(to.id), "content": content, **extra}


def undelivered(user) -> list[Message]:
    """The tests' view of delivery state: messages to ``user`` past the
    delivered cursor of their membership (no device of theirs was sent them),
    oldest first."""
    return list(
        Message.objects.filter(
            visible_to(user.id), seq__gt=F("conversation__memberships__delivered_seq"), is_deleted=False
        )
        .exclude(sender=user)
        .order_by("created_at", "seq")
    )
