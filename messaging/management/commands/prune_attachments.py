"""Delete uploads that were never sent (run daily, e.g. from cron)."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from messaging.attachments.services import attachments_prune_unsent


class Command(BaseCommand):
    help = "Delete attachments uploaded but never sent with a message, older than --hours (default 24)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--hours", type=float, default=24)

    def handle(self, *args, hours: float, **options) -> None:
        deleted = attachments_prune_unsent(older_than=timezone.now() - timedelta(hours=hours))
        self.stdout.write(f"Deleted {deleted} unsent attachments older than {hours:g} hours.")
