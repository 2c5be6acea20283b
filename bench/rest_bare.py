"""The REST ceiling: a bare ASGI endpoint with no framework doing the same work
as the chat server's two hottest reads, on the chat server's own database.

    BARE_DATABASE_URL=postgres://... JWT_SECRET=... uvicorn bench.rest_bare:app

- ``GET /users/me``: the bearer token's HS256 signature, expiry and token
  version checked (PyJWT), the user read in one SELECT through psycopg's async
  pool, the same JSON fields;
- ``GET /chats/{userId}?before=``: the same token check, then the caller, the
  other user, their direct conversation and the newest-first page of 20 in one
  SELECT, rendered with orjson.

PostgreSQL only; one process, like the server it is compared with.
"""

import os
import uuid
from datetime import datetime
from urllib.parse import parse_qs

import jwt
import orjson
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

_pool: AsyncConnectionPool | None = None
SECRET = os.environ.get("JWT_SECRET", "")

ME = """
SELECT id, username, email, created, read_receipts, token_version
FROM accounts_user WHERE id = %(me)s AND is_active
"""

# The caller's token version rides on every row; the page is read newest first
# on the (conversation, -created_at, -id) index, like the server's own query.
PAGE = """
SELECT (SELECT token_version FROM accounts_user WHERE id = %(me)s AND is_active) AS token_version,
       m.id, m.sender_id, m.content, m.created_at, m.edited_at
FROM messaging_message m
WHERE m.conversation_id = (
          SELECT c.id FROM messaging_conversation c
          JOIN accounts_user other ON other.id = %(other)s AND other.is_active
          WHERE c.kind = 'direct' AND c.user_a_id = %(a)s AND c.user_b_id = %(b)s
      )
  AND NOT m.is_deleted AND m.created_at < %(before)s
ORDER BY m.created_at DESC, m.id DESC
LIMIT 21
"""


def _claims(headers: list) -> dict | None:
    for name, value in headers:
        if name == b"authorization" and value.startswith(b"Bearer "):
            try:
                return jwt.decode(value[7:], SECRET, algorithms=["HS256"])
            except jwt.PyJWTError:
                return None
    return None


async def _respond(send, status: int, body: object) -> None:
    payload = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _me(claims: dict) -> tuple[int, object]:
    async with _pool.connection() as connection:
        cursor = await connection.execute(ME, {"me": claims["user_id"]})
        row = await cursor.fetchone()
    if row is None or row["token_version"] != claims.get("ver"):
        return 401, {"detail": "Token is invalid or expired"}
    del row["token_version"]
    return 200, row


async def _page(claims: dict, other: str, query: dict) -> tuple[int, object]:
    me, other_id = uuid.UUID(claims["user_id"]), uuid.UUID(other)
    a, b = sorted((me, other_id), key=lambda pk: pk.hex)
    before = query.get("before", [None])[0]
    before = datetime.fromisoformat(before) if before else datetime.now().astimezone()
    async with _pool.connection() as connection:
        cursor = await connection.execute(PAGE, {"me": me, "other": other_id, "a": a, "b": b, "before": before})
        rows = await cursor.fetchall()
    if not rows:  # an empty page: the token is checked on its own
        status, body = await _me(claims)
        return (200, []) if status == 200 else (status, body)
    if rows[0]["token_version"] != claims.get("ver"):
        return 401, {"detail": "Token is invalid or expired"}
    page = [
        {
            "id": row["id"],
            "from": row["sender_id"],
            "to": b if row["sender_id"] == a else a,
            "content": row["content"],
            "timestamp": row["created_at"],
            "edited_at": row["edited_at"],
        }
        for row in rows[:20]
    ]
    return 200, page


async def app(scope, receive, send) -> None:
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = AsyncConnectionPool(
                    os.environ["BARE_DATABASE_URL"],
                    min_size=4,
                    max_size=10,
                    open=False,
                    kwargs={"row_factory": dict_row},
                )
                await _pool.open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    claims = _claims(scope["headers"])
    if claims is None:
        await _respond(send, 401, {"detail": "Token is invalid or expired"})
        return
    path = scope["path"]
    if path == "/users/me":
        status, body = await _me(claims)
    elif path.startswith("/chats/"):
        status, body = await _page(claims, path.removeprefix("/chats/"), parse_qs(scope["query_string"].decode()))
    else:
        status, body = 404, {"detail": "Not found."}
    await _respond(send, status, body)
