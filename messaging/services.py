"""The only writers of messaging data: every rule about messages lives here.

REST views and the WebSocket consumer both call these functions; events are
sent through ``messaging.events`` after the transaction commits.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_get_active
from chatserver.errors import InvalidInput
from messaging import events, selectors
from messaging import presence as presence_registry
from messaging.exceptions import (
    CannotMessageSelf,
    ClientIdConflict,
    ContentTooLong,
    ConversationNotFound,
    EmptyContent,
    InvalidClientId,
    InvalidContent,
    InvalidRecipient,
    MessageNotFound,
    NotSender,
    RecipientNotFound,
)
from messaging.models import (
    CLIENT_ID_MAX_LENGTH,
    MESSAGE_MAX_LENGTH,
    Conversation,
    EventStream,
    Membership,
    Message,
    MessageEdit,
    UserEvent,
)
from messaging.serializers import delivered_frame, presence_frame, read_frame, typing_frame, unread_frame


@dataclass(frozen=True)
class SendResult:
    message: Message
    created: bool  # False when a retried client_id returned the stored message


def _is_storable_text(value: str) -> bool:
    """False for NUL (PostgreSQL refuses it) and lone surrogates (not encodable)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clean_content(content: Any) -> str:
    if not isinstance(content, str) or not _is_storable_text(content):
        raise InvalidContent(field="content")
    if not content.strip():
        raise EmptyContent(field="content")
    if len(content) > MESSAGE_MAX_LENGTH:
        raise ContentTooLong(f"Message content is limited to {MESSAGE_MAX_LENGTH} characters.", field="content")
    return content


def _clean_client_id(client_id: Any) -> str | None:
    if client_id is None:
        return None
    if (
        not isinstance(client_id, str)
        or not 1 <= len(client_id) <= CLIENT_ID_MAX_LENGTH
        or not _is_storable_text(client_id)
    ):
        raise InvalidClientId(f"client_id must be a string of 1-{CLIENT_ID_MAX_LENGTH} characters.", field="client_id")
    return client_id


def _recipient(sender: User, to: Any) -> User:
    try:
        recipient_id = uuid.UUID(to) if isinstance(to, str) else None
    except ValueError:
        recipient_id = None
    if recipient_id is None:
        raise InvalidRecipient(field="to")
    if recipient_id == sender.id:
        raise CannotMessageSelf(field="to")
    recipient = user_get_active(recipient_id)
    if recipient is None:
        raise RecipientNotFound(field="to")
    return recipient


def conversation_direct_get_or_create(user: User, other: User) -> Conversation:
    """The one direct conversation of a pair, created with both memberships on first use."""
    user_a, user_b = sorted((user.id, other.id), key=lambda pk: pk.hex)
    existing = selectors.direct_conversation_between(user_a, user_b)
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


def _append(conversation: Conversation, sender: User, content: str, client_id: str | None) -> Message:
    """Store a message with the conversation's next seq; the UPDATE holds the
    conversation's row lock until commit, so seq order is commit order, and the
    timestamp, read under the lock, follows the same order."""
    seq = Conversation.objects.select_for_update().values_list("last_seq", flat=True).get(pk=conversation.pk) + 1
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=seq, last_message_at=now)
    message = Message.objects.create(
        conversation=conversation, sender=sender, seq=seq, content=content, client_id=client_id, created_at=now
    )
    message.conversation = conversation
    return message


def _stored_by_client_id(sender: User, client_id: str | None, recipient: User, content: str) -> Message | None:
    """The message a retried send already stored; a different send reusing the id is refused."""
    if client_id is None:
        return None
    stored = Message.objects.select_related("conversation").filter(sender=sender, client_id=client_id).first()
    if stored is not None and (
        stored.conversation.other_user_id(sender.id) != recipient.id or stored.content != content
    ):
        raise ClientIdConflict()
    return stored


def message_send(*, sender: User, to: Any, content: Any, client_id: Any = None) -> SendResult:
    """Store a direct message and tell both users' devices once it is committed.

    A ``client_id`` the sender has used before returns the stored message
    instead of a second copy, so clients can retry a send safely.
    """
    content = _clean_content(content)
    client_id = _clean_client_id(client_id)
    recipient = _recipient(sender, to)
    if stored := _stored_by_client_id(sender, client_id, recipient, content):
        return SendResult(stored, created=False)
    try:
        with transaction.atomic():
            conversation = conversation_direct_get_or_create(sender, recipient)
            message = _append(conversation, sender, content, client_id)
            events.message_created(message)
    except IntegrityError:
        # A concurrent retry with the same client_id won the race.
        if stored := _stored_by_client_id(sender, client_id, recipient, content):
            return SendResult(stored, created=False)
        raise
    return SendResult(message, created=True)


