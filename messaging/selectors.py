"""The only readers of messaging data; every query is scoped to the caller."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower

from accounts.models import User
from accounts.selectors import user_get_active
from messaging.models import Attachment, Conversation, EventStream, Membership, Message, MessageEdit, UserEvent
from messaging.rules import (
    CURRENT_MEMBER,
    PAGE_DEFAULT,
    cursor_decode,
    cursor_encode,
    member_sees_seq,
    page_of,
    seq_window,
    time_id_cursor,
    time_id_from_cursor,
    visible_to,
)

OFFLINE_BATCH_SIZE = 200
REPLAY_BATCH_SIZE = 500


@dataclass(frozen=True)
class HistoryPage:
    messages: list[Message]
    next_cursor: str | None


def _message_cursor(message: Message) -> str:
    """After the last message of a page: its (created_at, id)."""
    return time_id_cursor(message.created_at, message.id)


def direct_conversation_between(user_id: uuid.UUID, other_id: uuid.UUID) -> Conversation | None:
    return direct_conversation_query(user_id, other_id).first()


def direct_conversation_query(user_id: uuid.UUID, other_id: uuid.UUID) -> QuerySet[Conversation]:
    user_a, user_b = Conversation.direct_pair(user_id, other_id)
    return Conversation.objects.filter(kind=Conversation.Kind.DIRECT, user_a=user_a, user_b=user_b)


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


def messages_undelivered(user: User, limit: int = OFFLINE_BATCH_SIZE) -> list[Message]:
    """Messages to ``user`` that no device of theirs has been sent yet, oldest first."""
    return list(
        Message.objects.filter(
            visible_to(user),
            seq__gt=F("conversation__memberships__delivered_seq"),
            is_deleted=False,
        )
        .exclude(sender=user)
        .select_related("conversation")
        .prefetch_related("attachments")
        # Within a conversation created_at follows seq (both taken under its lock); seq breaks ties.
        .order_by("created_at", "seq")[:limit]
    )


# ---- event log ----------------------------------------------------------------


class StreamState(NamedTuple):
    head: int  # the seq of the user's last event
    pruned_through: int  # events up to this seq were pruned
    delivered: int  # the highest seq sent to a device of the user


def event_stream_state(user_id: uuid.UUID) -> StreamState:
    """A user's event log: its head, how far it was pruned and how far it was
    delivered; zeros before any event."""
    row = EventStream.objects.filter(user_id=user_id).values_list("last_seq", "pruned_through", "delivered_seq").first()
    return StreamState(*row) if row else StreamState(0, 0, 0)


def event_stream_states(user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, StreamState]:
    """``event_stream_state`` of many users in one query (users without events are left out)."""
    rows = EventStream.objects.filter(user_id__in=set(user_ids)).values_list(
        "user_id", "last_seq", "pruned_through", "delivered_seq"
    )
    return {user_id: StreamState(*state) for user_id, *state in rows}


def event_stream_heads(user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Head seq of each user's event log (users without events are left out);
    in chunks, within SQLite's limit on query parameters."""
    user_ids = list(user_ids)
    heads: dict[uuid.UUID, int] = {}
    for start in range(0, len(user_ids), 1000):
        chunk = user_ids[start : start + 1000]
        heads.update(EventStream.objects.filter(user_id__in=chunk).values_list("user_id", "last_seq"))
    return heads


def user_events_after(
    user_id: uuid.UUID, after: int, *, until: int | None = None, limit: int = REPLAY_BATCH_SIZE
) -> list[dict]:
    """Frames of the user's events with seq > ``after`` (and <= ``until``), in seq order."""
    events = UserEvent.objects.filter(user_id=user_id, seq__gt=after)
    if until is not None:
        events = events.filter(seq__lte=until)
    return list(events.order_by("seq").values_list("frame", flat=True)[:limit])


# ---- conversations ---------------------------------------------------------------


@dataclass(frozen=True)
class ConversationPage:
    memberships: list[Membership]
    last_messages: dict[uuid.UUID, Message]
    next_cursor: str | None


def unread_count(membership: Membership) -> int:
    # (read_seq starts at joined_seq, so earlier messages never count.)
    messages = Message.objects.filter(
        seq_window(membership.read_seq, membership.left_seq),
        conversation_id=membership.conversation_id,
        is_deleted=False,
    )
    return messages.exclude(sender_id=membership.user_id).count()


def _activity_cursor(membership: Membership) -> str:
    return time_id_cursor(membership.activity_at, membership.conversation_id)


