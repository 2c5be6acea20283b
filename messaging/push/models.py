"""Where a user's pushes go, and each push on its way."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from messaging.models import Conversation

TARGET_NAME_MAX_LENGTH = 100
ENDPOINT_MAX_LENGTH = 1000


class PushTarget(models.Model):
    """A device's Web Push subscription, or an HTTPS webhook a team relays to
    FCM/APNs through its own gateway. Removed with its user."""

    class Kind(models.TextChoices):
        WEBPUSH = "webpush", "Web Push"
        WEBHOOK = "webhook", "Webhook"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_targets", db_index=False
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=TARGET_NAME_MAX_LENGTH, blank=True)
    # The push service's endpoint (Web Push) or the webhook's URL.
    endpoint = models.URLField(max_length=ENDPOINT_MAX_LENGTH)
    # Web Push: the subscription's public key and auth secret (base64url).
    p256dh = models.CharField(max_length=100, blank=True)
    auth = models.CharField(max_length=50, blank=True)
    # Webhook: the signing secret ("whsec_..."), shown once at registration.
    secret = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_success_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A browser's subscription is one target: subscribing again (or under
            # another login on the same browser) replaces it.
            models.UniqueConstraint(
                fields=["endpoint"], condition=models.Q(kind="webpush"), name="push_target_webpush_endpoint"
            ),
        ]
        indexes = [models.Index(fields=["user", "created_at"], name="push_target_user")]

    def __str__(self) -> str:
        return f"{self.kind} {self.name or self.id} of {self.user_id}"


class PushDelivery(models.Model):
    """One push to one target: the messages of a conversation up to ``top_seq``
    that its user had not been sent (or had not read) when the relay looked.
    Its id is the push's id on the wire (webhook-id, the payload's ``id``), the
    same on every retry, so a receiver can tell a repeat."""

    class Status(models.TextChoices):
        PENDING = "pending"  # to be sent: handed to a job (leased_until), or waiting (next_attempt_at)
        SENT = "sent"
        SKIPPED = "skipped"  # read, delivered or deleted before it left
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    target = models.ForeignKey(PushTarget, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+", db_index=False)
    top_seq = models.PositiveBigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)  # tries so far; a job takes try n only while it is n
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # set while waiting to retry
    # Handed to a job until then; a push whose job died is handed out again after it.
    leased_until = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)  # the push service's HTTP status
    reason = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # The relay can run a claim twice (a crash before its commit): one push each.
            models.UniqueConstraint(fields=["target", "conversation", "top_seq"], name="push_delivery_unique"),
        ]
        indexes = [
            # The last push of a conversation to a user (where the next one starts).
            models.Index(fields=["user", "conversation", "top_seq"], name="push_delivery_last"),
            models.Index(fields=["status", "created_at"], name="push_delivery_status"),
            models.Index(fields=["created_at"], name="push_delivery_created"),
        ]
        verbose_name_plural = "push deliveries"

    def __str__(self) -> str:
        return f"{self.id} {self.status}"


class PushCounter(models.Model):
    """Totals for /metrics, kept in the database: pushes are sent by worker
    processes apart from the web processes that serve /metrics, and totals kept
    here survive restarts and add up across workers."""

    key = models.CharField(max_length=64, primary_key=True)  # "sent|webpush|" (name|kind|reason)
    value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"


class VapidKey(models.Model):
    """The server's VAPID private key when WEBPUSH_VAPID_PRIVATE_KEY is not set:
    made once, on first use, and shared by every process."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    private_key = models.CharField(max_length=64)  # base64url of the raw 32-byte P-256 scalar
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"VAPID key of {self.created_at:%Y-%m-%d}"