def _own_message(user: User, message_id: uuid.UUID) -> Message:
    message = selectors.message_for_member(user, message_id)
    if message is None or message.is_deleted:
        raise MessageNotFound()
    if message.sender_id != user.id:
        raise NotSender()
    return message


def _change_own_message(
    user: User, message_id: uuid.UUID, changes: dict[str, Any], announce, *, message: Message | None = None
) -> Message:
    message = message or _own_message(user, message_id)
    with transaction.atomic():
        # The is_deleted guard makes a concurrent delete win over an edit.
        if not Message.objects.filter(pk=message.pk, is_deleted=False).update(**changes):
            raise MessageNotFound()
        for field, value in changes.items():
            setattr(message, field, value)
        announce(message)
    return message


def message_edit(*, user: User, message_id: uuid.UUID, content: Any) -> Message:
    """Change the content; the previous content is kept in the edit history."""
    content = _clean_content(content)
    previous: dict[str, str] = {}

    def record_and_announce(message: Message) -> None:
        MessageEdit.objects.create(
            message=message, editor=user, edited_at=message.edited_at, previous_content=previous["content"]
        )
        events.message_edited(message)

    message = _own_message(user, message_id)
    previous["content"] = message.content
    return _change_own_message(
        user, message_id, {"content": content, "edited_at": timezone.now()}, record_and_announce, message=message
    )


def message_delete(*, user: User, message_id: uuid.UUID) -> Message:
    """Delete for everyone: the row stays (soft delete) but is never shown again."""
    return _change_own_message(
        user, message_id, {"is_deleted": True, "deleted_at": timezone.now()}, events.message_deleted
    )


def membership_mark_delivered(user_id: uuid.UUID, delivered: dict[uuid.UUID, int]) -> None:
    """Advance the offline-delivery cursor of ``user_id`` per conversation (never backwards)."""
    for conversation_id, seq in delivered.items():
        Membership.objects.filter(conversation_id=conversation_id, user_id=user_id, delivered_seq__lt=seq).update(
            delivered_seq=seq
        )


def conversation_open(user: User, other_id: Any) -> tuple[Conversation, bool]:
    """The direct conversation with ``other_id``, created if new: (conversation, created)."""
    other = _recipient(user, other_id if isinstance(other_id, str) else str(other_id))
    existing = selectors.direct_conversation_between(user.id, other.id)
    if existing is not None:
        return existing, False
    return conversation_direct_get_or_create(user, other), True


# ---- receipts ---------------------------------------------------------------------


def messages_delivered(user: User, message_ids: list[uuid.UUID]) -> None:
    """These messages were just sent to a device of ``user``: move the delivery
    cursors of their conversations and tell the senders (``message_delivered``).

    Safe to move to the highest one: a device receives its user's events in seq
    order without gaps, so everything below it in the conversation was sent too.
    """
    if not message_ids:
        return
    tops = dict(
        Message.objects.filter(id__in=message_ids)
        .exclude(sender=user)
        .values("conversation_id")
        .annotate(top=Max("seq"))
        .values_list("conversation_id", "top")
    )
    if not tops:
        return
    with transaction.atomic():
        memberships = list(
            Membership.objects.select_for_update()
            .filter(user=user, conversation_id__in=tops)
            .order_by("conversation_id")  # one lock order for every caller
        )
        behind = [(m, tops[m.conversation_id]) for m in memberships if m.delivered_seq < tops[m.conversation_id]]
        if not behind:
            return  # another device (or a read) got there first
        entries = _delivery_frames(user, [(m.conversation_id, m.delivered_seq, top) for m, top in behind])
        for membership, top in behind:
            membership.delivered_seq = top
        Membership.objects.bulk_update([m for m, _ in behind], ["delivered_seq"])
        events.publish(entries)


def _delivery_frames(user: User, ranges: list[tuple[uuid.UUID, int, int]]) -> list[events.Entry]:
    """``message_delivered`` for each sender of the messages to ``user`` in the
    given (conversation, after seq, up to seq) ranges: one query for all."""
    within = Q()
    for conversation_id, after, top in ranges:
        within |= Q(conversation_id=conversation_id, seq__gt=after, seq__lte=top)
    newly = (
        Message.objects.filter(within, is_deleted=False)
        .exclude(sender=user)
        .order_by("conversation_id", "seq")
        .values_list("conversation_id", "sender_id", "id")
    )
    grouped: dict[tuple[uuid.UUID, uuid.UUID], list[uuid.UUID]] = {}
    for conversation_id, sender_id, message_id in newly:
        grouped.setdefault((conversation_id, sender_id), []).append(message_id)
    now = timezone.now()
    return [
        (sender_id, delivered_frame(conversation_id, user.id, ids, now))
        for (conversation_id, sender_id), ids in grouped.items()
    ]


