"""Sending, editing and deleting messages; opening direct conversations."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_get_active
from messaging import events, selectors, sequences
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
    NotMember,
    NotSender,
    RecipientNotFound,
)
from messaging.models import (
    CLIENT_ID_MAX_LENGTH,
    MESSAGE_MAX_LENGTH,
    Conversation,
    Membership,
    Message,
    MessageEdit,
)
from messaging.services.attachments import attach, attachments_for_send, attachments_remove_files
from messaging.services.validation import is_storable_text, parse_uuid


@dataclass(frozen=True)
class SendResult:
    message: Message
    created: bool  # False when a retried client_id returned the stored message


def _clean_content(content: Any, *, may_be_empty: bool = False) -> str:
    """A message's text; it may be empty only when files carry the message."""
    if may_be_empty and content in (None, ""):
        return ""
    if not isinstance(content, str) or not is_storable_text(content):
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
        or not is_storable_text(client_id)
    ):
        raise InvalidClientId(f"client_id must be a string of 1-{CLIENT_ID_MAX_LENGTH} characters.", field="client_id")
    return client_id


def _recipient_id(sender: User, to: Any) -> uuid.UUID:
    try:
        recipient_id = uuid.UUID(to) if isinstance(to, str) else None
    except ValueError:
        recipient_id = None
    if recipient_id is None:
        raise InvalidRecipient(field="to")
    if recipient_id == sender.id:
        raise CannotMessageSelf(field="to")
    return recipient_id


def _recipient(sender: User, to: Any) -> User:
    recipient = user_get_active(_recipient_id(sender, to))
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
    """Store a message with the conversation's next seq; taking it locks the
    conversation's row until commit, so seq order is commit order, and the
    timestamp, taken under the lock, follows the same order."""
    now = timezone.now()
    seq = sequences.conversation_next_seq(conversation.pk, now)
    if (
        conversation.kind == Conversation.Kind.GROUP
        and not Membership.objects.filter(conversation=conversation, user=sender, left_seq__isnull=True).exists()
    ):
        raise ConversationNotFound(field="conversation")  # removed while this send was on its way
    return _insert(conversation, sender, seq, content, client_id, now)


def _insert(conversation: Conversation, sender: User, seq: int, content: str, client_id: str | None, now) -> Message:
    conversation.last_seq, conversation.last_message_at = seq, now
    message = Message(
        conversation=conversation, sender=sender, seq=seq, content=content, client_id=client_id, created_at=now
    )
    sequences.message_insert(message)
    return message


def _append_direct(sender: User, recipient_id: uuid.UUID, content: str, client_id: str | None) -> Message:
    """The common case in one round trip before the insert: the pair's
    conversation exists and the recipient is active. Otherwise the slow path
    looks the recipient up (an error says why) and creates the conversation."""
    user_a, user_b = sorted((sender.id, recipient_id), key=lambda pk: pk.hex)
    now = timezone.now()
    taken = sequences.direct_conversation_next_seq(user_a, user_b, recipient_id, now)
    if taken is None:
        recipient = user_get_active(recipient_id)
        if recipient is None:
            raise RecipientNotFound(field="to")
        return _append(conversation_direct_get_or_create(sender, recipient), sender, content, client_id)
    conversation_id, seq = taken
    conversation = Conversation(id=conversation_id, kind=Conversation.Kind.DIRECT, user_a_id=user_a, user_b_id=user_b)
    return _insert(conversation, sender, seq, content, client_id, now)


def _stored_by_client_id(sender: User, client_id: str | None, same_target, content: str) -> Message | None:
    """The message a retried send already stored; a different send reusing the id is refused."""
    if client_id is None:
        return None
    stored = Message.objects.select_related("conversation").filter(sender=sender, client_id=client_id).first()
    if stored is not None and (not same_target(stored) or stored.content != content):
        raise ClientIdConflict()
    return stored


def _send(sender: User, content: str, client_id: str | None, append, same_target, attachments: Any) -> SendResult:
    """Store a message and tell the participants' devices once it is committed.

    A ``client_id`` the sender has used before returns the stored message
    instead of a second copy, so clients can retry a send safely. Without
    files that is found when the insert hits the unique index (a retry is
    rare, so the common send skips the lookup); with files it is looked up
    first, since a retry's files are already attached.
    """
    if attachments is not None and (stored := _stored_by_client_id(sender, client_id, same_target, content)):
        return SendResult(stored, created=False)  # a retry, files included
    files = attachments_for_send(sender, attachments)
    try:
        with transaction.atomic():
            message = append(content, client_id)
            attach(message, files)
            events.message_created(message)
    except IntegrityError:
        # A retry, or a concurrent one with the same client_id that won the race.
        if stored := _stored_by_client_id(sender, client_id, same_target, content):
            return SendResult(stored, created=False)
        raise
    return SendResult(message, created=True)


