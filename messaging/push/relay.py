"""The relay: turns due outbox rows into queued pushes.

The writer marks a conversation in ``PushOutbox`` in the transaction that
stores its messages (one row a conversation, due ``PUSH_GRACE_SECONDS``
after its first new message). Each pass here claims the due rows and, for
every current, unmuted member with a push target, counts the messages from
others that none of their devices was sent (``PUSH_WHEN=unread``: that they
have not read) since the last push: one push a member, conversation and
target, whatever the number of messages. Pushes are queued in the same
transaction as the claim, so a crash loses none and queues none twice.
"""

import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils import timezone
from django_q.tasks import async_task

from messaging import sequences
from messaging.models import Membership, Message
from messaging.push import counters
from messaging.push.models import PushDelivery, PushTarget

logger = logging.getLogger(__name__)

DELIVER_TASK = "messaging.push.delivery.deliver"
CLAIM_LIMIT = 200
# A notification says "99+" beyond this; counting further back is wasted work.
COUNT_CAP = 100


def floor(*, joined_seq: int, read_seq: int, delivered_seq: int, pushed_seq: int) -> int:
    """The highest seq of a conversation a member needs no push for: what they
    read, what any of their devices was sent (unless pushes are for unread
    messages), what was said before they joined, what an earlier push announced."""
    delivered = delivered_seq if settings.PUSH_WHEN == "undelivered" else 0
    return max(joined_seq, read_seq, delivered, pushed_seq)


def enqueue(delivery_id: uuid.UUID) -> None:
    async_task(DELIVER_TASK, str(delivery_id), task_name=f"push-{delivery_id}")


@dataclass
class _Member:
    user_id: uuid.UUID
    conversation_id: uuid.UUID
    floor: int
    last_seq: int


def relay_once(*, now: datetime | None = None) -> int:
    """One pass: claim due conversations, queue their pushes, requeue pushes
    whose retry time has come. Returns how many pushes were queued."""
    now = now or timezone.now()
    with transaction.atomic():
        queued = _plan(sequences.push_outbox_claim(now, CLAIM_LIMIT), now)
        queued += _requeue_waiting(now)
    return queued


def _last_push(field: str) -> Subquery:
    return Subquery(
        PushDelivery.objects.filter(user=OuterRef("user_id"), conversation=OuterRef("conversation_id"))
        .order_by("-top_seq")
        .values(field)[:1]
    )


def _plan(conversation_ids: list[uuid.UUID], now: datetime) -> int:
    if not conversation_ids:
        return 0
    rows = (
        Membership.objects.filter(
            conversation_id__in=conversation_ids, left_seq__isnull=True, muted=False, user__is_active=True
        )
        .filter(Exists(PushTarget.objects.filter(user=OuterRef("user_id"))))
        .annotate(
            last_seq=F("conversation__last_seq"), pushed_seq=_last_push("top_seq"), pushed_at=_last_push("created_at")
        )
        .values(
            "user_id",
            "conversation_id",
            "joined_seq",
            "read_seq",
            "delivered_seq",
            "last_seq",
            "pushed_seq",
            "pushed_at",
        )
    )
    interval = timedelta(seconds=settings.PUSH_MIN_INTERVAL_SECONDS)
    members: list[_Member] = []
    later: dict[uuid.UUID, datetime] = {}  # conversation -> when a member's next push may go
    for row in rows:
        start = floor(
            joined_seq=row["joined_seq"],
            read_seq=row["read_seq"],
            delivered_seq=row["delivered_seq"],
            pushed_seq=row["pushed_seq"] or 0,
        )
        if start >= row["last_seq"]:
            continue
        if row["pushed_at"] is not None and now - row["pushed_at"] < interval:
            due = row["pushed_at"] + interval
            later[row["conversation_id"]] = min(due, later.get(row["conversation_id"], due))
            continue
        members.append(_Member(row["user_id"], row["conversation_id"], start, row["last_seq"]))
    sequences.push_outbox_defer(later)
    counts = _unseen_counts(members)
    members = [member for member in members if counts.get((member.user_id, member.conversation_id))]
    if not members:
        return 0
    targets: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    kind_of: dict[uuid.UUID, str] = {}
    for target_id, user_id, kind in PushTarget.objects.filter(
        user_id__in={member.user_id for member in members}
    ).values_list("id", "user_id", "kind"):
        targets[user_id].append(target_id)
        kind_of[target_id] = kind
    deliveries = [
        PushDelivery(
            target_id=target_id,
            user_id=member.user_id,
            conversation_id=member.conversation_id,
            top_seq=member.last_seq,
            created_at=now,
        )
        for member in members
        for target_id in targets[member.user_id]
    ]
    PushDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)  # a claim run twice queues nothing twice
    for delivery in deliveries:
        enqueue(delivery.id)
    for kind, n in Counter(kind_of[delivery.target_id] for delivery in deliveries).items():
        counters.count("queued", kind, n)
    return len(deliveries)


def _unseen_counts(members: list[_Member]) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
    """Per (user, conversation): messages from others, not deleted, after the
    member's floor. One query for every conversation of the pass."""
    lowest: dict[uuid.UUID, int] = {}
    for member in members:
        bound = max(member.floor, member.last_seq - COUNT_CAP)
        lowest[member.conversation_id] = min(bound, lowest.get(member.conversation_id, bound))
    if not lowest:
        return {}
    ranges = Q()
    for conversation_id, low in lowest.items():
        ranges |= Q(conversation_id=conversation_id, seq__gt=low)
    by_conversation: dict[uuid.UUID, list[tuple[int, uuid.UUID]]] = defaultdict(list)
    for conversation_id, seq, sender_id in Message.objects.filter(ranges, is_deleted=False).values_list(
        "conversation_id", "seq", "sender_id"
    ):
        by_conversation[conversation_id].append((seq, sender_id))
    return {
        (member.user_id, member.conversation_id): sum(
            1
            for seq, sender_id in by_conversation[member.conversation_id]
            if member.floor < seq <= member.last_seq and sender_id != member.user_id
        )
        for member in members
    }


def _requeue_waiting(now: datetime) -> int:
    """Pushes whose retry time has come go back in the queue."""
    waiting = PushDelivery.objects.filter(status=PushDelivery.Status.PENDING, next_attempt_at__lte=now)
    if sequences.skip_locked_supported():
        waiting = waiting.select_for_update(skip_locked=True)
    ids = list(waiting.order_by("next_attempt_at").values_list("id", flat=True)[:CLAIM_LIMIT])
    if ids:
        PushDelivery.objects.filter(id__in=ids).update(next_attempt_at=None)
        for delivery_id in ids:
            enqueue(delivery_id)
    return len(ids)
