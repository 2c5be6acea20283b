"""The chat WebSocket: a thin adapter between frames and messaging.services."""

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from accounts.authentication import BEARER_SUBPROTOCOL
from chatserver.errors import DomainError
from messaging import events, ratelimit, selectors, services
from messaging.exceptions import (
    FrameTooLarge,
    InvalidFrame,
    InvalidJson,
    RateLimited,
    ServerError,
    UnknownFrameType,
)
from messaging.serializers import ack_frame, message_frame

logger = logging.getLogger(__name__)

# The token expired or was revoked (password change, deactivation): log in again.
CLOSE_CREDENTIALS_INVALID = 4401
CLOSE_FLOODING = 4429


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """One socket of one device. Joins the user's group, so every device of the
    user gets every message and edit/delete event, then replays what no device
    of the user has been sent yet (offline delivery)."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        self.user = user
        self.token_version = user.token_version
        self.group = events.user_group(user.id)
        self.rejected_in_a_row = 0
        # Ids replayed on connect; a live copy of one of them arriving later is a duplicate.
        self.replayed: set[str] = set()
        await self.channel_layer.group_add(self.group, self.channel_name)
        # A browser authenticating with the "bearer, <JWT>" subprotocol pair must see
        # one of its offers echoed; echo "bearer", never the token.
        subprotocols = self.scope.get("subprotocols") or []
        await self.accept(BEARER_SUBPROTOCOL if subprotocols[:1] == [BEARER_SUBPROTOCOL] else None)
        self._close_when_credentials_expire()
        await self._deliver_offline()

    def _close_when_credentials_expire(self) -> None:
        expire_at = self.scope.get("credentials_expire_at")
        if expire_at is None:
            return
        loop = asyncio.get_running_loop()
        self.expiry = loop.call_later(
            max(0.0, expire_at - time.time()), lambda: loop.create_task(self.close(CLOSE_CREDENTIALS_INVALID))
        )

    async def disconnect(self, code: int) -> None:
        if expiry := getattr(self, "expiry", None):
            expiry.cancel()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    # ---- client -> server -------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame: Any = None
        try:
            try:
                frame = self._parse(text_data)
            finally:
                # Every frame counts, even one that does not parse; a refusal wins.
                await self._check_rate()
            frame_type = frame.get("type")
            handler = self.FRAME_HANDLERS.get(frame_type) if isinstance(frame_type, str) else None
            if handler is None:
                raise UnknownFrameType(f"Unknown frame type {frame.get('type')!r}.", field="type")
            await handler(self, frame)
        except DomainError as error:
            await self._send_error(error, frame)
        except Exception:
            logger.exception("Unexpected error handling a frame from user %s", self.user.id)
            await self._send_error(ServerError(), frame)

    async def _check_rate(self) -> None:
        """Every frame counts against the user's bucket, shared by all their devices."""
        decision = await ratelimit.ahit("ws", str(self.user.id))
        if decision.allowed:
            self.rejected_in_a_row = 0
            return
        self.rejected_in_a_row += 1
        if self.rejected_in_a_row > settings.WS_FLOOD_CLOSE_AFTER:
            logger.warning("Closing socket of user %s: kept flooding after rate-limit errors", self.user.id)
            await self.close(CLOSE_FLOODING)
        logger.info("Rate limited WebSocket frame from user %s", self.user.id)
        raise RateLimited(retry_after=decision.retry_after)

    @staticmethod
    def _parse(text_data: str | None) -> dict[str, Any]:
        if text_data is None:
            raise InvalidFrame("Binary frames are not supported; send JSON text.")
        # Checked before parsing, so an oversized frame costs no JSON work.
        if len(text_data) * 4 > settings.WS_MAX_FRAME_BYTES and len(text_data.encode()) > settings.WS_MAX_FRAME_BYTES:
            raise FrameTooLarge(f"Frames are limited to {settings.WS_MAX_FRAME_BYTES} bytes.")
        try:
            frame = json.loads(text_data)
        except ValueError:
            raise InvalidJson() from None
        if not isinstance(frame, dict):
            raise InvalidFrame()
        return frame

    async def _on_direct_message(self, frame: dict[str, Any]) -> None:
        result = await database_sync_to_async(services.message_send)(
            sender=self.user, to=frame.get("to"), content=frame.get("content"), client_id=frame.get("client_id")
        )
        await self.send_json(ack_frame(result.message, duplicate=not result.created))

    async def _on_ping(self, frame: dict[str, Any]) -> None:
        await self.send_json({"type": "pong"})

    FRAME_HANDLERS = {"direct_message": _on_direct_message, "ping": _on_ping}

    async def _send_error(self, error: DomainError, frame: Any) -> None:
        reply = {"type": "error", **error.as_dict()}
        if isinstance(frame, dict) and isinstance(frame.get("client_id"), str):
            reply["client_id"] = frame["client_id"]
        await self.send_json(reply)

    # ---- server -> client (channel layer events) --------------------------

    async def chat_message(self, event: dict[str, Any]) -> None:
        frame = event["frame"]
        if frame["id"] in self.replayed:
            return
        await self.send_json(frame)
        if event["sender"] != str(self.user.id):
            skipped = await database_sync_to_async(services.message_delivered_live)(
                self.user, uuid.UUID(event["conversation"]), event["seq"]
            )
            for message in skipped:
                self.replayed.add(str(message.id))
                await self.send_json(message_frame(message))

    async def chat_event(self, event: dict[str, Any]) -> None:
        await self.send_json(event["frame"])

    async def session_revoked(self, event: dict[str, Any]) -> None:
        if self.token_version < event["token_version"]:
            await self.close(CLOSE_CREDENTIALS_INVALID)

    # ---- offline delivery --------------------------------------------------

    async def _deliver_offline(self) -> None:
        while True:
            batch = await database_sync_to_async(selectors.messages_undelivered)(self.user)
            if not batch:
                return
            delivered: dict[uuid.UUID, int] = {}
            for message in batch:
                await self.send_json(message_frame(message))
                self.replayed.add(str(message.id))
                delivered[message.conversation_id] = max(message.seq, delivered.get(message.conversation_id, 0))
            await database_sync_to_async(services.membership_mark_delivered)(self.user.id, delivered)
            if len(batch) < selectors.OFFLINE_BATCH_SIZE:
                return