def conversation_list(
    *, user: User, limit: int = PAGE_DEFAULT, cursor: str | None = None, only: uuid.UUID | None = None
) -> ConversationPage:
    """My conversations, most recent activity first, with unread counts and last
    messages: two queries whatever the page size."""
    unread = (
        Message.objects.filter(
            # (read_seq starts at joined_seq, so earlier messages never count.)
            seq_window(OuterRef("read_seq"), OuterRef("left_seq")),
            conversation_id=OuterRef("conversation_id"),
            is_deleted=False,
        )
        .exclude(sender_id=user.id)
        .order_by()
        .values("conversation_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    last_message = (
        Message.objects.filter(
            seq_window(OuterRef("joined_seq"), OuterRef("left_seq")),
            conversation_id=OuterRef("conversation_id"),
            is_deleted=False,
        )
        .order_by("-seq")
        .values("id")[:1]
    )
    memberships = (
        Membership.objects.filter(user=user)
        .select_related("conversation__user_a", "conversation__user_b")
        .annotate(
            activity_at=Coalesce("conversation__last_message_at", "conversation__created_at"),
            unread=Coalesce(Subquery(unread), 0),
            last_message_id=Subquery(last_message),
        )
    )
    if only is not None:
        memberships = memberships.filter(conversation_id=only)
    if cursor is not None:
        activity_at, conversation_id = time_id_from_cursor(cursor)
        memberships = memberships.filter(
            Q(activity_at__lt=activity_at) | Q(activity_at=activity_at, conversation_id__lt=conversation_id)
        )
    page, next_cursor = page_of(
        memberships.order_by("-activity_at", "-conversation_id")[: limit + 1], limit, _activity_cursor
    )
    ids = [m.last_message_id for m in page if m.last_message_id]
    last_messages = (
        {
            m.conversation_id: m
            for m in Message.objects.filter(id__in=ids).select_related("sender").prefetch_related("attachments")
        }
        if ids
        else {}
    )
    for membership in page:
        if message := last_messages.get(membership.conversation_id):
            message.conversation = membership.conversation  # no query per item for its "to"
    return ConversationPage(page, last_messages, next_cursor)


def membership_of(user: User, conversation_or_user_id: uuid.UUID) -> Membership | None:
    """The caller's membership in a conversation named by its id, or by the other
    user's id for a direct conversation."""
    membership = (
        Membership.objects.select_related("conversation")
        .filter(user=user, conversation_id=conversation_or_user_id)
        .first()
    )
    if membership is not None:
        return membership
    conversation = direct_conversation_between(user.id, conversation_or_user_id)
    if conversation is None:
        return None
    return Membership.objects.select_related("conversation").filter(user=user, conversation=conversation).first()


def contacts_of(user_id: uuid.UUID) -> list[uuid.UUID]:
    """Everyone who shares a conversation with the user (who sees their presence)."""
    return contacts_of_many([user_id])[user_id]


def contacts_of_many(user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """``contacts_of`` for many users, in two queries."""
    user_ids = set(user_ids)
    theirs: dict[uuid.UUID, set[uuid.UUID]] = {}
    for user_id, conversation_id in Membership.objects.filter(CURRENT_MEMBER, user_id__in=user_ids).values_list(
        "user_id", "conversation_id"
    ):
        theirs.setdefault(conversation_id, set()).add(user_id)
    contacts: dict[uuid.UUID, set[uuid.UUID]] = {user_id: set() for user_id in user_ids}
    members = Membership.objects.filter(CURRENT_MEMBER, conversation_id__in=list(theirs)).values_list(
        "conversation_id", "user_id"
    )
    for conversation_id, member_id in members:
        for user_id in theirs[conversation_id]:
            if member_id != user_id:
                contacts[user_id].add(member_id)
    return {user_id: list(found) for user_id, found in contacts.items()}


# ---- users and edits ---------------------------------------------------------------


def user_search(
    *, user: User, query: str, limit: int = PAGE_DEFAULT, cursor: str | None = None
) -> tuple[list[User], str | None]:
    """Active users whose username starts with ``query`` (case-insensitive),
    alphabetically, and the cursor of the next page."""
    users = (
        User.objects.filter(is_active=True)
        .exclude(pk=user.pk)
        .annotate(name=Lower("username"))
        .filter(name__startswith=query.lower())
    )
    if cursor is not None:
        (after,) = cursor_decode(cursor, str)
        users = users.filter(name__gt=after)
    rows = users.order_by("name").only("id", "username")[: limit + 1]
    return page_of(rows, limit, lambda last: cursor_encode(last.username.lower()))


def message_edits(user: User, message_id: uuid.UUID) -> list[MessageEdit] | None:
    """Edit history of a visible, not deleted message, newest first, for current
    members (edits may postdate a member's leaving); None otherwise."""
    message = message_for_member(user, message_id)
    if message is None or message.is_deleted:
        return None
    if not Membership.objects.filter(CURRENT_MEMBER, conversation_id=message.conversation_id, user=user).exists():
        return None
    return list(MessageEdit.objects.filter(message=message).order_by("-edited_at", "-id"))


def group_members(conversation: Conversation) -> list[Membership]:
    """Current members of a conversation with their users, admins first."""
    return list(
        Membership.objects.filter(CURRENT_MEMBER, conversation=conversation)
        .select_related("user")
        .order_by("role", "joined_at", "user_id")  # "admin" sorts before "member"
    )


def active_member_ids(conversation_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        Membership.objects.filter(CURRENT_MEMBER, conversation_id=conversation_id).values_list("user_id", flat=True)
    )


def attachment_for_download(user: User, attachment_id: uuid.UUID) -> Attachment | None:
    """An attachment the user may download: their own upload not yet sent, or a
    file of a message they can see that is not deleted."""
    attachment = Attachment.objects.select_related("message").filter(pk=attachment_id).first()
    if attachment is None:
        return None
    if attachment.message is None:
        return attachment if attachment.uploader_id == user.id else None
    if attachment.message.is_deleted:
        return None
    visible = Message.objects.filter(visible_to(user.id), pk=attachment.message_id).exists()
    return attachment if visible else None


def active_membership(user: User, conversation_id: uuid.UUID) -> Membership | None:
    return (
        Membership.objects.select_related("conversation")
        .filter(CURRENT_MEMBER, user=user, conversation_id=conversation_id)
        .first()
    )


def users_who_saw(message: Message) -> list[uuid.UUID]:
    """Members, current or former, whose view includes the message (for deletions)."""
    return list(
        Membership.objects.filter(member_sees_seq(message.seq), conversation_id=message.conversation_id).values_list(
            "user_id", flat=True
        )
    )
