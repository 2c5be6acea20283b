"""The relay: turns due outbox rows into pushes, and hands pushes to the job queue.

The writer marks a conversation in ``PushOutbox`` in the transaction that
stores its messages (one row a conversation, due ``PUSH_GRACE_SECONDS``
after its first new message). Each pass here:

1. takes the due rows (a statement of its own: a writer marking one of them
   never waits for the rest of the pass);
2. reads, for every current, unmuted, active member with a push target, the
   messages from others that none of their devices was sent
   (``PUSH_WHEN=unread``: that they have not read) since the last push sent
   to them, and plans one push a member, conversation and target, whatever
   the number of messages; members pushed less than
   ``PUSH_MIN_INTERVAL_SECONDS`` ago wait;
3. stores those pushes and settles the taken rows in one short transaction (a
   row marked again meanwhile stays, for its new messages);
4. hands due pushes to the job queue, each with a lease: a push whose job
   died (a crash, the queue's timeout) is handed out again when its lease
   runs out. The job's ``attempt`` fences it, so a second copy of a job
   sends nothing.

A pass that dies anywhere loses nothing: taken rows are taken again after
their lease, stored pushes are handed out by a later pass.
"""

import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Max, OuterRef, Q, Subquery
from django.utils import timezone
from django_q.tasks import async_task

from chatserver.sql import skip_locked_supported
from messaging.models import Membership, Message
from messaging.push import counters
from messaging.push.models import PushDelivery, PushTarget
from messaging.push.outbox import push_outbox_claim, push_outbox_settle
from messaging.rules import CURRENT_MEMBER

logger = logging.getLogger(__name__)

Status = PushDelivery.Status
DELIVER_TASK = "messaging.push.delivery.deliver"
CLAIM_LIMIT = 200
CLAIM_LEASE = timedelta(seconds=60)  # a relay that died mid-pass: its conversations are taken again after this
# A notification says "99+" beyond this; counting further back is wasted work.
COUNT_CAP = 100


def job_lease() -> timedelta:
    """How long a handed-out push is its job's: longer than the queue lets a job run."""
    return timedelta(seconds=settings.Q_CLUSTER["timeout"] + 15)


def floor(*, joined_seq: int, read_seq: int, delivered_seq: int, pushed_seq: int) -> int:
    """The highest seq of a conversation a member needs no push for: what they
    read, what any of their devices was sent (unless pushes are for unread
    messages), what was said before they joined, what a push sent them announced."""
    delivered = delivered_seq if settings.PUSH_WHEN == "undelivered" else 0
    return max(joined_seq, read_seq, delivered, pushed_seq)


def last_sent_seq(**filters) -> Subquery:
    """The top seq of the last push sent for a (user, conversation): where the next one starts."""
    return Subquery(
        PushDelivery.objects.filter(status=Status.SENT, **filters)
        .order_by()
        .values("user")
        .annotate(top=Max("top_seq"))
        .values("top")
    )


@dataclass
class _Member:
    user_id: uuid.UUID
    conversation_id: uuid.UUID
    floor: int
    last_seq: int


def relay_once(*, now: datetime | None = None) -> int:
    """One pass; returns how many pushes were handed to the job queue."""
    now = now or timezone.now()
    claimed = push_outbox_claim(now, now + CLAIM_LEASE, CLAIM_LIMIT)
    members, later = _plan(list(claimed), now)
    with transaction.atomic():
        _store(members, now)
        push_outbox_settle(claimed, later, now + timedelta(seconds=settings.PUSH_GRACE_SECONDS))
    with transaction.atomic():
        return _hand_out(now)


def _plan(conversation_ids: list[uuid.UUID], now: datetime) -> tuple[list[_Member], dict[uuid.UUID, datetime]]:
    """Who is to be pushed for these conversations (reads only), and the
    conversations with members to push only later, with when."""
    if not conversation_ids:
        return [], {}
    recent = Subquery(
        PushDelivery.objects.filter(
            user=OuterRef("user_id"),
            conversation=OuterRef("conversation_id"),
            status__in=[Status.SENT, Status.PENDING],
        )
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    rows = (
        Membership.objects.filter(
            CURRENT_MEMBER, conversation_id__in=conversation_ids, muted=False, user__is_active=True
        )
        .filter(Exists(PushTarget.objects.filter(user=OuterRef("user_id"))))
        .annotate(
            last_seq=F("conversation__last_seq"),
            pushed_seq=last_sent_seq(user=OuterRef("user_id"), conversation=OuterRef("conversation_id")),
            pushed_at=recent,
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
    counts = _unseen_counts(members)
    return [member for member in members if counts.get((member.user_id, member.conversation_id))], later


def _store(members: list[_Member], now: datetime) -> int:
    """One push a member and target (a push planned twice is stored once)."""
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
    PushDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    stored = PushDelivery.objects.filter(id__in=[delivery.id for delivery in deliveries]).values_list(
        "target_id", flat=True
    )
    for kind, n in Counter(kind_of[target_id] for target_id in stored).items():
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


def _hand_out(now: datetime) -> int:
    """Give the job queue the pushes due now (new ones, retries whose time
    has come, and those whose job's lease ran out), each with a lease."""
    due = PushDelivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        Q(leased_until__isnull=True) | Q(leased_until__lte=now),
        status=Status.PENDING,
    )
    if skip_locked_supported():
        due = due.select_for_update(skip_locked=True)
    handed = list(due.order_by("created_at").values_list("id", "attempts")[:CLAIM_LIMIT])
    if handed:
        PushDelivery.objects.filter(id__in=[delivery_id for delivery_id, _ in handed]).update(
            leased_until=now + job_lease()
        )
        for delivery_id, attempts in handed:
            async_task(DELIVER_TASK, str(delivery_id), attempts, task_name=f"push-{delivery_id}-{attempts}")
    return len(handed)
