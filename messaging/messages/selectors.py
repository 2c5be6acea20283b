"""Reads of messages: history pages, one message, what a user's devices
were not sent yet, edit history, who saw a message."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from accounts.models import User
from accounts.selectors import user_get_active
from messaging.conversations.selectors import direct_conversation_query
from messaging.models import Conversation, Membership, Message, MessageEdit
from messaging.rules import (
    CURRENT_MEMBER,
    PAGE_DEFAULT,
    member_sees_seq,
    page_of,
    seq_window,
    time_id_cursor,
    time_id_from_cursor,
    visible_to,
)


@dataclass(frozen=True)
class HistoryPage:
    messages: list[Message]
    next_cursor: str | None


def _message_cursor(message: Message) -> str:
    """After the last message of a page: its (created_at, id)."""
    return time_id_cursor(message.created_at, message.id)


def message_history(
    *,
    user: User,
    other_id: uuid.UUID,
    limit: int = PAGE_DEFAULT,
    before: datetime | None = None,
    cursor: str | None = None,
) -> HistoryPage | None:
    """Newest-first page of the direct conversation between ``user`` and the
    user ``other_id``; None when that is not an active user.

    Keyset pagination on (created_at, id), the ``messaging_history`` index, so
    a page deep in history costs the same as the first and messages sharing a
    timestamp are neither skipped nor repeated. The conversation is read with
    both its members, so a page of two who have talked is two queries.
    """
    after = time_id_from_cursor(cursor) if cursor is not None else None
    conversation = direct_conversation_query(user.id, other_id).select_related("user_a", "user_b").first()
    if conversation is None:
        return HistoryPage([], None) if user_get_active(other_id) is not None else None
    other = conversation.user_b if conversation.user_a_id == user.id else conversation.user_a
    if not other.is_active:
        return None
    return _history_page(conversation, None, limit=limit, before=before, after=after)


def conversation_history(
    *,
    membership: Membership,
    limit: int = PAGE_DEFAULT,
    before: datetime | None = None,
    cursor: str | None = None,
) -> HistoryPage:
    """Newest-first page of any conversation of the member; a member who left
    sees it up to their leaving."""
    after = time_id_from_cursor(cursor) if cursor is not None else None
    return _history_page(
        membership.conversation, membership.left_seq, membership.joined_seq, limit=limit, before=before, after=after
    )


def _history_page(
    conversation: Conversation,
    up_to_seq: int | None,
    after_seq: int = 0,
    *,
    limit: int,
    before: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
) -> HistoryPage:
    # Through the related manager, each message's .conversation is this instance: no extra query.
    messages = conversation.messages.filter(seq_window(after_seq, up_to_seq), is_deleted=False)
    messages = messages.prefetch_related("attachments")
    if after is not None:
        created_at, message_id = after
        messages = messages.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=message_id))
        messages = messages.filter(created_at__lte=created_at)  # a plain range bound for the index scan
    if before is not None:
        messages = messages.filter(created_at__lt=before)
    return HistoryPage(*page_of(messages.order_by("-created_at", "-id")[: limit + 1], limit, _message_cursor))


def message_for_member(user: User, message_id: uuid.UUID) -> Message | None:
    """A message ``user`` may see (deleted ones included), or None."""
    return Message.objects.select_related("conversation").filter(visible_to(user.id), pk=message_id).first()


def message_edits(user: User, message_id: uuid.UUID) -> list[MessageEdit] | None:
    """Edit history of a visible, not deleted message, newest first, for current
    members (edits may postdate a member's leaving); None otherwise."""
    message = message_for_member(user, message_id)
    if message is None or message.is_deleted:
        return None
    if not Membership.objects.filter(CURRENT_MEMBER, conversation_id=message.conversation_id, user=user).exists():
        return None
    return list(MessageEdit.objects.filter(message=message).order_by("-edited_at", "-id"))


def users_who_saw(message: Message) -> list[uuid.UUID]:
    """Members, current or former, whose view includes the message (for deletions)."""
    return list(
        Membership.objects.filter(member_sees_seq(message.seq), conversation_id=message.conversation_id).values_list(
            "user_id", flat=True
        )
    )
