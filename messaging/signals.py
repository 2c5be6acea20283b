"""What messaging does when accounts tells it something (accounts.signals)."""

import uuid

from django.dispatch import receiver

from accounts.signals import tokens_revoked
from messaging.eventlog import events


@receiver(tokens_revoked)
def close_revoked_sockets(sender, *, user_id: uuid.UUID, token_version: int, **kwargs) -> None:
    events.user_tokens_revoked(user_id, token_version)
