"""WebSocket frames, unit level: the real ASGI app through WebsocketCommunicator."""

import asyncio
import json
import logging
import threading

import pytest
from channels.db import database_sync_to_async
from django.db import connections

from messaging.models import MESSAGE_MAX_LENGTH, Message
from messaging.services import message_send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def count_messages() -> int:
    return await Message.objects.acount()


# ---- handshake -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws", "/ws/"])
async def test_connect_with_query_token(connect, alice, path, token_for):
    connected, _ = await connect(path=f"{path}?token={token_for(alice)}")
    assert connected


async def test_connect_with_bearer_header(connect, alice, token_for):
    connected, _ = await connect(path="/ws", headers=[(b"authorization", f"Bearer {token_for(alice)}".encode())])
    assert connected


@pytest.mark.parametrize(
    "query",
    ["", "?token=", "?token=garbage", "?token=a.b.c"],
    ids=["missing", "empty", "garbage", "malformed"],
)
async def test_handshake_refused_without_valid_token(connect, query):
    """Accepted only to say why: the client can tell "log in again" from a wrong URL."""
    connected, device = await connect(path=f"/ws{query}")
    assert not connected
    assert device.refusal["code"] == "invalid_token" and device.refusal["detail"]
    assert device.close_code == 4401


async def test_handshake_refused_for_expired_token(connect, alice):
    import time

    import jwt
    from django.conf import settings

    now = int(time.time())
    token = jwt.encode(
        {"token_type": "access", "exp": now - 10, "iat": now - 100, "jti": "x", "user_id": str(alice.id), "ver": 0},
        settings.JWT_SECRET,
        algorithm="HS256",
    )
    connected, device = await connect(path=f"/ws?token={token}")
    assert not connected
    assert (device.refusal["code"], device.close_code) == ("invalid_token", 4401)
    assert "expired" in device.refusal["detail"]


async def test_handshake_refused_for_wrong_scheme_header(connect, alice, token_for):
    connected, device = await connect(path="/ws", headers=[(b"authorization", f"Token {token_for(alice)}".encode())])
    assert not connected
    assert (device.refusal["code"], device.close_code) == ("invalid_token", 4401)


async def test_handshake_refused_for_foreign_origin(connect, alice, token_for):
    connected, device = await connect(
        path=f"/ws?token={token_for(alice)}", headers=[(b"origin", b"https://evil.example")]
    )
    assert not connected
    assert device.refusal is None  # cross-site: refused before the handshake (HTTP 403), nothing said


async def test_handshake_accepted_for_allowed_origin(connect, alice, token_for):
    connected, _ = await connect(path=f"/ws?token={token_for(alice)}", headers=[(b"origin", b"http://localhost:8080")])
    assert connected


# ---- direct messages -------------------------------------------------------


async def test_direct_message_reaches_receiver_and_sender_devices(connect, alice, bob):
    _, alice_phone = await connect(alice)
    _, alice_laptop = await connect(alice)
    _, bob_phone = await connect(bob)
    _, bob_laptop = await connect(bob)

    await alice_phone.send({"type": "direct_message", "to": str(bob.id), "content": "Hello!", "client_id": "c-1"})

    ack = await alice_phone.recv_type("ack")
    stored = await Message.objects.aget(pk=ack["id"])
    assert ack["client_id"] == "c-1" and ack["duplicate"] is False
    for device in (bob_phone, bob_laptop, alice_laptop, alice_phone):
        frame = await device.recv_type("direct_message")
        assert frame == {
            "type": "direct_message",
            "id": str(stored.id),
            "conversation": str(stored.conversation_id),
            "seq": 1,  # the first event of each of these users
            "from": str(alice.id),
            "sender_username": "alice",
            "to": str(bob.id),
            "content": "Hello!",
            "timestamp": int(stored.created_at.timestamp()),
            "created_at": frame["created_at"],
            "client_id": "c-1",
        }
        assert frame["created_at"].endswith("Z") and "." in frame["created_at"]  # ISO 8601 with µs
    # Nothing else: no second copy, and one delivery receipt for the sender's devices
    # (both of bob's devices report it; the cursor moves once).
    assert await bob_phone.drain_types() == await bob_laptop.drain_types() == []
    assert await alice_laptop.drain_types() == ["message_delivered"]
    assert await alice_phone.drain_types() == ["message_delivered"]


