"""Messaging errors. Each has a stable code, the same on REST and WebSocket."""

from chatserver.errors import DomainError, InvalidInput, NotFound, PermissionDenied, RateLimited


class EmptyContent(InvalidInput):
    code = "empty_content"
    default_detail = "Message content must not be empty."


class ContentTooLong(InvalidInput):
    code = "content_too_long"


class InvalidContent(InvalidInput):
    code = "invalid_content"
    default_detail = "Message content must be a string."


class InvalidRecipient(InvalidInput):
    code = "invalid_recipient"
    default_detail = "'to' must be a user id (UUID)."


class CannotMessageSelf(InvalidInput):
    code = "cannot_message_self"
    default_detail = "You cannot send a message to yourself."


class InvalidClientId(InvalidInput):
    code = "invalid_client_id"


class ClientIdConflict(InvalidInput):
    code = "client_id_conflict"
    status = 409
    default_detail = "This client_id was already used for a different message; use a new one for a new message."


class InvalidTitle(InvalidInput):
    code = "invalid_title"


class GroupFull(InvalidInput):
    code = "group_full"


class NotAGroup(InvalidInput):
    code = "not_a_group"
    default_detail = "This is a direct conversation; members and titles belong to groups."


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"
    default_detail = "cursor is not a value this server returned."


class InvalidFrame(InvalidInput):
    code = "invalid_frame"
    default_detail = "Frame must be a JSON object with a 'type'."


class FrameTooLarge(InvalidInput):
    code = "frame_too_large"


class InvalidJson(InvalidInput):
    code = "invalid_json"
    default_detail = "Frame is not valid JSON."


class UnknownFrameType(InvalidInput):
    code = "unknown_type"


class Unavailable(DomainError):
    code = "unavailable"
    status = 503
    default_detail = "The service is temporarily unavailable; nothing was stored. Retry with the same client_id."


class ServerError(DomainError):
    code = "server_error"
    status = 500
    default_detail = "Internal error. To retry a send safely, repeat it with the same client_id."


class TooManySockets(DomainError):
    code = "too_many_sockets"
    status = 429
    default_detail = "Too many connections open for this user."


class RecipientNotFound(NotFound):
    code = "recipient_not_found"
    default_detail = "No such user."


class UserNotFound(NotFound):
    code = "user_not_found"
    default_detail = "No such user."


class ConversationNotFound(NotFound):
    code = "conversation_not_found"
    default_detail = "No such conversation."


class AttachmentNotFound(NotFound):
    code = "attachment_not_found"
    default_detail = "No such attachment."


class MessageNotFound(NotFound):
    code = "message_not_found"
    default_detail = "No such message."


class NotAdmin(PermissionDenied):
    code = "not_admin"
    default_detail = "Only the group's admins can do this."


class NotMember(PermissionDenied):
    code = "not_member"
    default_detail = "You are no longer a member of this conversation."


class NotSender(PermissionDenied):
    code = "not_sender"
    default_detail = "Only the sender can change this message."


__all__ = [
    "AttachmentNotFound",
    "CannotMessageSelf",
    "ClientIdConflict",
    "ContentTooLong",
    "ConversationNotFound",
    "DomainError",
    "EmptyContent",
    "FrameTooLarge",
    "GroupFull",
    "InvalidClientId",
    "InvalidContent",
    "InvalidCursor",
    "InvalidFrame",
    "InvalidJson",
    "InvalidRecipient",
    "InvalidTitle",
    "MessageNotFound",
    "NotAGroup",
    "NotAdmin",
    "NotMember",
    "NotSender",
    "RateLimited",
    "RecipientNotFound",
    "ServerError",
    "TooManySockets",
    "Unavailable",
    "UnknownFrameType",
    "UserNotFound",
]