def message_send(*, sender: User, to: Any, content: Any, client_id: Any = None, attachments: Any = None) -> SendResult:
    """A direct message to user ``to`` (their conversation is created on first use)."""
    content = _clean_content(content, may_be_empty=bool(attachments))
    client_id = _clean_client_id(client_id)
    recipient_id = _recipient_id(sender, to)
    return _send(
        sender,
        content,
        client_id,
        append=lambda *args: _append_direct(sender, recipient_id, *args),
        same_target=lambda stored: stored.conversation.other_user_id(sender.id) == recipient_id,
        attachments=attachments,
    )


def conversation_message_send(
    *, sender: User, conversation: Any, content: Any, client_id: Any = None, attachments: Any = None
) -> SendResult:
    """A message to a conversation the sender is a current member of (a group,
    or a direct conversation named by its id)."""
    content = _clean_content(content, may_be_empty=bool(attachments))
    client_id = _clean_client_id(client_id)
    conversation_id = parse_uuid(conversation, "conversation")
    membership = (
        Membership.objects.select_related("conversation")
        .filter(user=sender, conversation_id=conversation_id, left_seq__isnull=True)
        .first()
    )
    if membership is None:
        raise ConversationNotFound(field="conversation")
    return _send(
        sender,
        content,
        client_id,
        append=lambda *args: _append(membership.conversation, sender, *args),
        same_target=lambda stored: stored.conversation_id == conversation_id,
        attachments=attachments,
    )


def _own_message(user: User, message_id: uuid.UUID) -> Message:
    message = selectors.message_for_member(user, message_id)
    if message is None or message.is_deleted:
        raise MessageNotFound()
    if selectors.active_membership(user, message.conversation_id) is None:
        raise NotMember()  # left the group: the history stays, the right to change it goes
    if message.sender_id != user.id:
        raise NotSender()
    return message


def _change_own_message(
    user: User, message_id: uuid.UUID, changes: Callable[[datetime], dict[str, Any]], announce
) -> Message:
    """Apply ``changes(now)`` to the user's own message and ``announce(message,
    previous_content)`` in one transaction.

    The content it replaces, and the time, are taken under the row lock
    (SQLite: the write lock of its IMMEDIATE transaction), so of two concurrent
    edits the second records what the first wrote, and a concurrent delete
    wins over an edit.
    """
    message = _own_message(user, message_id)
    with transaction.atomic():
        previous = (
            Message.objects.select_for_update()
            .filter(pk=message.pk, is_deleted=False)
            .values_list("content", flat=True)
            .first()
        )
        if previous is None:
            raise MessageNotFound()
        changed = changes(timezone.now())
        Message.objects.filter(pk=message.pk).update(**changed)
        for field, value in changed.items():
            setattr(message, field, value)
        announce(message, previous)
    return message


def message_edit(*, user: User, message_id: uuid.UUID, content: Any) -> Message:
    """Change the content; the previous content is kept in the edit history."""
    content = _clean_content(content)

    def record_and_announce(message: Message, previous: str) -> None:
        MessageEdit.objects.create(message=message, editor=user, edited_at=message.edited_at, previous_content=previous)
        events.message_edited(message)

    changes = lambda now: {"content": content, "edited_at": now}  # noqa: E731 - taken under the row lock
    return _change_own_message(user, message_id, changes, record_and_announce)


def message_delete(*, user: User, message_id: uuid.UUID) -> Message:
    """Delete for everyone: the row stays (soft delete) but is never shown again,
    and its files are removed from storage."""

    def announce(message: Message, previous: str) -> None:
        attachments_remove_files(message)
        events.message_deleted(message)

    return _change_own_message(user, message_id, lambda now: {"is_deleted": True, "deleted_at": now}, announce)


def conversation_open(user: User, other_id: Any) -> tuple[Conversation, bool]:
    """The direct conversation with ``other_id``, created if new: (conversation, created)."""
    other = _recipient(user, other_id if isinstance(other_id, str) else str(other_id))
    existing = selectors.direct_conversation_between(user.id, other.id)
    if existing is not None:
        return existing, False
    return conversation_direct_get_or_create(user, other), True
