"""WebSocket plumbing shared by the handshake and the consumer: close codes,
refusing a handshake in a way a client can act on, and the origin check."""

import json
import random
from collections.abc import Callable
from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings

from chatserver.errors import DomainError

# Close codes (docs/protocol.md). The credentials are missing, invalid, expired
# or revoked: log in again.
CLOSE_CREDENTIALS_INVALID = 4401
# The user already has WS_MAX_SOCKETS_PER_USER sockets open.
CLOSE_TOO_MANY_SOCKETS = 4409
# Too many handshakes from the client's address, or kept flooding after rate-limit errors.
CLOSE_RATE_LIMITED = 4429
# The server failed mid-stream; reconnect with ?since= to resume.
CLOSE_SERVER_ERROR = 4500
# RFC 6455's "Try Again Later": this process is taking in as many sockets as it
# can; the error frame's retry_after says when to come back.
CLOSE_TRY_AGAIN_LATER = 1013


class Admission:
    """The handshakes this process has taken in and not yet started (their
    user read, their presence registered, their log's state read).

    In a reconnect storm every socket of a restarted process arrives at once.
    Beyond ``WS_ADMISSION_MAX_STARTING`` of them a new one is refused at once,
    before any work, with 1013 and a jittered ``retry_after``: the others
    start sooner, and the established sockets' traffic does not queue behind
    thousands of handshakes.
    """

    def __init__(self) -> None:
        self.starting = 0

    def admit(self) -> Callable[[], None] | None:
        """A function to call once the socket started (or failed to), or None: refuse it."""
        if self.starting >= settings.WS_ADMISSION_MAX_STARTING:
            return None
        self.starting += 1
        left = False

        def leave() -> None:
            nonlocal left
            if not left:
                left = True
                self.starting -= 1

        return leave

    @staticmethod
    def retry_after() -> float:
        # Spread the retries, or they come back as one wave.
        return random.uniform(*settings.WS_ADMISSION_RETRY_SECONDS)  # noqa: S311 - jitter, not a secret


admission = Admission()


def error_frame(error: DomainError) -> dict:
    return {"type": "error", **error.as_dict()}


async def refuse(receive, send, error: DomainError, code: int) -> None:
    """Refuse a WebSocket so that the client learns why: accept the handshake,
    send one ``error`` frame (``code``, ``detail``, ``retry_after`` when there is
    one), then close with ``code``. A refused HTTP handshake reaches a browser
    as a bare 1006 and other clients as a 403 with no body: neither tells "log
    in again" from "wrong URL" or "slow down"."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(error_frame(error))})
    await send({"type": "websocket.close", "code": code, "reason": error.code})


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
