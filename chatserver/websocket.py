"""WebSocket origin check that still admits non-browser clients."""

from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    """Checks ``Origin`` against ``WS_ALLOWED_ORIGINS`` when a browser sends one.

    Channels' own validator refuses connections with no ``Origin`` header,
    which would lock out wscat, mobile apps and servers; those cannot be
    cross-site-hijacked, so only a present origin is checked.
    """

    def __init__(self, application) -> None:
        super().__init__(application, allowed_origins=[])

    @property
    def allowed_origins(self) -> list[str]:
        return settings.WS_ALLOWED_ORIGINS

    @allowed_origins.setter
    def allowed_origins(self, value: list[str]) -> None:
        """Ignored: the list is read from settings on every handshake."""

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)
