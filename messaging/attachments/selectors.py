"""Reads of attachments."""

import uuid

from accounts.models import User
from messaging.models import Attachment, Message
from messaging.rules import visible_to


def attachment_for_download(user: User, attachment_id: uuid.UUID) -> Attachment | None:
    """An attachment the user may download: their own upload not yet sent, or a
    file of a message they can see that is not deleted."""
    attachment = Attachment.objects.select_related("message").filter(pk=attachment_id).first()
    if attachment is None:
        return None
    if attachment.message is None:
        return attachment if attachment.uploader_id == user.id else None
    if attachment.message.is_deleted:
        return None
    visible = Message.objects.filter(visible_to(user.id), pk=attachment.message_id).exists()
    return attachment if visible else None
