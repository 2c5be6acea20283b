"""The job: send one queued push, unless it is no longer news.

Run by the job queue's workers (``manage.py push_worker``). Just before
sending it reads again what the push announces: nothing is sent when the user
has since read the messages, been sent them on a device, muted or left the
conversation, or when every message it would announce was deleted. Nothing
is held open while the push service answers (SQLite has one writer at a
time); the outcome is recorded after, only if nobody recorded one meanwhile.
"""

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from chatserver import strict_json
from messaging.models import Conversation, Membership, Message
from messaging.push import counters, senders
from messaging.push.models import PushDelivery, PushTarget
from messaging.push.relay import floor
from messaging.rules import is_current

logger = logging.getLogger(__name__)

Status = PushDelivery.Status
EXCERPT_MAX_LENGTH = 120
BACKOFF_FIRST_SECONDS = 5
BACKOFF_MAX_SECONDS = 3600


def deliver(delivery_id: str, attempt: int) -> None:
    """Send push ``delivery_id`` as its try number ``attempt`` (the relay's
    fence): a second copy of the same job, or a job whose lease ran out and
    was handed out again, takes nothing and sends nothing."""
    if not PushDelivery.objects.filter(pk=delivery_id, status=Status.PENDING, attempts=attempt).update(
        attempts=attempt + 1
    ):
        return  # sent, skipped or given up on, its target removed, or another job has it
    delivery = PushDelivery.objects.select_related("target", "user", "conversation").get(pk=delivery_id)
    try:
        payload, reason = _payload(delivery)
        if payload is None:
            if _finish(delivery, Status.SKIPPED, reason=reason):
                counters.count("skipped", delivery.target.kind, reason=reason)
            return
        outcome = senders.send(
            delivery.target,
            push_id=str(delivery.id),
            body=strict_json.dumps(payload).encode(),
            collapse=senders.topic(str(delivery.conversation_id)),
        )
    except Exception:  # a bug or a library's surprise: logged, and tried again like a failed call
        logger.exception("Push %s could not be sent", delivery.id)
        outcome = senders.Outcome(None)
    _record(delivery, outcome)


def _payload(delivery: PushDelivery) -> tuple[dict | None, str]:
    """What the push says, or (None, why nothing is to be said)."""
    if not delivery.user.is_active:
        return None, "inactive"
    if delivery.target.user_id != delivery.user_id:
        return None, "moved"  # the browser's subscription is another user's now
    if PushDelivery.objects.filter(
        target=delivery.target, conversation=delivery.conversation, top_seq__gt=delivery.top_seq
    ).exists():
        return None, "superseded"  # a newer push of this conversation says more
    membership = Membership.objects.filter(user=delivery.user, conversation=delivery.conversation).first()
    if membership is None or not is_current(membership):
        return None, "left"
    if membership.muted:
        return None, "muted"
    previous = PushDelivery.objects.filter(
        user=delivery.user, conversation=delivery.conversation, status=Status.SENT, top_seq__lt=delivery.top_seq
    ).aggregate(top=Max("top_seq"))["top"]
    start = floor(
        joined_seq=membership.joined_seq,
        read_seq=membership.read_seq,
        delivered_seq=membership.delivered_seq,
        pushed_seq=previous or 0,
    )
    if start >= delivery.top_seq:
        return None, "read" if membership.read_seq >= delivery.top_seq else "delivered"
    unseen = (
        Message.objects.filter(
            conversation=delivery.conversation, seq__gt=start, seq__lte=delivery.top_seq, is_deleted=False
        )
        .exclude(sender=delivery.user)
        .select_related("sender")
        .prefetch_related("attachments")
        .order_by("-seq")
    )
    count = unseen.count()
    last = unseen.first()
    if last is None:
        return None, "deleted"
    conversation = delivery.conversation
    group = conversation.kind == Conversation.Kind.GROUP
    excerpt = _excerpt(last) if delivery.user.push_show_content else None
    return {
        "id": str(delivery.id),
        "type": "messages",
        "conversation": {
            "id": str(conversation.id),
            "kind": conversation.kind,
            "title": conversation.title if group else last.sender.username,
        },
        "sender": {"id": str(last.sender_id), "username": last.sender.username},
        "message_id": str(last.id),
        "count": count,
        "excerpt": excerpt,
        "created_at": last.created_at.isoformat(),
    }, ""


def _excerpt(message: Message) -> str:
    text = " ".join(message.content.split())
    if text:
        return text[:EXCERPT_MAX_LENGTH]
    files = list(message.attachments.all())
    images = sum(1 for file in files if file.content_type.startswith("image/"))
    if files and images == len(files):
        return "Photo" if images == 1 else f"{images} photos"
    return files[0].name[:EXCERPT_MAX_LENGTH] if len(files) == 1 else f"{len(files)} files"


def _retryable(outcome: senders.Outcome) -> bool:
    """No answer, a timeout, too many requests or a server error: try again later."""
    if outcome.refused:
        return False
    return outcome.status is None or outcome.status in (408, 429) or outcome.status >= 500


def _ours(delivery: PushDelivery):
    """The push, if this job still holds it (no later job took it after a lease ran out)."""
    return PushDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING, attempts=delivery.attempts)


def _finish(delivery: PushDelivery, status: str, *, reason: str = "", last_status: int | None = None) -> bool:
    return bool(
        _ours(delivery).update(
            status=status,
            reason=reason,
            last_status=last_status,
            finished_at=timezone.now(),
            next_attempt_at=None,
            leased_until=None,
        )
    )


def _backoff(attempts: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after
    base = min(BACKOFF_FIRST_SECONDS * 2 ** (attempts - 1), BACKOFF_MAX_SECONDS)
    return base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not secrecy


def _record(delivery: PushDelivery, outcome: senders.Outcome) -> None:
    kind = delivery.target.kind
    target_id = delivery.target_id
    with transaction.atomic():
        if outcome.ok:
            if _finish(delivery, Status.SENT, last_status=outcome.status):
                PushTarget.objects.filter(pk=target_id).update(last_success_at=timezone.now())
                counters.count("sent", kind)
            return
        if _gone(kind, outcome.status):
            # The subscription or webhook is gone for good: so is the target (and its queued pushes).
            if PushTarget.objects.filter(pk=target_id).delete()[0]:
                counters.count("targets_dropped", kind)
                logger.info("Push target %s removed: it answered %s", target_id, outcome.status)
            return
        retryable = _retryable(outcome)
        if not retryable or delivery.attempts >= settings.PUSH_MAX_ATTEMPTS:
            reason = "refused" if outcome.refused else "gave_up" if retryable else f"http_{outcome.status}"
            if _finish(delivery, Status.FAILED, reason=reason, last_status=outcome.status):
                counters.count("failed", kind, reason=reason)
                logger.warning("Push %s failed (%s)", delivery.id, reason)
            return
        waits = _backoff(delivery.attempts, outcome.retry_after)
        if _ours(delivery).update(
            last_status=outcome.status, next_attempt_at=timezone.now() + timedelta(seconds=waits), leased_until=None
        ):
            counters.count("retried", kind)


def _gone(kind: str, status: int | None) -> bool:
    """Web Push services answer 404 or 410 for a subscription that ended, and
    403 for one made with another VAPID key (it can never be sent to again);
    a webhook is gone when its gateway says 410 (a 404 may be a deploy)."""
    if kind == PushTarget.Kind.WEBPUSH:
        return status in (403, 404, 410)
    return status == 410
