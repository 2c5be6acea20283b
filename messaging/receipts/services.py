"""Delivery and read state: cursors per member, receipts to the senders."""

import uuid

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from accounts.models import User
from messaging.conversations.selectors import membership_of
from messaging.eventlog import events
from messaging.exceptions import ConversationNotFound, MessageNotFound
from messaging.frames import conversation_read_frame, delivered_frame, read_frame, unread_frame
from messaging.messages.selectors import message_for_member
from messaging.models import Membership, Message
from messaging.receipts.selectors import unread_count
from messaging.receipts.sql import memberships_lock, memberships_set_delivered, messages_brief, messages_in_ranges
from messaging.rules import seq_window, window_top


def deliveries_record(reports: list[tuple[uuid.UUID, int, list[uuid.UUID]]]) -> None:
    """Devices were sent their user's log up to a seq, with these messages from
    others among it: (user, seq, message ids) each. Moves each user's
    delivered cursor (where a device connecting without ``since`` starts), and
    each conversation's delivery cursor with ``message_delivered`` to the
    senders. In the caller's transaction: the writer stores a batch's
    reports together."""
    cursors: dict[uuid.UUID, int] = {}
    delivered: dict[uuid.UUID, list[uuid.UUID]] = {}
    for user_id, seq, message_ids in reports:
        cursors[user_id] = max(cursors.get(user_id, 0), seq)
        if message_ids:
            delivered.setdefault(user_id, []).extend(message_ids)
    messages_delivered_many(delivered)
    events.delivered(cursors)


def messages_delivered(user: User, message_ids: list[uuid.UUID]) -> None:
    """These messages were just sent to a device of ``user``: move the delivery
    cursors of their conversations and tell the senders (``message_delivered``)."""
    messages_delivered_many({user.id: message_ids})


def messages_delivered_many(delivered: dict[uuid.UUID, list[uuid.UUID]]) -> None:
    """``messages_delivered`` for several users at once: the statements are
    the same whether one user's receipts are stored or a hundred's.

    Safe to move each cursor to the highest message: a device receives its
    user's events in seq order without gaps, so everything below it in the
    conversation was sent too.
    """
    all_ids = {pk for ids in delivered.values() for pk in ids}
    if not all_ids:
        return
    found = messages_brief(all_ids)
    tops: dict[tuple[uuid.UUID, uuid.UUID], int] = {}  # (user, conversation) -> highest seq
    for user_id, ids in delivered.items():
        for pk in ids:
            if pk in found and found[pk][2] != user_id:
                key = (user_id, found[pk][0])
                tops[key] = max(tops.get(key, 0), found[pk][1])
    if not tops:
        return
    # Part of the writer's batch when there is one: no savepoint.
    with transaction.atomic(savepoint=False):
        behind = [
            (pk, user_id, conversation_id, seq, tops[user_id, conversation_id])
            for pk, user_id, conversation_id, seq in memberships_lock(list(tops))
            if seq < tops[user_id, conversation_id]
        ]
        if not behind:
            return  # other devices (or reads) got there first
        entries = _delivery_frames(
            [(user_id, conversation_id, seq, top) for _, user_id, conversation_id, seq, top in behind]
        )
        memberships_set_delivered({pk: top for pk, *_, top in behind})
        events.publish(entries)


def _delivery_frames(ranges: list[tuple[uuid.UUID, uuid.UUID, int, int]]) -> list[events.Entry]:
    """``message_delivered`` for each sender of the messages delivered to each
    user in the given (user, conversation, after seq, up to seq) ranges: one
    query for all."""
    newly = messages_in_ranges([(conversation_id, after, top) for _, conversation_id, after, top in ranges])
    now = timezone.now()
    entries: list[events.Entry] = []
    for user_id, conversation_id, after, top in ranges:
        grouped: dict[uuid.UUID, list[uuid.UUID]] = {}
        for in_conversation, seq, sender_id, message_id in newly:
            if in_conversation == conversation_id and after < seq <= top and sender_id != user_id:
                grouped.setdefault(sender_id, []).append(message_id)
        entries += [
            (sender_id, delivered_frame(conversation_id, user_id, ids, now)) for sender_id, ids in grouped.items()
        ]
    return entries


