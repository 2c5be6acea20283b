import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

MESSAGE_MAX_LENGTH = 4096  # characters
CLIENT_ID_MAX_LENGTH = 64
GROUP_TITLE_MAX_LENGTH = 120  # characters
GROUP_MAX_MEMBERS = 256
ATTACHMENTS_PER_MESSAGE_MAX = 10


class Conversation(models.Model):
    """A place messages are posted to. Direct conversations have exactly two
    members, recorded in ``user_a``/``user_b`` (ordered) so the pair is unique;
    group conversations leave them empty and list members in Membership only."""

    class Kind(models.TextChoices):
        DIRECT = "direct", "Direct"
        GROUP = "group", "Group"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DIRECT)
    # Indexed by the direct-pair unique index, which leads with user_a.
    user_a = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user_b = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    title = models.CharField(max_length=GROUP_TITLE_MAX_LENGTH, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Per-conversation message counter, taken under a row lock: seq order is commit order.
    last_seq = models.PositiveBigIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user_a", "user_b"], condition=Q(kind="direct"), name="messaging_direct_pair_unique"
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.DIRECT:
            return f"direct {self.user_a_id} / {self.user_b_id}"
        return self.title or str(self.id)

    @staticmethod
    def direct_pair(one: uuid.UUID, other: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
        """A direct conversation's (user_a, user_b): the pair in one order for everyone."""
        first, second = sorted((one, other), key=lambda pk: pk.hex)
        return first, second

    def other_user_id(self, user_id: uuid.UUID) -> uuid.UUID | None:
        """The other member of a direct conversation."""
        return self.user_b_id if self.user_a_id == user_id else self.user_a_id


class Membership(models.Model):
    """A user's place in a conversation, with their per-conversation state.

    A member sees the messages after ``joined_seq`` (the conversation's last
    message when they joined). One who leaves or is removed keeps the row, with
    ``left_seq`` set to the last message at that moment: they keep the history
    up to it and get nothing after it.
    """

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    # Both covered by the composite indexes below; no single-column ones needed.
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    joined_at = models.DateTimeField(default=timezone.now)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    # The conversation's last message when this member (re)joined: they see what comes after.
    joined_seq = models.PositiveBigIntegerField(default=0)
    left_seq = models.PositiveBigIntegerField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    # Highest message seq pushed to any device of this user (offline delivery cursor).
    delivered_seq = models.PositiveBigIntegerField(default=0)
    # Highest message seq the user has read.
    read_seq = models.PositiveBigIntegerField(default=0)
    muted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="messaging_membership_unique"),
        ]
        indexes = [models.Index(fields=["user", "conversation"], name="messaging_membership_user")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id}"


class Message(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Covered by the history and seq indexes, which lead with it.
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False)
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="messages_sent")
    seq = models.PositiveBigIntegerField()
    content = models.TextField(max_length=MESSAGE_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    is_deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # When the receiver (in a group: the first other member) read it; recorded
    # only for readers who share read receipts.
    read_at = models.DateTimeField(null=True, blank=True)
    # Client-chosen id that makes a retried send idempotent.
    client_id = models.CharField(max_length=CLIENT_ID_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001 - NULL = none; unique when set

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="messaging_message_seq_unique"),
            models.UniqueConstraint(
                fields=["sender", "client_id"],
                condition=Q(client_id__isnull=False),
                name="messaging_message_client_id_unique",
            ),
        ]
        indexes = [
            # History pages: one range scan, newest first, ties broken by id.
            models.Index(fields=["conversation", "-created_at", "-id"], name="messaging_history"),
        ]

    def __str__(self) -> str:
        return f"{self.sender_id} @ {self.created_at:%Y-%m-%d %H:%M:%S}"

    @property
    def is_read(self) -> bool:
        """Read by its receiver (the Go server's flag): it has a read time."""
        return self.read_at is not None


class EventStream(models.Model):
    """A user's event counter. Taking the next seq locks this row until commit,
    so a user's events commit in seq order and a reader never sees a gap fill in
    later."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="event_stream"
    )
    last_seq = models.PositiveBigIntegerField(default=0)
    # Events with seq <= this were pruned; resuming from before it needs a full resync.
    pruned_through = models.PositiveBigIntegerField(default=0)
    # Highest seq sent to any device of the user: a device connecting without
    # ?since= is sent the log after it (offline delivery).
    delivered_seq = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.last_seq}"


class PushOutbox(models.Model):
    """Conversations with messages stored since the push relay last looked: one
    row a conversation (a burst is one row, whatever the members), written in
    the messages' own transaction, so no message commits without it. Who is
    pushed and how many messages are read when the row is due
    (``messaging.push.relay``)."""

    conversation = models.OneToOneField(Conversation, primary_key=True, on_delete=models.CASCADE, related_name="+")
    due_at = models.DateTimeField()
    # The newest message marked: the relay removes the row only if nothing newer came since it took it.
    through_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["due_at"], name="messaging_pushoutbox_due")]

    def __str__(self) -> str:
        return f"{self.conversation_id} due {self.due_at}"


class UserEvent(models.Model):
    """The durable record of every event a user's devices receive, for resume."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    seq = models.PositiveBigIntegerField()
    frame = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "seq"], name="messaging_userevent_seq_unique")]
        indexes = [models.Index(fields=["created_at"], name="messaging_userevent_created")]

    def __str__(self) -> str:
        return f"{self.user_id} #{self.seq} {self.frame.get('type')}"


class MessageEdit(models.Model):
    """A message's earlier content, kept on every edit."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="edits", db_index=False)
    editor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    edited_at = models.DateTimeField(default=timezone.now)
    previous_content = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["message", "edited_at"], name="messaging_edit_message")]

    def __str__(self) -> str:
        return f"edit of {self.message_id} at {self.edited_at:%Y-%m-%d %H:%M:%S}"


def attachment_path(attachment: "Attachment", filename: str) -> str:
    # Never the user's file name: a random, unguessable key per file.
    return f"attachments/{attachment.created_at:%Y/%m}/{attachment.id.hex}"


class Attachment(models.Model):
    """An uploaded file; attached to at most one message when that is sent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=200)
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} ({self.content_type}, {self.size} bytes)"
