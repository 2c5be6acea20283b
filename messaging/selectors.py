"""The only readers of messaging data; every query is scoped to the caller."""

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import F, Q

from accounts.models import User
from messaging.exceptions import InvalidCursor
from messaging.models import Conversation, Message

HISTORY_PAGE_DEFAULT = 20
HISTORY_PAGE_MAX = 100
OFFLINE_BATCH_SIZE = 200


@dataclass(frozen=True)
class HistoryPage:
    messages: list[Message]
    next_cursor: str | None


def cursor_encode(message: Message) -> str:
    """Opaque keyset cursor: the (created_at, id) of the last message on a page."""
    raw = f"{message.created_at.isoformat()}|{message.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, message_id = raw.split("|")
        parsed = datetime.fromisoformat(created_at)
        if parsed.tzinfo is None:
            raise ValueError("naive datetime")
        return parsed.astimezone(UTC), uuid.UUID(message_id)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
        raise InvalidCursor("cursor is not a value this server returned.", field="cursor") from None


def direct_conversation_between(user_id: uuid.UUID, other_id: uuid.UUID) -> Conversation | None:
    user_a, user_b = sorted((user_id, other_id), key=lambda pk: pk.hex)
    return Conversation.objects.filter(kind=Conversation.Kind.DIRECT, user_a=user_a, user_b=user_b).first()


def message_history(
    *,
    user: User,
    other: User,
    limit: int = HISTORY_PAGE_DEFAULT,
    before: datetime | None = None,
    cursor: str | None = None,
) -> HistoryPage:
    """Newest-first page of the direct conversation between ``user`` and ``other``.

    Keyset pagination on (created_at, id), the ``messaging_history`` index, so
    a page deep in history costs the same as the first and messages sharing a
    timestamp are neither skipped nor repeated.
    """
    after = cursor_decode(cursor) if cursor is not None else None
    conversation = direct_conversation_between(user.id, other.id)
    if conversation is None:
        return HistoryPage([], None)
    # Through the related manager, each message's .conversation is this instance: no extra query.
    messages = conversation.messages.filter(is_deleted=False)
    if after is not None:
        created_at, message_id = after
        messages = messages.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=message_id))
        messages = messages.filter(created_at__lte=created_at)  # a plain range bound for the index scan
    if before is not None:
        messages = messages.filter(created_at__lt=before)
    page = list(messages.order_by("-created_at", "-id")[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    return HistoryPage(page, cursor_encode(page[-1]) if has_more else None)


def message_for_member(user: User, message_id: uuid.UUID) -> Message | None:
    """A message in one of ``user``'s conversations (deleted ones included), or None."""
    return (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, conversation__memberships__user=user)
        .first()
    )


def messages_undelivered(user: User, limit: int = OFFLINE_BATCH_SIZE) -> list[Message]:
    """Messages to ``user`` that no device of theirs has been sent yet, oldest first."""
    return list(
        Message.objects.filter(
            conversation__memberships__user=user,
            seq__gt=F("conversation__memberships__delivered_seq"),
            is_deleted=False,
        )
        .exclude(sender=user)
        .select_related("conversation")
        # Within a conversation created_at follows seq (both taken under its lock); seq breaks ties.
        .order_by("created_at", "seq")[:limit]
    )


def messages_undelivered_before(user: User, conversation_id: uuid.UUID, seq: int) -> list[Message]:
    """Messages to ``user`` in one conversation, below ``seq``, that the delivery
    cursor has not passed yet: the ones a live event skipped over."""
    return list(
        Message.objects.filter(
            conversation_id=conversation_id,
            conversation__memberships__user=user,
            seq__gt=F("conversation__memberships__delivered_seq"),
            seq__lt=seq,
            is_deleted=False,
        )
        .exclude(sender=user)
        .select_related("conversation")
        .order_by("seq")
    )
