from django.apps import AppConfig


class ChatserverConfig(AppConfig):
    """Project-level pieces that need an app: the ``serve`` command."""

    name = "chatserver"
    verbose_name = "Chat server"