def _read_frames(user: User, conversation, after: int, top: int, at) -> list[events.Entry]:
    """``message_read`` to each sender whose messages in (after, top] were just
    read, naming their last one: two queries however many senders (groups)."""
    tops = (
        Message.objects.filter(conversation=conversation, seq__gt=after, seq__lte=top)
        .exclude(sender=user)
        .values("sender_id")
        .annotate(top=Max("seq"))
        .values_list("sender_id", "top")
    )
    last_by_sender = dict(tops)
    if not last_by_sender:
        return []
    wanted = Q()
    for sender_id, seq in last_by_sender.items():
        wanted |= Q(sender_id=sender_id, seq=seq)
    rows = Message.objects.filter(wanted, conversation=conversation).values_list("sender_id", "id")
    return [(sender_id, read_frame(conversation.id, user.id, message_id, at)) for sender_id, message_id in rows]


def conversation_mark_read(
    *, user: User, conversation_or_user_id: uuid.UUID, up_to: uuid.UUID | None = None
) -> tuple[uuid.UUID, int]:
    """Mark the conversation read (up to and including message ``up_to``, or all).
    Returns (conversation id, unread count left).

    When the read marker moves: messages not yet delivered count as delivered
    (senders get ``message_delivered``), the senders get ``message_read``
    (unless the reader turned read receipts off), and the reader's devices get
    ``unread``.
    """
    now = timezone.now()
    with transaction.atomic():
        membership = membership_of(user, conversation_or_user_id)
        if membership is None:
            raise ConversationNotFound()
        membership = Membership.objects.select_for_update().select_related("conversation").get(pk=membership.pk)
        conversation = membership.conversation
        # A member who left reads only up to their leaving.
        if up_to is None:
            target_seq = window_top(membership.left_seq, conversation.last_seq)
        else:
            target_seq = (
                Message.objects.filter(
                    seq_window(membership.joined_seq, membership.left_seq), pk=up_to, conversation=conversation
                )
                .values_list("seq", flat=True)
                .first()
            )
            if target_seq is None:
                raise MessageNotFound(field="up_to")
        if target_seq > membership.read_seq:
            entries: list[events.Entry] = []
            if target_seq > membership.delivered_seq:
                entries += _delivery_frames([(user.id, conversation.id, membership.delivered_seq, target_seq)])
            if user.read_receipts:
                entries += _read_frames(user, conversation, membership.read_seq, target_seq, now)
                Message.objects.filter(
                    conversation=conversation, seq__gt=membership.read_seq, seq__lte=target_seq, read_at__isnull=True
                ).exclude(sender=user).update(read_at=now)
            if other_id := conversation.other_user_id(user.id):
                frame = conversation_read_frame(conversation.id, user.id, other_id, now)
                entries += [(user.id, frame)] + ([(other_id, frame)] if user.read_receipts else [])
            membership.read_seq = target_seq
            membership.delivered_seq = max(membership.delivered_seq, target_seq)
            membership.save(update_fields=["read_seq", "delivered_seq"])
            count = unread_count(membership)
            entries.append((user.id, unread_frame(conversation.id, conversation.other_user_id(user.id), count)))
            events.publish(entries)
            return conversation.id, count
        return conversation.id, unread_count(membership)


def message_mark_read(*, user: User, message_id: uuid.UUID) -> Message:
    """The Go server's one-message read: here, the conversation is read up to
    and including that message (a read marker, not a flag per message)."""
    message = message_for_member(user, message_id)
    if message is None or message.is_deleted:
        raise MessageNotFound()
    conversation_mark_read(user=user, conversation_or_user_id=message.conversation_id, up_to=message.id)
    message.refresh_from_db(fields=["read_at"])
    return message
