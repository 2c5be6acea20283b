"""Start each user's delivered cursor where offline delivery stood before it existed.

Before 0007 offline delivery worked from each membership's delivered_seq; from
now on a device connecting without ?since= is sent the user's log after
EventStream.delivered_seq. Existing users start at the head of their log,
except those with messages no device of theirs was sent yet: they start just
before the log event of the first such message, so nothing waiting is lost.
"""

from django.db import migrations
from django.db.models import F


def start_cursors(apps, schema_editor) -> None:
    EventStream = apps.get_model("messaging", "EventStream")
    Membership = apps.get_model("messaging", "Membership")
    Message = apps.get_model("messaging", "Message")
    UserEvent = apps.get_model("messaging", "UserEvent")
    EventStream.objects.update(delivered_seq=F("last_seq"))
    behind = Membership.objects.filter(
        delivered_seq__lt=F("conversation__last_seq"), left_seq__isnull=True
    ).values_list("user_id", "conversation_id", "delivered_seq")
    for user_id, conversation_id, delivered_seq in behind.iterator():
        first = (
            Message.objects.filter(conversation_id=conversation_id, seq__gt=delivered_seq, is_deleted=False)
            .exclude(sender_id=user_id)
            .order_by("seq")
            .values_list("id", flat=True)
            .first()
        )
        if first is None:
            continue
        event_seq = (
            UserEvent.objects.filter(user_id=user_id, frame__id=str(first)).values_list("seq", flat=True).first()
        )
        if event_seq is not None:
            EventStream.objects.filter(user_id=user_id, delivered_seq__gte=event_seq).update(
                delivered_seq=event_seq - 1
            )


class Migration(migrations.Migration):
    dependencies = [("messaging", "0007_eventstream_delivered_seq")]

    operations = [migrations.RunPython(start_cursors, migrations.RunPython.noop)]
