"""The writes the transports (REST views, the WebSocket consumer, the admin)
and the tests call: each function lives in its slice's ``services``
(messages, conversations, receipts, groups, attachments, presence, the event
log); this module only names them in one place. Events are sent through
``messaging.eventlog.events`` after the transaction commits.
"""

from messaging.attachments.services import attachment_upload
from messaging.conversations.services import conversation_direct_get_or_create, conversation_mute, conversation_open
from messaging.eventlog.services import events_prune
from messaging.groups.services import group_add_members, group_create, group_leave, group_remove_member, group_rename
from messaging.messages.services import (
    SendRequest,
    SendResult,
    conversation_message_send,
    conversation_send_request,
    direct_send_request,
    message_delete,
    message_delete_for_everyone,
    message_edit,
    message_send,
    messages_send,
)
from messaging.presence.services import (
    presence_connected,
    presence_disconnected,
    presence_refresh,
    presence_settle,
    presence_sweep,
    sockets_closed,
    sockets_start,
    typing_notify,
)
from messaging.receipts.services import (
    conversation_mark_read,
    deliveries_record,
    message_mark_read,
    messages_delivered,
    messages_delivered_many,
)

__all__ = [
    "SendRequest",
    "SendResult",
    "attachment_upload",
    "conversation_direct_get_or_create",
    "conversation_mark_read",
    "conversation_message_send",
    "conversation_mute",
    "conversation_open",
    "conversation_send_request",
    "deliveries_record",
    "direct_send_request",
    "events_prune",
    "group_add_members",
    "group_create",
    "group_leave",
    "group_remove_member",
    "group_rename",
    "message_delete",
    "message_delete_for_everyone",
    "message_edit",
    "message_mark_read",
    "message_send",
    "messages_delivered",
    "messages_delivered_many",
    "messages_send",
    "presence_connected",
    "presence_disconnected",
    "presence_refresh",
    "presence_settle",
    "presence_sweep",
    "sockets_closed",
    "sockets_start",
    "typing_notify",
]