class HeldCommits:
    """Once ``hold()`` is called, every database commit waits until ``release()``:
    the transaction's statements have run, but nothing is committed yet."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch
        self.committing, self.released = threading.Event(), threading.Event()

    def hold(self) -> None:
        wrapper = type(connections["default"])
        real_commit = wrapper.commit

        def commit(connection) -> None:
            self.committing.set()
            self.released.wait(10)
            real_commit(connection)

        self.monkeypatch.setattr(wrapper, "commit", commit)

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def held_commits(monkeypatch):
    held = HeldCommits(monkeypatch)
    yield held
    held.release()


async def test_ack_waits_for_the_commit(connect, alice, bob, held_commits):
    """Neither the sender's ack nor anyone's event leaves before the message's
    transaction commits: a client never hears of a row that may roll back."""
    _, alice_phone = await connect(alice)
    _, bob_phone = await connect(bob)
    # The conversation exists, so the next commit is the message's own.
    await alice_phone.send({"type": "direct_message", "to": str(bob.id), "content": "first"})
    await alice_phone.recv_type("ack")
    await alice_phone.recv_type("message_delivered")
    await bob_phone.drain()

    held_commits.hold()
    await alice_phone.send({"type": "direct_message", "to": str(bob.id), "content": "stored first"})
    assert await asyncio.to_thread(held_commits.committing.wait, 5)
    await alice_phone.assert_silent(0.5)
    await bob_phone.assert_silent(0.1)
    held_commits.release()
    ack = await alice_phone.recv_type("ack")
    assert await Message.objects.filter(pk=ack["id"], content="stored first").aexists()
    assert (await bob_phone.recv())["id"] == ack["id"]


async def test_repeated_client_id_stores_one_message(connect, alice, bob):
    _, alice_phone = await connect(alice)
    _, bob_phone = await connect(bob)
    frame = {"type": "direct_message", "to": str(bob.id), "content": "once", "client_id": "retry-1"}
    await alice_phone.send(frame)
    first = await alice_phone.recv_type("ack")
    await alice_phone.send(frame)
    second = await alice_phone.recv_type("ack")
    assert second["id"] == first["id"]
    assert second["duplicate"] is True
    assert await count_messages() == 1
    # The retry is acknowledged, not announced again.
    assert [f["type"] for f in await bob_phone.drain()] == ["direct_message"]


async def test_ping_pong(connect, alice):
    _, device = await connect(alice)
    await device.send({"type": "ping"})
    assert await device.recv() == {"type": "pong"}


# ---- bad frames: an error frame, nothing stored, the socket stays open ------


BAD_FRAMES = [
    ("not json", "invalid_json"),
    ("", "invalid_json"),
    ('{"type": "sync", "since": Infinity}', "invalid_json"),
    ('{"type": "sync", "since": NaN}', "invalid_json"),
    # Parsed by Python as infinite floats, then int() overflowed: a server_error with a traceback.
    ('{"type": "sync", "since": 1e999}', "invalid_json"),
    ('{"type": "sync", "since": -1e999}', "invalid_json"),
    ('{"type": "sync", "since": 1.5}', "invalid"),
    ('{"type": "sync", "since": true}', "invalid"),
    ('{"type": "sync", "since": "12abc"}', "invalid"),
    # RecursionError in the parser: a server_error with a traceback, ~10 a second from one user.
    ('{"type": "ping", "x": ' + "[" * 15_000 + "]" * 15_000 + "}", "invalid_json"),
    ("[1, 2]", "invalid_frame"),
    ('"text"', "invalid_frame"),
    ("null", "invalid_frame"),
    ('{"content": "no type"}', "unknown_type"),
    ('{"type": "shout", "content": "x"}', "unknown_type"),
    ('{"type": 42}', "unknown_type"),
    ('{"type": []}', "unknown_type"),
    ('{"type": {"a": 1}}', "unknown_type"),
    # A lone surrogate is refused by the parser: not text any encoding can store.
    ('{"type": "direct_message", "to": "%(bob)s", "content": "\\ud800"}', "invalid_json"),
    ('{"type": "direct_message", "to": "%(bob)s", "content": "a\\u0000b"}', "invalid_content"),
    ('{"type": "direct_message", "to": "%(bob)s"}', "invalid_content"),
    ('{"type": "direct_message", "to": "%(bob)s", "content": ""}', "empty_content"),
    ('{"type": "direct_message", "to": "%(bob)s", "content": "   \\n"}', "empty_content"),
    ('{"type": "direct_message", "to": "%(bob)s", "content": 42}', "invalid_content"),
    ('{"type": "direct_message", "to": "%(bob)s", "content": "%(long)s"}', "content_too_long"),
    ('{"type": "direct_message", "content": "hi"}', "invalid_recipient"),
    ('{"type": "direct_message", "to": "not-a-uuid", "content": "hi"}', "invalid_recipient"),
    ('{"type": "direct_message", "to": 12, "content": "hi"}', "invalid_recipient"),
    (
        '{"type": "direct_message", "to": "00000000-0000-0000-0000-000000000000", "content": "hi"}',
        "recipient_not_found",
    ),
    ('{"type": "direct_message", "to": "%(alice)s", "content": "hi"}', "cannot_message_self"),
    ('{"type": "direct_message", "to": "%(bob)s", "content": "hi", "client_id": 7}', "invalid_client_id"),
    ('{"type": "direct_message", "to": "%(bob)s", "content": "hi", "client_id": ""}', "invalid_client_id"),
]


@pytest.mark.parametrize(("raw", "code"), BAD_FRAMES, ids=[f"{i}-{c}" for i, (_, c) in enumerate(BAD_FRAMES)])
async def test_bad_frame_gets_error_and_socket_stays_open(connect, alice, bob, raw, code, caplog):
    _, device = await connect(alice)
    text = raw % {"bob": bob.id, "alice": alice.id, "long": "x" * (MESSAGE_MAX_LENGTH + 1)}
    await device.ws.send_input({"type": "websocket.receive", "text": text})
    error = await device.recv()
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["detail"]
    assert await count_messages() == 0
    # Still open and working.
    await device.send({"type": "ping"})
    assert await device.recv() == {"type": "pong"}
    # A client's mistake is not the server's error: no traceback in the log.
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_binary_frame_is_refused_with_error(connect, alice):
    _, device = await connect(alice)
    await device.ws.send_to(bytes_data=b"\x00\x01")
    assert (await device.recv())["code"] == "invalid_frame"


async def test_content_at_the_limit_is_accepted(connect, alice, bob):
    _, device = await connect(alice)
    await device.send({"type": "direct_message", "to": str(bob.id), "content": "x" * MESSAGE_MAX_LENGTH})
    assert (await device.recv_type("ack"))["id"]


async def test_error_echoes_client_id(connect, alice, bob):
    _, device = await connect(alice)
    await device.send({"type": "direct_message", "to": str(bob.id), "content": "", "client_id": "c-9"})
    error = await device.recv()
    assert error["client_id"] == "c-9"


async def test_unknown_type_error_names_the_type(connect, alice):
    _, device = await connect(alice)
    await device.ws.send_to(text_data=json.dumps({"type": "shout"}))
    assert "shout" in (await device.recv())["detail"]


# ---- offline delivery -------------------------------------------------------


async def test_offline_messages_arrive_on_connect_oldest_first(connect, alice, bob):
    send = database_sync_to_async(message_send)
    for n in range(3):
        await send(sender=alice, to=str(bob.id), content=f"offline {n}")
    _, bob_phone = await connect(bob)
    contents = [(await bob_phone.recv_type("direct_message"))["content"] for _ in range(3)]
    assert contents == ["offline 0", "offline 1", "offline 2"]
    await bob_phone.assert_silent()

    # Another device of bob's connecting later does not get them again.
    _, bob_laptop = await connect(bob)
    await bob_laptop.assert_silent()


async def test_offline_delivery_replays_the_log_without_deleted_content(connect, alice, bob):
    from messaging.services import message_delete, message_edit

    first = (await database_sync_to_async(message_send)(sender=alice, to=str(bob.id), content="first")).message
    second = (await database_sync_to_async(message_send)(sender=alice, to=str(bob.id), content="second")).message
    await database_sync_to_async(message_edit)(user=alice, message_id=first.id, content="first, edited")
    await database_sync_to_async(message_delete)(user=alice, message_id=second.id)
    _, bob_phone = await connect(bob)
    # The log as it happened: the messages, the edit, the deletion; the deleted
    # message's frame blanked and marked, never with its content.
    frames = await bob_phone.drain()
    assert [(f["type"], f["id"], f.get("content"), f.get("deleted")) for f in frames] == [
        ("direct_message", str(first.id), "first", None),
        ("direct_message", str(second.id), "", True),
        ("message_edited", str(first.id), "first, edited", None),
        ("message_deleted", str(second.id), None, None),
    ]
    assert "second" not in json.dumps(frames)


async def test_live_message_marks_delivered(connect, alice, bob):
    _, bob_phone = await connect(bob)
    _, alice_phone = await connect(alice)
    await alice_phone.send({"type": "direct_message", "to": str(bob.id), "content": "live"})
    await bob_phone.recv_type("direct_message")
    await alice_phone.recv_type("message_delivered")  # published with the stored delivery mark
    _, bob_laptop = await connect(bob)
    await bob_laptop.assert_silent()


async def test_own_messages_sent_elsewhere_reach_a_device_that_was_away(connect, alice, bob):
    """One log per user: what alice sent from another device (here, no device
    at all) is part of it, and a device of hers that was away gets it, once,
    without reporting it delivered to herself."""
    sent = (await database_sync_to_async(message_send)(sender=alice, to=str(bob.id), content="mine")).message
    _, alice_phone = await connect(alice)
    frames = await alice_phone.drain()
    assert [(f["type"], f["id"]) for f in frames] == [("direct_message", str(sent.id))]
    _, alice_laptop = await connect(alice)
    assert await alice_laptop.drain() == []  # the phone had it
    _, bob_phone = await connect(bob)
    assert [f["type"] for f in await bob_phone.drain()] == ["direct_message"]
    receipts = [f["type"] for f in await alice_phone.drain() if f["type"] not in ("presence", "presence_change")]
    assert receipts == ["message_delivered"]  # from bob's device, not from hers


# ---- edit and delete events -------------------------------------------------


async def test_edit_and_delete_events_reach_both_users(connect, alice, bob):
    from messaging.services import message_delete, message_edit

    _, alice_phone = await connect(alice)
    _, bob_phone = await connect(bob)
    await alice_phone.send({"type": "direct_message", "to": str(bob.id), "content": "typo"})
    message_id = (await alice_phone.recv_type("ack"))["id"]
    conversation_id = (await bob_phone.recv_type("direct_message"))["conversation"]

    await alice_phone.drain()  # the echo and the delivery receipt

    await database_sync_to_async(message_edit)(user=alice, message_id=message_id, content="fixed")
    for device in (alice_phone, bob_phone):
        (edited,) = await device.drain()  # exactly one event per device
        assert edited["type"] == "message_edited"
        assert edited["id"] == message_id and edited["content"] == "fixed" and edited["edited_at"]

    await database_sync_to_async(message_delete)(user=alice, message_id=message_id)
    for device in (alice_phone, bob_phone):
        (deleted,) = await device.drain()
        assert deleted["type"] == "message_deleted"
        assert (deleted["id"], deleted["conversation"]) == (message_id, str(conversation_id))


async def test_no_event_for_a_send_that_rolls_back(connect, alice, bob):
    from django.db import transaction

    _, bob_phone = await connect(bob)

    def send_then_fail() -> None:
        with transaction.atomic():
            message_send(sender=alice, to=str(bob.id), content="never committed")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await database_sync_to_async(send_then_fail)()
    await bob_phone.assert_silent(0.5)
    assert await count_messages() == 0


async def test_a_batch_aborted_by_a_deadlock_is_retried_not_failed(connect, alice, bob):
    """Another transaction holds bob's event stream and then wants the
    conversation the writer's batch holds: PostgreSQL aborts the batch, which
    waited first; the writer runs it again, and the sender gets its ack."""
    from django.db import connection

    from messaging.models import Conversation, EventStream

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time: no deadlock to make")
    _, alice_phone = await connect(alice)
    await alice_phone.send({"type": "direct_message", "to": str(bob.id), "content": "first"})
    await alice_phone.recv_type("ack")
    await alice_phone.drain()
    stream_locked, conversation_wanted = threading.Event(), threading.Event()

    def other_transaction() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                EventStream.objects.select_for_update().filter(user=bob).update(pruned_through=0)
                stream_locked.set()
                conversation_wanted.wait(10)
                list(Conversation.objects.select_for_update().all())
        finally:
            connection.close()

    thread = threading.Thread(target=other_transaction)
    thread.start()
    assert await asyncio.to_thread(stream_locked.wait, 5)
    await alice_phone.send({"type": "direct_message", "to": str(bob.id), "content": "second", "client_id": "d-1"})
    await asyncio.sleep(0.3)  # the batch holds the conversation and waits for bob's stream
    conversation_wanted.set()
    ack = await alice_phone.recv_type("ack", timeout=10)
    await asyncio.to_thread(thread.join, 10)
    assert ack["client_id"] == "d-1"
    assert await Message.objects.filter(client_id="d-1").acount() == 1