def conversation_mark_read(user: User, conversation_or_user_id: Any, up_to: Any = None) -> tuple[uuid.UUID, int]:
    """Mark the conversation read (up to and including message ``up_to``, or all).
    Returns (conversation id, unread count left).

    When the read marker moves: messages not yet delivered count as delivered
    (senders get ``message_delivered``), the senders get ``message_read``
    (unless the reader turned read receipts off), and the reader's devices get
    ``unread``.
    """
    target_id = _parse_uuid(conversation_or_user_id, "conversation")
    up_to_id = _parse_uuid(up_to, "up_to") if up_to is not None else None
    now = timezone.now()
    with transaction.atomic():
        membership = selectors.membership_of(user, target_id)
        if membership is None:
            raise ConversationNotFound()
        membership = Membership.objects.select_for_update().select_related("conversation").get(pk=membership.pk)
        conversation = membership.conversation
        if up_to_id is None:
            target_seq = conversation.last_seq
        else:
            target_seq = (
                Message.objects.filter(pk=up_to_id, conversation=conversation).values_list("seq", flat=True).first()
            )
            if target_seq is None:
                raise MessageNotFound(field="up_to")
        if target_seq > membership.read_seq:
            entries: list[events.Entry] = []
            if target_seq > membership.delivered_seq:
                entries += _delivery_frames(user, [(conversation.id, membership.delivered_seq, target_seq)])
            last_read = (
                Message.objects.filter(conversation=conversation, seq__lte=target_seq, seq__gt=membership.read_seq)
                .exclude(sender=user)
                .order_by("-seq")
                .values_list("id", "sender_id")
                .first()
            )
            membership.read_seq = target_seq
            membership.delivered_seq = max(membership.delivered_seq, target_seq)
            membership.save(update_fields=["read_seq", "delivered_seq"])
            if last_read is not None and user.read_receipts:
                message_id, sender_id = last_read
                entries.append((sender_id, read_frame(conversation.id, user.id, message_id, now)))
            count = selectors.unread_count(membership)
            entries.append((user.id, unread_frame(conversation.id, conversation.other_user_id(user.id), count)))
            events.publish(entries)
            return conversation.id, count
        return conversation.id, selectors.unread_count(membership)


def _parse_uuid(value: Any, field: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(f"{field} must be a UUID.", field=field) from None


# ---- presence and typing (ephemeral: no event log) ----------------------------------


def presence_connected(user: User, channel: str) -> None:
    """A socket of ``user`` opened; contacts hear ``online`` if that is news."""
    version = presence_registry.get_presence().connect(user.id, channel)
    if version is not None:
        events.send_ephemeral(selectors.contacts_of(user.id), presence_frame(user.id, True, user.last_seen, version))


def presence_refresh(user: User, channel: str) -> None:
    presence_registry.get_presence().refresh(user.id, channel)


def presence_disconnected(user: User, channel: str) -> None:
    presence_registry.get_presence().disconnect(user.id, channel)


def presence_settle(user_id: uuid.UUID) -> None:
    """If no socket of the user is left on any process, record last_seen and tell
    contacts ``offline`` (once: the registry makes the transition atomic)."""
    version = presence_registry.get_presence().settle(user_id)
    if version is None:
        return
    now = timezone.now()
    User.objects.filter(pk=user_id).update(last_seen=now)
    events.send_ephemeral(selectors.contacts_of(user_id), presence_frame(user_id, False, now, version))


def presence_sweep() -> int:
    """Settle users announced online whose sockets are gone without a settle,
    e.g. because their process died; run periodically by every process."""
    stale = presence_registry.get_presence().stale(settings.PRESENCE_GRACE_SECONDS)
    for user_id in stale:
        presence_settle(user_id)
    return len(stale)


def typing_notify(user: User, to: Any, typing: bool) -> uuid.UUID:
    """Tell the other member of a direct conversation that ``user`` is (not) typing."""
    recipient = _recipient(user, to)
    if selectors.direct_conversation_between(user.id, recipient.id) is None:
        raise RecipientNotFound("You have no conversation with this user yet.", field="to")
    events.send_ephemeral([recipient.id], typing_frame(user.id, typing))
    return recipient.id


def events_prune(*, before) -> int:
    """Delete events created before ``before``; each user's log remembers how far
    it was pruned, so a resume from before that point gets ``resync_required``."""
    deleted = 0
    tops = UserEvent.objects.filter(created_at__lt=before).values("user_id").annotate(top=Max("seq"))
    for row in tops:
        with transaction.atomic():
            deleted += UserEvent.objects.filter(user_id=row["user_id"], seq__lte=row["top"]).delete()[0]
            EventStream.objects.filter(user_id=row["user_id"], pruned_through__lt=row["top"]).update(
                pruned_through=row["top"]
            )
    return deleted
