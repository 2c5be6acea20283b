"""Reads of read state."""

import uuid

from django.db.models import F, QuerySet

from messaging.models import Membership, Message
from messaging.rules import seq_window


def unread_messages(
    *, conversation_id: uuid.UUID | F, read_seq: int | F, left_seq: int | F | None, user_id: uuid.UUID
) -> QuerySet[Message]:
    """What a member has not read: after their read marker (which starts at
    joined_seq, so earlier messages never count), up to their leaving, not
    their own, not deleted. The arguments may be outer references, for the
    conversation list's subquery."""
    return Message.objects.filter(
        seq_window(read_seq, left_seq), conversation_id=conversation_id, is_deleted=False
    ).exclude(sender_id=user_id)


def unread_count(membership: Membership) -> int:
    return unread_messages(
        conversation_id=membership.conversation_id,
        read_seq=membership.read_seq,
        left_seq=membership.left_seq,
        user_id=membership.user_id,
    ).count()
