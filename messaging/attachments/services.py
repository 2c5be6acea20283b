"""File attachments: upload (size limit, content-type allow-list by the file's
own bytes, images checked and measured), attach to a message, remove with it."""

import logging
import os
import unicodedata
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from accounts.models import User
from chatserver.errors import DomainError, InvalidInput
from messaging.models import ATTACHMENTS_PER_MESSAGE_MAX, Attachment, Message
from messaging.rules import parse_uuid

logger = logging.getLogger(__name__)

# Larger images are refused: decoding them would take hundreds of MB (pixel bombs).
IMAGE_MAX_PIXELS = 40_000_000

_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
]


class AttachmentTooLarge(DomainError):
    code = "attachment_too_large"
    status = 413


class UnsupportedAttachment(DomainError):
    code = "unsupported_type"
    status = 415


class InvalidAttachment(InvalidInput):
    code = "invalid_attachment"


def sniff_content_type(head: bytes) -> str | None:
    """The type the bytes say they are; the client's claim is never trusted."""
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut off by the sample's end is still text.
        if error.start < len(head) - 3:
            return None
        text = head[: error.start].decode("utf-8")
    if not any((ord(c) < 32 and c not in "\t\n\r\f") or c == "\x7f" for c in text):
        return "text/plain"
    return None


def safe_name(name: str) -> str:
    """A display name: no path, no control characters, bounded length."""
    name = os.path.basename(name.replace("\\", "/"))
    name = "".join(c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c)[0] != "C").strip()
    return (name or "attachment")[:255]


def attachment_upload(*, user: User, upload: UploadedFile) -> Attachment:
    if upload.size > settings.ATTACHMENT_MAX_BYTES:
        raise AttachmentTooLarge(f"Attachments are limited to {settings.ATTACHMENT_MAX_BYTES} bytes.")
    if upload.size == 0:
        raise InvalidAttachment("The file is empty.", field="file")
    upload.seek(0)
    content_type = sniff_content_type(upload.read(2048))
    if content_type not in settings.ATTACHMENT_CONTENT_TYPES:
        raise UnsupportedAttachment(f"Allowed types: {', '.join(settings.ATTACHMENT_CONTENT_TYPES)}.", field="file")
    width = height = None
    if content_type.startswith("image/"):
        width, height = _image_size(upload)
    elif content_type == "text/plain" and not _all_text(upload):
        raise UnsupportedAttachment("Only UTF-8 text is accepted as text.", field="file")
    upload.seek(0)
    attachment = Attachment(
        uploader=user,
        name=safe_name(upload.name or ""),
        content_type=content_type,
        size=upload.size,
        width=width,
        height=height,
    )
    attachment.file.save(attachment.id.hex, upload, save=False)
    attachment.save()
    return attachment


def _image_size(upload: UploadedFile) -> tuple[int, int]:
    from PIL import Image

    try:
        upload.seek(0)
        with Image.open(upload) as image:
            width, height = image.size
            if width * height > IMAGE_MAX_PIXELS:
                raise InvalidAttachment(f"Images are limited to {IMAGE_MAX_PIXELS} pixels.", field="file")
            image.verify()  # structure and checksums
            return width, height
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise InvalidAttachment(f"Not a valid image: {error}", field="file") from None


def _all_text(upload: UploadedFile) -> bool:
    """The whole file is UTF-8 without control characters (not just its first bytes)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    upload.seek(0)
    try:
        for chunk in upload.chunks():
            text = decoder.decode(chunk)
            if any((ord(c) < 32 and c not in "\t\n\r\f") or c == "\x7f" for c in text):
                return False
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def attachments_for_send(sender: User, attachment_ids: Any) -> list[Attachment]:
    """The sender's own, not yet attached uploads named by ``attachment_ids``."""
    if attachment_ids is None:
        return []
    if not isinstance(attachment_ids, list) or len(attachment_ids) > ATTACHMENTS_PER_MESSAGE_MAX:
        raise InvalidAttachment(
            f"'attachments' must be a list of at most {ATTACHMENTS_PER_MESSAGE_MAX} ids.", field="attachments"
        )
    ids = list(dict.fromkeys(parse_uuid(pk, "attachments") for pk in attachment_ids))
    found = list(Attachment.objects.filter(pk__in=ids, uploader=sender, message__isnull=True))
    if len(found) != len(ids):
        raise InvalidAttachment("Unknown attachment, someone else's, or already sent.", field="attachments")
    return sorted(found, key=lambda a: ids.index(a.id))


def attach(message: Message, attachments: list[Attachment]) -> None:
    """Inside the send's transaction; the guard makes two racing sends attach a file once."""
    if not attachments:
        message.attachment_list = []
        return
    updated = Attachment.objects.filter(pk__in=[a.id for a in attachments], message__isnull=True).update(
        message=message
    )
    if updated != len(attachments):
        raise InvalidAttachment("An attachment was sent with another message meanwhile.", field="attachments")
    for attachment in attachments:
        attachment.message = message
    message.attachment_list = attachments


def attachments_remove_files(message: Message) -> None:
    """After a delete commits, drop the files: deleted messages' files are gone."""
    names = [a.file.name for a in Attachment.objects.filter(message=message)]

    def remove() -> None:
        from django.core.files.storage import default_storage

        for name in names:
            try:
                default_storage.delete(name)
            except Exception:
                logger.exception("Could not delete attachment file %s", name)

    transaction.on_commit(remove)


def attachments_prune_unsent(*, older_than) -> int:
    """Delete uploads never attached to a message (abandoned drafts) and their files."""
    from django.core.files.storage import default_storage

    stale = list(Attachment.objects.filter(message__isnull=True, created_at__lt=older_than))
    for attachment in stale:
        try:
            default_storage.delete(attachment.file.name)
        except Exception:
            logger.exception("Could not delete attachment file %s", attachment.file.name)
    Attachment.objects.filter(pk__in=[a.id for a in stale]).delete()
    return len(stale)
