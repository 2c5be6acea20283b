"""The ceiling: a bare ASGI WebSocket relay with no Django, speaking the same
frames as the chat server for direct messages (``ack`` to the sender,
``direct_message`` to the receiver's sockets).

    uvicorn bench.relay:app            # with RELAY_DATABASE_URL: one INSERT per message
                                       # through psycopg's async pool; without: no storage

``?token=`` is taken as the user id (no authentication). One process only.
"""

import json
import os
import time
import uuid
from collections import defaultdict
from urllib.parse import parse_qs

DATABASE_URL = os.environ.get("RELAY_DATABASE_URL", "")
_sockets: dict[str, set] = defaultdict(set)
_pool = None

SCHEMA = """
CREATE TABLE IF NOT EXISTS relay_message (
    id uuid PRIMARY KEY, sender uuid NOT NULL, recipient uuid NOT NULL,
    content text NOT NULL, client_id text, created_at timestamptz NOT NULL DEFAULT now()
)
"""


async def _storage():
    global _pool
    if _pool is None and DATABASE_URL:
        from psycopg_pool import AsyncConnectionPool

        _pool = AsyncConnectionPool(DATABASE_URL, min_size=4, max_size=10, open=False)
        await _pool.open()
        async with _pool.connection() as connection:
            await connection.execute(SCHEMA)
    return _pool


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await _storage()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"status": "ok"}'})
        return
    user = parse_qs(scope["query_string"].decode()).get("token", [""])[0]
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    _sockets[user].add(send)
    await send({"type": "websocket.send", "text": json.dumps({"type": "hello", "user_id": user, "seq": 0})})
    pool = await _storage()
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            frame = json.loads(message.get("text") or "{}")
            message_id = str(uuid.uuid4())
            if pool is not None:
                async with pool.connection() as connection:
                    await connection.execute(
                        "INSERT INTO relay_message (id, sender, recipient, content, client_id)"
                        " VALUES (%s, %s, %s, %s, %s)",
                        (message_id, user, frame["to"], frame["content"], frame.get("client_id")),
                    )
            now = time.time()
            await send(
                {
                    "type": "websocket.send",
                    "text": json.dumps({"type": "ack", "id": message_id, "client_id": frame.get("client_id")}),
                }
            )
            out = json.dumps(
                {
                    "type": "direct_message",
                    "id": message_id,
                    "from": user,
                    "to": frame["to"],
                    "content": frame["content"],
                    "client_id": frame.get("client_id"),
                    "timestamp": int(now),
                }
            )
            for target in (_sockets.get(frame["to"], ()), _sockets[user] - {send}):
                for peer in list(target):
                    await peer({"type": "websocket.send", "text": out})
    finally:
        _sockets[user].discard(send)
