"""Reads of conversations and memberships: a user's list, one membership,
the direct conversation of a pair, who shares a conversation with whom."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.models import User
from messaging.models import Conversation, Membership, Message
from messaging.receipts.selectors import unread_messages
from messaging.rules import CURRENT_MEMBER, PAGE_DEFAULT, page_of, seq_window, time_id_cursor, time_id_from_cursor


def direct_conversation_between(user_id: uuid.UUID, other_id: uuid.UUID) -> Conversation | None:
    return direct_conversation_query(user_id, other_id).first()


def direct_conversation_query(user_id: uuid.UUID, other_id: uuid.UUID) -> QuerySet[Conversation]:
    user_a, user_b = Conversation.direct_pair(user_id, other_id)
    return Conversation.objects.filter(kind=Conversation.Kind.DIRECT, user_a=user_a, user_b=user_b)


@dataclass(frozen=True)
class ConversationPage:
    memberships: list[Membership]
    last_messages: dict[uuid.UUID, Message]
    next_cursor: str | None


def _activity_cursor(membership: Membership) -> str:
    return time_id_cursor(membership.activity_at, membership.conversation_id)


def conversation_list(
    *, user: User, limit: int = PAGE_DEFAULT, cursor: str | None = None, only: uuid.UUID | None = None
) -> ConversationPage:
    """My conversations, most recent activity first, with unread counts and last
    messages: two queries whatever the page size."""
    unread = (
        unread_messages(
            conversation_id=OuterRef("conversation_id"),
            read_seq=OuterRef("read_seq"),
            left_seq=OuterRef("left_seq"),
            user_id=user.id,
        )
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


def active_member_ids(conversation_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        Membership.objects.filter(CURRENT_MEMBER, conversation_id=conversation_id).values_list("user_id", flat=True)
    )


def active_membership(user: User, conversation_id: uuid.UUID) -> Membership | None:
    return (
        Membership.objects.select_related("conversation")
        .filter(CURRENT_MEMBER, user=user, conversation_id=conversation_id)
        .first()
    )
