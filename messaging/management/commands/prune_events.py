"""Delete old events from the resume log (run daily, e.g. from cron)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from messaging import services


class Command(BaseCommand):
    help = "Delete logged events older than EVENT_LOG_RETENTION_DAYS; devices further behind get resync_required."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=float, default=settings.EVENT_LOG_RETENTION_DAYS)

    def handle(self, *args, days: float, **options) -> None:
        deleted = services.events_prune(before=timezone.now() - timedelta(days=days))
        self.stdout.write(f"Pruned {deleted} events older than {days:g} days.")
