"""Sending, editing and deleting messages (direct and group)."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from chatserver.errors import DomainError
from messaging.attachments.services import attach, attachments_for_send, attachments_remove_files
from messaging.conversations.selectors import active_membership
from messaging.conversations.services import active_recipient, conversation_direct_get_or_create, recipient_id
from messaging.eventlog import events
from messaging.exceptions import (
    ClientIdConflict,
    ContentTooLong,
    ConversationNotFound,
    EmptyContent,
    InvalidClientId,
    InvalidContent,
    MessageNotFound,
    NotMember,
    NotSender,
)
from messaging.messages.selectors import message_for_member
from messaging.messages.sql import conversation_next_seq, direct_conversations_advance, messages_insert
from messaging.models import CLIENT_ID_MAX_LENGTH, MESSAGE_MAX_LENGTH, Conversation, Membership, Message, MessageEdit
from messaging.rules import CURRENT_MEMBER, is_storable_text, parse_uuid


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


def _append(conversation: Conversation, sender: User, content: str, client_id: str | None) -> Message:
    """Store a message with the conversation's next seq; taking it locks the
    conversation's row until commit, so seq order is commit order, and the
    timestamp, taken under the lock, follows the same order."""
    now = timezone.now()
    seq = conversation_next_seq(conversation.pk, now)
    if (
        conversation.kind == Conversation.Kind.GROUP
        and not Membership.objects.filter(CURRENT_MEMBER, conversation=conversation, user=sender).exists()
    ):
        raise ConversationNotFound(field="conversation")  # removed while this send was on its way
    conversation.last_seq, conversation.last_message_at = seq, now
    message = _new_message(conversation, sender, seq, content, client_id, now)
    messages_insert([message])
    return message


def _new_message(conversation: Conversation, sender: User, seq: int, content: str, client_id: str | None, now):
    return Message(
        conversation=conversation, sender=sender, seq=seq, content=content, client_id=client_id, created_at=now
    )


@dataclass(frozen=True)
class SendRequest:
    """A send, checked for everything that needs no database (these rules live
    here, once): what the socket hands the writer."""

    sender: User
    content: str
    client_id: str | None
    recipient_id: uuid.UUID | None = None  # a direct message to this user...
    conversation_id: uuid.UUID | None = None  # ...or to this conversation (a group, or direct by its id)
    attachments: Any = None  # ids of the sender's uploads, checked when stored

    def same_target(self, stored: Message) -> bool:
        if self.recipient_id is not None:
            return stored.conversation.other_user_id(self.sender.id) == self.recipient_id
        return stored.conversation_id == self.conversation_id


def direct_send_request(
    sender: User, *, to: Any, content: Any, client_id: Any = None, attachments: Any = None
) -> SendRequest:
    """A direct message to user ``to`` (their conversation is created on first use)."""
    return SendRequest(
        sender,
        _clean_content(content, may_be_empty=bool(attachments)),
        _clean_client_id(client_id),
        recipient_id=recipient_id(sender, to),
        attachments=attachments,
    )


def conversation_send_request(
    sender: User, *, conversation: Any, content: Any, client_id: Any = None, attachments: Any = None
) -> SendRequest:
    """A message to a conversation the sender is a current member of (a group,
    or a direct conversation named by its id)."""
    return SendRequest(
        sender,
        _clean_content(content, may_be_empty=bool(attachments)),
        _clean_client_id(client_id),
        conversation_id=parse_uuid(conversation, "conversation"),
        attachments=attachments,
    )


def _stored_by_client_id(request: SendRequest) -> Message | None:
    """The message a retried send already stored; a different send reusing the id is refused."""
    if request.client_id is None:
        return None
    stored = (
        Message.objects.select_related("conversation")
        .filter(sender=request.sender, client_id=request.client_id)
        .first()
    )
    if stored is not None and (not request.same_target(stored) or stored.content != request.content):
        raise ClientIdConflict()
    return stored


def _send_one(request: SendRequest) -> SendResult:
    """One send in its own savepoint: the path for a first message, a group, files,
    and a retried client_id.

    A ``client_id`` the sender has used before returns the stored message
    instead of a second copy, so clients can retry a send safely. Without
    files that is found when the insert hits the unique index (a retry is
    rare, so the common send skips the lookup); with files it is looked up
    first, since a retry's files are already attached.
    """
    if request.attachments is not None and (stored := _stored_by_client_id(request)):
        return SendResult(stored, created=False)  # a retry, files included
    try:
        with transaction.atomic():
            files = attachments_for_send(request.sender, request.attachments)
            message = _append(_conversation_for(request), request.sender, request.content, request.client_id)
            attach(message, files)
            events.message_created(message)
    except IntegrityError:
        # A retry, or a concurrent one with the same client_id that won the race.
        if stored := _stored_by_client_id(request):
            return SendResult(stored, created=False)
        raise
    return SendResult(message, created=True)


def _conversation_for(request: SendRequest) -> Conversation:
    if request.recipient_id is not None:
        return conversation_direct_get_or_create(request.sender, active_recipient(request.sender, request.recipient_id))
    membership = (
        Membership.objects.select_related("conversation")
        .filter(CURRENT_MEMBER, user=request.sender, conversation_id=request.conversation_id)
        .first()
    )
    if membership is None:
        raise ConversationNotFound(field="conversation")
    return membership.conversation


def _send_direct_together(requests: list[SendRequest]) -> list[Message | None]:
    """Direct messages to existing conversations, stored together: each
    conversation's seqs in one statement for all, every row in one INSERT.
    None for a request this cannot take (no conversation yet, an inactive
    user): it goes the one-by-one way, which says why or creates the conversation.

    Messages of one batch get the batch's time plus their place in it in
    microseconds, so within a conversation created_at still follows seq.
    """
    now = timezone.now()
    pairs: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    keys = []
    for request in requests:
        key = Conversation.direct_pair(request.sender.id, request.recipient_id)
        keys.append(key)
        pairs[key] = pairs.get(key, 0) + 1
    taken = direct_conversations_advance(pairs, now)
    next_seq = {key: last_seq - pairs[key] + 1 for key, (_, last_seq) in taken.items()}
    conversations: dict[tuple[uuid.UUID, uuid.UUID], Conversation] = {}
    messages: list[Message | None] = []
    for offset, (request, key) in enumerate(zip(requests, keys, strict=True)):
        if key not in taken:
            messages.append(None)
            continue
        seq, next_seq[key] = next_seq[key], next_seq[key] + 1
        conversation = conversations.get(key)
        if conversation is None:
            conversation_id, last_seq = taken[key]
            conversation = conversations[key] = Conversation(
                id=conversation_id,
                kind=Conversation.Kind.DIRECT,
                user_a_id=key[0],
                user_b_id=key[1],
                last_seq=last_seq,
                last_message_at=now,
            )
        message = _new_message(
            conversation, request.sender, seq, request.content, request.client_id, now + timedelta(microseconds=offset)
        )
        message.attachment_list = []
        messages.append(message)
    stored = [message for message in messages if message is not None]
    messages_insert(stored)
    for message in stored:
        events.message_created(message)
    return messages


def messages_send(requests: list[SendRequest], *, together: bool = True) -> list[SendResult | DomainError]:
    """Store these sends in the caller's transaction (the writer's batch) and
    announce each once it commits; one outcome per request, in order.

    With ``together``, direct messages without files to existing
    conversations are stored together (``_send_direct_together``); if one of
    them hits the client-id index (a retry) that raises IntegrityError, and
    the caller stores them again without ``together``. The rest go one by one
    (``_send_one``), each in a savepoint of its own, so a refused send fails alone.
    """
    outcomes: list[SendResult | DomainError | None] = [None] * len(requests)
    direct = [i for i, r in enumerate(requests) if r.recipient_id is not None and r.attachments is None]
    if together and direct:
        for i, message in zip(direct, _send_direct_together([requests[i] for i in direct]), strict=True):
            if message is not None:
                outcomes[i] = SendResult(message, created=True)
    for i, request in enumerate(requests):
        if outcomes[i] is None:
            try:
                outcomes[i] = _send_one(request)
            except DomainError as error:
                outcomes[i] = error
    return outcomes


def _send_now(request: SendRequest) -> SendResult:
    """One send in a transaction of its own (REST, tests, management code)."""
    try:
        with transaction.atomic(), events.collected():
            outcome = messages_send([request])[0]
    except IntegrityError:
        with transaction.atomic(), events.collected():
            outcome = messages_send([request], together=False)[0]
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def message_send(*, sender: User, to: Any, content: Any, client_id: Any = None, attachments: Any = None) -> SendResult:
    """A direct message to user ``to`` (their conversation is created on first use)."""
    return _send_now(direct_send_request(sender, to=to, content=content, client_id=client_id, attachments=attachments))


def conversation_message_send(
    *, sender: User, conversation: Any, content: Any, client_id: Any = None, attachments: Any = None
) -> SendResult:
    """A message to a conversation the sender is a current member of (a group,
    or a direct conversation named by its id)."""
    return _send_now(
        conversation_send_request(
            sender, conversation=conversation, content=content, client_id=client_id, attachments=attachments
        )
    )


def _own_message(user: User, message_id: uuid.UUID, *, deleted_too: bool = False) -> Message:
    message = message_for_member(user, message_id)
    if message is None or (message.is_deleted and not deleted_too):
        raise MessageNotFound()
    if active_membership(user, message.conversation_id) is None:
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
    return _change_message(_own_message(user, message_id), changes, announce)


def _change_message(message: Message, changes: Callable[[datetime], dict[str, Any]], announce) -> Message:
    """``_change_own_message`` once the message is known to be the caller's to change."""
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


def _announce_deletion(message: Message, previous: str) -> None:
    attachments_remove_files(message)
    events.message_deleted(message)


def _deletion(now: datetime) -> dict[str, Any]:
    return {"is_deleted": True, "deleted_at": now}


def message_delete(*, user: User, message_id: uuid.UUID) -> Message:
    """Delete for everyone: the row stays (soft delete) but is never shown again,
    and its files are removed from storage."""
    try:
        return _change_own_message(user, message_id, _deletion, _announce_deletion)
    except MessageNotFound:
        # A retried delete (or two at once) answers like the first, with no second event.
        message = _own_message(user, message_id, deleted_too=True)
        if not message.is_deleted:
            raise
        return message


def message_delete_for_everyone(message: Message) -> bool:
    """A moderator's delete: as the sender's (every device hears it, files go),
    whoever sent it. False when it was deleted already."""
    try:
        _change_message(message, _deletion, _announce_deletion)
    except MessageNotFound:
        return False
    return True
