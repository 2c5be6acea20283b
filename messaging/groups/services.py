"""Group conversations: create, rename, add and remove members, leave.

Every change is announced to the group's current members (and to a removed
member, so their devices drop the group) through the event log.
"""

import uuid

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from messaging.conversations.selectors import active_member_ids
from messaging.eventlog import events
from messaging.exceptions import ConversationNotFound, GroupFull, InvalidTitle, NotAdmin, NotAGroup, RecipientNotFound
from messaging.frames import group_frame, member_frame
from messaging.models import GROUP_MAX_MEMBERS, GROUP_TITLE_MAX_LENGTH, Conversation, Membership
from messaging.rules import CURRENT_MEMBER, is_storable_text


def _clean_title(title: str) -> str:
    if not is_storable_text(title) or not title.strip():
        raise InvalidTitle("A group needs a title.", field="title")
    title = title.strip()
    if len(title) > GROUP_TITLE_MAX_LENGTH:
        raise InvalidTitle(f"Titles are limited to {GROUP_TITLE_MAX_LENGTH} characters.", field="title")
    return title


def _users(user_ids: list[uuid.UUID], *, exclude: uuid.UUID) -> list[User]:
    """Active users for these ids, without duplicates or ``exclude``; every id must exist."""
    ids = [pk for pk in dict.fromkeys(user_ids) if pk != exclude]
    users = list(User.objects.filter(pk__in=ids, is_active=True))
    if len(users) != len(ids):
        raise RecipientNotFound("Some of these users do not exist.", field="members")
    return users


def _locked_group(user: User, conversation_id: uuid.UUID, *, admin: bool) -> tuple[Conversation, Membership]:
    """The group, locked until commit, and the caller's current membership, read
    after the lock so two admins changing the group at once see each other's change."""
    conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
    membership = (
        Membership.objects.filter(CURRENT_MEMBER, user=user, conversation=conversation).first()
        if conversation
        else None
    )
    if membership is None:
        raise ConversationNotFound()
    if conversation.kind != Conversation.Kind.GROUP:
        raise NotAGroup()
    if admin and membership.role != Membership.Role.ADMIN:
        raise NotAdmin()
    return conversation, membership


def group_create(*, creator: User, title: str, members: list[uuid.UUID]) -> Conversation:
    """A group of the creator (its first admin) and ``members``."""
    title = _clean_title(title)
    users = _users(members, exclude=creator.id)
    if len(users) + 1 > GROUP_MAX_MEMBERS:
        raise GroupFull(f"Groups are limited to {GROUP_MAX_MEMBERS} members.", field="members")
    with transaction.atomic():
        conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title=title, created_by=creator)
        Membership.objects.bulk_create(
            [Membership(conversation=conversation, user=creator, role=Membership.Role.ADMIN)]
            + [Membership(conversation=conversation, user=u) for u in users]
        )
        everyone = [creator, *users]
        frame = group_frame(
            "conversation_created", conversation, creator.id, members=[member_frame(u) for u in everyone]
        )
        events.conversation_event([u.id for u in everyone], frame)
    return conversation


def group_rename(*, user: User, conversation_id: uuid.UUID, title: str) -> Conversation:
    title = _clean_title(title)
    with transaction.atomic():
        conversation, _ = _locked_group(user, conversation_id, admin=True)
        conversation.title = title
        conversation.save(update_fields=["title"])
        events.conversation_event(
            active_member_ids(conversation.id), group_frame("conversation_renamed", conversation, user.id)
        )
    return conversation


def group_add_members(*, user: User, conversation_id: uuid.UUID, user_ids: list[uuid.UUID]) -> list[User]:
    """Add users (a former member comes back); returns the ones newly added."""
    with transaction.atomic():
        conversation, _ = _locked_group(user, conversation_id, admin=True)
        current = set(active_member_ids(conversation.id))
        newcomers = [u for u in _users(user_ids, exclude=user.id) if u.id not in current]
        if len(current) + len(newcomers) > GROUP_MAX_MEMBERS:
            raise GroupFull(f"Groups are limited to {GROUP_MAX_MEMBERS} members.", field="user_ids")
        returning = {
            m.user_id: m
            for m in Membership.objects.exclude(CURRENT_MEMBER).filter(conversation=conversation, user__in=newcomers)
        }
        # Newcomers (and returning members) see what is said from now on: nothing
        # earlier is pushed to them, counted unread, or receipted.
        now, seq = timezone.now(), conversation.last_seq
        fresh = {"joined_seq": seq, "delivered_seq": seq, "read_seq": seq}
        for membership in returning.values():
            membership.left_seq, membership.left_at, membership.role = None, None, Membership.Role.MEMBER
            membership.joined_at = now
            for field, value in fresh.items():
                setattr(membership, field, value)
        Membership.objects.bulk_update(list(returning.values()), ["left_seq", "left_at", "role", "joined_at", *fresh])
        Membership.objects.bulk_create(
            [Membership(conversation=conversation, user=u, **fresh) for u in newcomers if u.id not in returning]
        )
        if newcomers:
            frame = group_frame("member_joined", conversation, user.id, members=[member_frame(u) for u in newcomers])
            events.conversation_event(current | {u.id for u in newcomers}, frame)
    return newcomers


def group_remove_member(*, user: User, conversation_id: uuid.UUID, member_id: uuid.UUID) -> None:
    """An admin removes a member, or a member removes themself (leaves). They keep
    the history up to now and get nothing after. The last admin to go hands the
    role to the longest-standing member."""
    with transaction.atomic():
        conversation, _ = _locked_group(user, conversation_id, admin=member_id != user.id)
        target = Membership.objects.filter(CURRENT_MEMBER, conversation=conversation, user_id=member_id).first()
        if target is None:
            raise RecipientNotFound("Not a member of this group.", field="user_id")
        audience = active_member_ids(conversation.id)
        target.left_seq, target.left_at = conversation.last_seq, timezone.now()
        target.save(update_fields=["left_seq", "left_at"])
        if target.role == Membership.Role.ADMIN:
            _ensure_an_admin(conversation)
        reason = "left" if member_id == user.id else "removed"
        frame = group_frame("member_left", conversation, user.id, user_id=str(member_id), reason=reason)
        events.conversation_event(audience, frame)


def group_leave(*, user: User, conversation_id: uuid.UUID) -> None:
    group_remove_member(user=user, conversation_id=conversation_id, member_id=user.id)


def _ensure_an_admin(conversation: Conversation) -> None:
    members = Membership.objects.filter(CURRENT_MEMBER, conversation=conversation)
    if members.filter(role=Membership.Role.ADMIN).exists():
        return
    successor = members.order_by("joined_at", "user_id").first()
    if successor is not None:
        successor.role = Membership.Role.ADMIN
        successor.save(update_fields=["role"])
