"""Bearer JWT authentication: one token check for REST and WebSocket."""

import functools
import logging
import time
import uuid
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import jwt
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
from accounts.selectors import user_get_active, users_get_active
from accounts.services import TOKEN_VERSION_CLAIM, ws_ticket_redeem
from chatserver import metrics, ratelimit
from chatserver.client_address import scope_client_address
from chatserver.coalesce import Coalesced
from chatserver.db import db
from chatserver.errors import RateLimited, ServerBusy
from chatserver.log import bind_user
from chatserver.websocket import CLOSE_CREDENTIALS_INVALID, CLOSE_RATE_LIMITED, CLOSE_TRY_AGAIN_LATER, admission, refuse

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
    claims = decode_access_token(raw_token)
    return token_user(claims, user_get_active(claims.user_id)), claims.expires_at


class TokenClaims(NamedTuple):
    user_id: uuid.UUID
    version: Any
    expires_at: int
    # Issued by the Go server this one replaces (accepted with JWT_ACCEPT_SEED_TOKENS).
    seed: bool = False


# A Go-issued token carries no version. It stands for version 0, where every
# user starts (imported ones too) and which any password change or "log out
# everywhere" leaves behind: those still revoke it.
SEED_TOKEN_VERSION = 0


def decode_access_token(raw_token: str) -> TokenClaims:
    """The claims of a well-signed, unexpired access token (no database involved).

    Devices reconnect with the token they had, so the claims of tokens already
    verified are kept (by the whole token text, so a changed token is verified
    anew): a reconnect storm does not check the same signature thousands of
    times. Expiry is checked on every use; revocation is the caller's check
    against the user's token version.
    """
    claims = _verified(raw_token)
    if claims.expires_at <= time.time() or (claims.seed and not settings.JWT_ACCEPT_SEED_TOKENS):
        raise InvalidToken("Token is invalid or expired")
    return claims


@functools.lru_cache(maxsize=50_000)  # thread-safe; a refused token raises and is not kept
def _verified(raw_token: str) -> TokenClaims:
    try:
        token = AccessToken(raw_token)
        user_id = uuid.UUID(str(token.get(api_settings.USER_ID_CLAIM, "")))
    except TokenError as error:
        if claims := _seed_token_claims(raw_token):
            return claims
        raise InvalidToken(str(error)) from None
    except ValueError:
        raise InvalidToken("User not found or inactive.") from None
    return TokenClaims(user_id, token.get(TOKEN_VERSION_CLAIM), int(token["exp"]))


def _seed_token_claims(raw_token: str) -> TokenClaims | None:
    """The claims of a token the Go server issued: exactly ``{"user_id", "exp"}``,
    HS256 with the same secret; None for anything else."""
    try:
        payload = jwt.decode(
            raw_token, settings.JWT_SECRET, algorithms=["HS256"], options={"require": ["exp", "user_id"]}
        )
        if set(payload) != {"user_id", "exp"}:
            return None
        return TokenClaims(uuid.UUID(str(payload["user_id"])), SEED_TOKEN_VERSION, int(payload["exp"]), seed=True)
    except (jwt.PyJWTError, ValueError, TypeError):
        return None


def token_user(claims: TokenClaims, user: User | None) -> User:
    """The user of these claims, if still active and the token not revoked."""
    if user is None:
        raise InvalidToken("User not found or inactive.")
    if claims.version != user.token_version:
        raise InvalidToken("Token has been revoked.")
    return user


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

    A handshake is first admitted by the process (``Admission``: not too many
    starting at once), then counted per client address (``ws_connect``),
    before any credential is looked at. A refused handshake is accepted and
    closed at once with an ``error`` frame: 1013 (the process is busy, with
    ``retry_after``), 4429 (too many handshakes from the address, with
    ``retry_after``) or 4401 (missing, invalid, expired, revoked or spent
    credentials). JWTs are checked like REST's (:func:`verify_access_token`).
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        admitted = admission.admit()
        if admitted is None:
            metrics.WS_REFUSED.labels("busy").inc()
            error = ServerBusy(retry_after=admission.retry_after())
            return await refuse(receive, send, error, CLOSE_TRY_AGAIN_LATER)
        try:
            address = scope_client_address(scope)
            decision = await ratelimit.ahit("ws_connect", address)
            if not decision.allowed:
                logger.info("Too many WebSocket handshakes from one address")
                error = RateLimited("Too many connection attempts; retry later.", retry_after=decision.retry_after)
                return await refuse(receive, send, error, CLOSE_RATE_LIMITED)
            try:
                user, expire_at = await _websocket_user(scope)
            except InvalidToken as error:
                logger.info("Rejected WebSocket credentials: %s", error.detail)
                return await refuse(receive, send, error, CLOSE_CREDENTIALS_INVALID)
            if user is None:
                error = InvalidToken("Credentials required: ?ticket=, ?token= or a bearer token.")
                return await refuse(receive, send, error, CLOSE_CREDENTIALS_INVALID)
            scope = dict(scope, user=user, credentials_expire_at=expire_at, admitted=admitted)
            return await self.app(scope, receive, send)
        finally:
            admitted()  # the consumer says so as soon as it started; this covers every other way out


async def _websocket_user(scope) -> tuple[User | None, float | None]:
    """(user, when the credentials expire; the socket is closed at that time),
    or (None, None) when the handshake carries no credential.

    A JWT is checked on the event loop; its user is read together with the
    users of every other handshake of this loop turn (one query per burst)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if tickets := query.get("ticket"):
        user = await database_sync_to_async(ws_ticket_redeem)(tickets[0])
        return user, time.time() + settings.JWT_LIFETIME.total_seconds()
    raw_token = _bearer_token(scope, query)
    if raw_token is None:
        return None, None
    claims = decode_access_token(raw_token)
    return token_user(claims, await _active_user(claims.user_id)), claims.expires_at


def _bearer_token(scope, query: dict[str, list[str]]) -> str | None:
    subprotocols = scope.get("subprotocols") or []
    if len(subprotocols) >= 2 and subprotocols[0] == BEARER_SUBPROTOCOL:
        return subprotocols[1]
    if tokens := query.get("token"):
        return tokens[0]
    for name, value in scope.get("headers", []):
        if name == b"authorization" and (raw_token := bearer_token_from_header(value)):
            return raw_token
    return None


async def _active_users(user_ids: list[uuid.UUID]) -> list[User | None]:
    found = await db(users_get_active)(user_ids)
    return [found.get(user_id) for user_id in user_ids]


_active_user = Coalesced(_active_users)
