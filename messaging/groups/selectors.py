"""Reads of groups."""

from messaging.models import Conversation, Membership
from messaging.rules import CURRENT_MEMBER


def group_members(conversation: Conversation) -> list[Membership]:
    """Current members of a conversation with their users, admins first."""
    return list(
        Membership.objects.filter(CURRENT_MEMBER, conversation=conversation)
        .select_related("user")
        .order_by("role", "joined_at", "user_id")  # "admin" sorts before "member"
    )
