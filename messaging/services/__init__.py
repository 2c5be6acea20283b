"""The only writers of messaging data: every rule about messages lives here.

REST views and the WebSocket consumer both call these functions; events are
sent through ``messaging.events`` after the transaction commits.
"""

from messaging.services.attachments import attachment_upload
from messaging.services.groups import (
    group_add_members,
    group_create,
    group_leave,
    group_remove_member,
    group_rename,
)
from messaging.services.messages import (
    SendRequest,
    SendResult,
    conversation_direct_get_or_create,
    conversation_message_send,
    conversation_mute,
    conversation_open,
    conversation_send_request,
    direct_send_request,
    message_delete,
    message_delete_for_everyone,
    message_edit,
    message_send,
    messages_send,
)
from messaging.services.realtime import (
    events_prune,
    presence_connected,
    presence_disconnected,
    presence_refresh,
    presence_settle,
    presence_sweep,
    sockets_closed,
    sockets_start,
    typing_notify,
)
from messaging.services.receipts import (
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
