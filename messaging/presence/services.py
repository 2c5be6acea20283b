"""Presence and typing: ephemeral state, told to contacts, never logged."""

import uuid
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.utils import timezone

from accounts.models import User
from messaging.conversations.selectors import (
    active_member_ids,
    contacts_of,
    contacts_of_many,
    direct_conversation_between,
)
from messaging.conversations.services import active_recipient
from messaging.eventlog import events
from messaging.eventlog.selectors import StreamState, event_stream_states
from messaging.exceptions import ConversationNotFound, RecipientNotFound, TooManySockets
from messaging.frames import presence_change_frame, presence_frame, typing_frame
from messaging.presence import registry as presence_registry


def presence_connected(user: User, channel: str) -> None:
    """A socket of ``user`` opened; contacts hear ``online`` if that is news.
    Raises TooManySockets when the user has ``WS_MAX_SOCKETS_PER_USER`` open
    already, on all processes together (counted atomically by the registry)."""
    [(admitted, version)] = _register([(user, channel)])
    if not admitted:
        raise _too_many()
    if version:
        _announce_presence(contacts_of(user.id), user.id, True, user.last_seen, version)


class SocketStart(NamedTuple):
    state: StreamState  # the user's event log
    online_contacts: list[uuid.UUID]  # contacts online now, for ``online_users``


def sockets_start(sockets: list[tuple[User, str]]) -> list[SocketStart | TooManySockets]:
    """Sockets that just opened on this process, a burst of them at once: each
    is registered for presence, or refused (``TooManySockets``), contacts of
    users who came online hear it, and each registered one gets its user's
    log state and which of its contacts are online. Two Redis round trips and
    at most three queries, whatever their number."""
    outcomes = _register(sockets)
    registered = {user.id: user for (user, _), (admitted, _) in zip(sockets, outcomes, strict=True) if admitted}
    contacts = contacts_of_many(registered) if registered else {}
    for (user, _), (_, version) in zip(sockets, outcomes, strict=True):
        if version:  # came online
            _announce_presence(contacts[user.id], user.id, True, user.last_seen, version)
    online = presence_registry.get_presence().online({pk for found in contacts.values() for pk in found})
    states = event_stream_states(registered)
    no_events = StreamState(0, 0, 0)
    return [
        SocketStart(states.get(user.id, no_events), [pk for pk in contacts[user.id] if pk in online])
        if admitted
        else _too_many()
        for (user, _), (admitted, _) in zip(sockets, outcomes, strict=True)
    ]


def _register(sockets: list[tuple[User, str]]) -> list[tuple[bool, int | None]]:
    """(admitted, the new presence version if the user just came online) per socket: one Redis round trip."""
    limit = settings.WS_MAX_SOCKETS_PER_USER
    return presence_registry.get_presence().connect_many([(user.id, channel) for user, channel in sockets], limit)


def _too_many() -> TooManySockets:
    return TooManySockets(f"You have {settings.WS_MAX_SOCKETS_PER_USER} connections open already; close one and retry.")


def _announce_presence(
    contacts: list[uuid.UUID], user_id: uuid.UUID, online: bool, last_seen: datetime | None, version: int
) -> None:
    """``presence`` (this server's) and ``presence_change`` (the Go server's) to the user's contacts."""
    events.send_ephemeral(contacts, presence_frame(user_id, online, last_seen, version))
    events.send_ephemeral(contacts, presence_change_frame(user_id, online))


def presence_refresh(sockets: list[tuple[uuid.UUID, str]]) -> None:
    """Keep these (user id, channel) sockets registered: all of a process's at once."""
    presence_registry.get_presence().refresh(sockets)


def presence_disconnected(user: User, channel: str) -> None:
    sockets_closed([(user.id, channel)])


def sockets_closed(sockets: list[tuple[uuid.UUID, str]]) -> None:
    """Sockets of this process that closed, a burst of them at once: one Redis round trip."""
    presence_registry.get_presence().disconnect_many(sockets)


def presence_settle(user_id: uuid.UUID) -> None:
    """If no socket of the user is left on any process, record last_seen and tell
    contacts ``offline`` (once: the registry makes the transition atomic)."""
    version = presence_registry.get_presence().settle(user_id)
    if version is None:
        return
    now = timezone.now()
    User.objects.filter(pk=user_id).update(last_seen=now)
    _announce_presence(contacts_of(user_id), user_id, False, now, version)


def presence_sweep() -> int:
    """Settle users announced online whose sockets are gone without a settle,
    e.g. because their process died; run periodically by every process."""
    stale = presence_registry.get_presence().stale(settings.PRESENCE_GRACE_SECONDS)
    for user_id in stale:
        presence_settle(user_id)
    return len(stale)


def typing_notify(
    *, user: User, to: uuid.UUID | None = None, conversation: uuid.UUID | None = None, typing: bool
) -> uuid.UUID:
    """Tell the other current members of a conversation that ``user`` is (not)
    typing. ``to`` names the other user of a direct conversation (the seed's
    way), ``conversation`` any conversation ``user`` is a current member of.
    Returns the conversation's id: the socket keys its typing timers by it."""
    if conversation is not None:
        conversation_id = conversation
        members = active_member_ids(conversation_id)
        if user.id not in members:
            raise ConversationNotFound(field="conversation")
        recipients = [member for member in members if member != user.id]
    else:
        recipient = active_recipient(user, to)
        direct = direct_conversation_between(user.id, recipient.id)
        if direct is None:
            raise RecipientNotFound("You have no conversation with this user yet.", field="to")
        conversation_id, recipients = direct.id, [recipient.id]
    events.send_ephemeral(recipients, typing_frame(user.id, conversation_id, typing))
    return conversation_id
