"""Direct conversations: who may be talked to, opening one, muting one."""

import uuid
from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import User
from accounts.selectors import user_get_active
from messaging.conversations.selectors import direct_conversation_between
from messaging.exceptions import CannotMessageSelf, ConversationNotFound, InvalidRecipient, RecipientNotFound
from messaging.models import Conversation, Membership
from messaging.rules import CURRENT_MEMBER, parse_uuid


def recipient_id(sender: User, to: Any) -> uuid.UUID:
    pk = parse_uuid(to, "to", InvalidRecipient)
    if pk == sender.id:
        raise CannotMessageSelf(field="to")
    return pk


def active_recipient(sender: User, to: Any) -> User:
    recipient = user_get_active(recipient_id(sender, to))
    if recipient is None:
        raise RecipientNotFound(field="to")
    return recipient


def conversation_direct_get_or_create(user: User, other: User) -> Conversation:
    """The one direct conversation of a pair, created with both memberships on first use."""
    user_a, user_b = Conversation.direct_pair(user.id, other.id)
    existing = direct_conversation_between(user_a, user_b)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=Conversation.Kind.DIRECT, user_a_id=user_a, user_b_id=user_b
            )
            Membership.objects.bulk_create(
                [
                    Membership(conversation=conversation, user_id=user_a),
                    Membership(conversation=conversation, user_id=user_b),
                ]
            )
            return conversation
    except IntegrityError:
        # Created concurrently by the other user's first message.
        return Conversation.objects.get(kind=Conversation.Kind.DIRECT, user_a_id=user_a, user_b_id=user_b)


def conversation_open(*, user: User, other_id: uuid.UUID) -> tuple[Conversation, bool]:
    """The direct conversation with ``other_id``, created if new: (conversation, created)."""
    other = active_recipient(user, other_id)
    existing = direct_conversation_between(user.id, other.id)
    if existing is not None:
        return existing, False
    return conversation_direct_get_or_create(user, other), True


def conversation_mute(*, user: User, conversation_id: uuid.UUID, muted: bool) -> None:
    """Mute or unmute a conversation of ``user``'s: a muted one sends them no
    push notifications (its messages still reach every open device)."""
    if not Membership.objects.filter(CURRENT_MEMBER, user=user, conversation_id=conversation_id).update(muted=muted):
        raise ConversationNotFound()
