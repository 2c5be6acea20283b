from django.apps import AppConfig


class PushConfig(AppConfig):
    """Push notifications for users with no open socket (Web Push and webhooks)."""

    name = "messaging.push"
    label = "push"
    verbose_name = "Push notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chatserver.metrics import register_database_collector
        from messaging.push import signals  # noqa: F401 - connects the receivers
        from messaging.push.counters import PushCollector

        register_database_collector(PushCollector())
