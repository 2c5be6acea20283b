"""Event-log housekeeping."""

from django.db import transaction
from django.db.models import Max

from messaging.models import EventStream, UserEvent


def events_prune(*, before) -> int:
    """Delete events created before ``before``; each user's log remembers how far
    it was pruned, so a resume from before that point gets ``resync_required``."""
    deleted = 0
    tops = UserEvent.objects.filter(created_at__lt=before).values("user_id").annotate(top=Max("seq"))
    for row in tops:
        with transaction.atomic():
            deleted += UserEvent.objects.filter(user_id=row["user_id"], seq__lte=row["top"]).delete()[0]
            EventStream.objects.filter(user_id=row["user_id"], pruned_through__lt=row["top"]).update(
                pruned_through=row["top"]
            )
    return deleted
