"""Bearer JWT authentication: one token check for REST and WebSocket."""

import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from accounts.exceptions import InvalidToken
from accounts.models import User
from accounts.selectors import user_get_active
from accounts.services import TOKEN_VERSION_CLAIM, ws_ticket_redeem
from chatserver.client_address import scope_client_address
from chatserver.errors import RateLimited
from chatserver.log import bind_user
from chatserver.websocket import CLOSE_CREDENTIALS_INVALID, CLOSE_RATE_LIMITED, refuse
from messaging import ratelimit

logger = logging.getLogger(__name__)

AUTH_SCHEME = "Bearer"


def user_from_token(raw_token: str) -> User:
    """Return the user a valid access token stands for, or raise InvalidToken."""
    return verify_access_token(raw_token)[0]


def verify_access_token(raw_token: str) -> tuple[User, int]:
    """The user a valid access token stands for and its expiry (unix seconds).

    Checks, in order: HS256 signature with JWT_SECRET (``alg`` pinned, so
    ``none`` and other algorithms fail), ``exp`` present and in the future,
    ``jti`` present, ``token_type`` is "access" (a refresh token is refused),
    the user still exists and is active, and the token's version matches the
    user's (a password change revokes older tokens).
    """
    try:
        token = AccessToken(raw_token)
    except TokenError as error:
        raise InvalidToken(str(error)) from None
    user = user_get_active(token.get(api_settings.USER_ID_CLAIM, ""))
    if user is None:
        raise InvalidToken("User not found or inactive.")
    if token.get(TOKEN_VERSION_CLAIM) != user.token_version:
        raise InvalidToken("Token has been revoked.")
    return user, int(token["exp"])


def bearer_token_from_header(header: bytes | str) -> str | None:
    """The token in ``Authorization: Bearer <token>``; None when no header.

    Raises InvalidToken for any other scheme or a malformed header.
    """
    if isinstance(header, bytes):
        header = header.decode("latin-1")  # HTTP header bytes; never fails
    parts = header.split()
    if not parts:
        return None
    if parts[0].lower() != AUTH_SCHEME.lower():
        raise InvalidToken(f"Authorization scheme must be {AUTH_SCHEME}.")
    if len(parts) != 2:
        raise InvalidToken("Authorization header must be 'Bearer <token>'.")
    return parts[1]


class BearerTokenAuthentication(BaseAuthentication):
    """DRF adapter around :func:`user_from_token`."""

    def authenticate(self, request: Request) -> tuple[User, str] | None:
        try:
            raw_token = bearer_token_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
            if raw_token is None:
                return None
            user = user_from_token(raw_token)
            bind_user(user.id)
            return user, raw_token
        except InvalidToken as error:
            logger.info("Rejected bearer token: %s", error.detail)
            raise AuthenticationFailed(error.detail, code=error.code) from None

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) and tells the client which scheme to use.
        return f'{AUTH_SCHEME} realm="api"'


BEARER_SUBPROTOCOL = "bearer"


class WebSocketTokenAuthMiddleware:
    """Channels middleware: sets ``scope["user"]`` from, in order of preference,
    ``?ticket=`` (single use, from ``POST /ws/ticket``), the subprotocol pair
    ``Sec-WebSocket-Protocol: bearer, <JWT>``, ``?token=<JWT>`` (the seed's form)
    or an ``Authorization: Bearer`` header (non-browser clients).

    Handshakes are first counted per client address (``ws_connect``), before
    any credential is looked at. A refused handshake is accepted and closed at
    once with an ``error`` frame: 4429 (too many handshakes, with
    ``retry_after``) or 4401 (missing, invalid, expired, revoked or spent
    credentials). JWTs go through the same :func:`user_from_token` as REST.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        address = scope_client_address(scope)
        decision = await ratelimit.ahit("ws_connect", address)
        if not decision.allowed:
            logger.info("Too many WebSocket handshakes from one address")
            error = RateLimited("Too many connection attempts; retry later.", retry_after=decision.retry_after)
            return await refuse(receive, send, error, CLOSE_RATE_LIMITED)
        try:
            user, expire_at = await database_sync_to_async(_websocket_user)(scope)
        except InvalidToken as error:
            logger.info("Rejected WebSocket credentials: %s", error.detail)
            return await refuse(receive, send, error, CLOSE_CREDENTIALS_INVALID)
        if user is None:
            error = InvalidToken("Credentials required: ?ticket=, ?token= or a bearer token.")
            return await refuse(receive, send, error, CLOSE_CREDENTIALS_INVALID)
        return await self.app(dict(scope, user=user, credentials_expire_at=expire_at), receive, send)


def _websocket_user(scope) -> tuple[User | None, float | None]:
    """(user, when the credentials expire; the socket is closed at that time),
    or (None, None) when the handshake carries no credential."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if tickets := query.get("ticket"):
        return ws_ticket_redeem(tickets[0]), time.time() + settings.JWT_LIFETIME.total_seconds()
    subprotocols = scope.get("subprotocols") or []
    if len(subprotocols) >= 2 and subprotocols[0] == BEARER_SUBPROTOCOL:
        return verify_access_token(subprotocols[1])
    if tokens := query.get("token"):
        return verify_access_token(tokens[0])
    for name, value in scope.get("headers", []):
        if name == b"authorization" and (raw_token := bearer_token_from_header(value)):
            return verify_access_token(raw_token)
    return None, None
