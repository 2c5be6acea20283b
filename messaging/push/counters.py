"""Push totals, kept in the database (see PushCounter) and read by /metrics."""

import logging
from collections.abc import Iterator

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from messaging.models import PushOutbox
from messaging.push.models import PushCounter, PushDelivery

logger = logging.getLogger(__name__)

# name -> help; each is labelled by target kind, and failures by reason.
COUNTERS = {
    "queued": "Pushes stored to be sent (one per target and burst).",
    "sent": "Pushes the push service or webhook accepted.",
    "retried": "Push attempts that failed and will be retried (429, 5xx, network).",
    "failed": "Pushes given up on (a 4xx answer, or every attempt failed).",
    "skipped": "Pushes not sent: read, delivered, deleted, muted or overtaken before they left.",
    "targets_dropped": "Targets removed: a subscription ended (403/404/410), a webhook answered 410.",
}


def count(name: str, kind: str, n: int = 1, reason: str = "") -> None:
    """Add ``n`` to a total (in the caller's transaction, when there is one)."""
    if n <= 0:
        return
    key = f"{name}|{kind}|{reason}"
    if PushCounter.objects.filter(key=key).update(value=F("value") + n):
        return
    try:
        with transaction.atomic():
            PushCounter.objects.create(key=key, value=n)
    except IntegrityError:  # created meanwhile
        PushCounter.objects.filter(key=key).update(value=F("value") + n)


class PushCollector:
    """Prometheus collector reading the totals and the queue's age at each scrape."""

    def describe(self) -> list:
        return []  # nothing to read at registration (the database may not be there yet)

    def collect(self) -> Iterator:
        try:
            yield from self._read()
        except DatabaseError:
            logger.warning("Push metrics unavailable: the database did not answer")

    def _read(self) -> Iterator:
        families = {
            name: CounterMetricFamily(
                f"chat_push_{name}", text, labels=["kind", "reason"] if name == "failed" else ["kind"]
            )
            for name, text in COUNTERS.items()
        }
        for key, value in PushCounter.objects.values_list("key", "value"):
            name, kind, reason = key.split("|")
            if name in families:
                families[name].add_metric([kind, reason] if name == "failed" else [kind], value)
        yield from families.values()
        age = GaugeMetricFamily(
            "chat_push_queue_age_seconds",
            "How late the oldest push is: conversations past their grace period (outbox), pushes not sent (delivery).",
            labels=["stage"],
        )
        now = timezone.now()
        oldest_due = (
            PushOutbox.objects.filter(due_at__lte=now).order_by("due_at").values_list("due_at", flat=True).first()
        )
        oldest_pending = (
            PushDelivery.objects.filter(status=PushDelivery.Status.PENDING)
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        for stage, since in (("outbox", oldest_due), ("delivery", oldest_pending)):
            age.add_metric([stage], (now - since).total_seconds() if since else 0.0)
        yield age
