"""WebSocket origin check that still admits non-browser clients."""

from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    """Checks ``Origin`` against ``ALLOWED_HOSTS`` when a browser sends one.

    Channels' own validator refuses connections with no ``Origin`` header,
    which would lock out wscat, mobile apps and servers; those cannot be
    cross-site-hijacked, so only a present origin is checked.
    """

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)


def origin_validator(application):
    return BrowserOriginValidator(application, settings.ALLOWED_HOSTS)
