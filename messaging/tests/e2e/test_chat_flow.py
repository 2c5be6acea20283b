"""End to end: real daphne processes, real HTTP and WebSocket clients."""

import json
import os
import struct
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from messaging.tests.e2e.conftest import assert_silent, drain, raw_websocket, recv_json, recv_type


def send_dm(socket_, to, content: str, **extra) -> None:
    socket_.send(json.dumps({"type": "direct_message", "to": to.id, "content": content, **extra}))


def test_seed_wscat_walkthrough(stack):
    """README of the seed: connect with ?token=, send a direct_message, the receiver gets it."""
    server = stack.servers[0]
    sender, receiver = stack.account(), stack.account()
    receiver_socket = receiver.connect(server)
    sender_socket = sender.connect(server)

    # Exactly the text typed into wscat in the seed's README.
    sender_socket.send('{"type":"direct_message","to":"' + receiver.id + '","content":"Hello!"}')

    frame = recv_type(receiver_socket, "direct_message")
    assert frame["from"] == sender.id
    assert frame["content"] == "Hello!"
    assert isinstance(frame["timestamp"], int)
    assert abs(frame["timestamp"] - time.time()) < 60
    ack = recv_type(sender_socket, "ack")
    assert ack["id"] == frame["id"]
    assert drain(receiver_socket) == []  # one copy, nothing else


def test_two_users_two_devices_each_with_edit_and_delete(stack):
    server = stack.servers[0]
    alice, bob = stack.account(), stack.account()
    devices = [alice.connect(server), alice.connect(server, "/ws/"), bob.connect(server), bob.connect(server)]

    send_dm(devices[0], bob, "typo", client_id="e2e-1")
    message_id = recv_type(devices[0], "ack")["id"]
    for device in devices:
        frame = recv_type(device, "direct_message")
        assert (frame["id"], frame["content"], frame["client_id"]) == (message_id, "typo", "e2e-1")
    # Nothing else: no second copy; one delivery receipt for alice's devices.
    assert [sorted(f["type"] for f in drain(device)) for device in devices] == [
        ["message_delivered"],
        ["message_delivered"],
        [],
        [],
    ]

    status, body = server.request("PATCH", f"/messages/{message_id}", {"content": "fixed"}, token=alice.token)
    assert status == 200 and body["content"] == "fixed"
    for device in devices:
        (edited,) = drain(device)
        assert (edited["type"], edited["id"], edited["content"]) == ("message_edited", message_id, "fixed")

    status, _ = server.request("DELETE", f"/messages/{message_id}/delete", token=bob.token)
    assert status == 403
    status, body = server.request("DELETE", f"/messages/{message_id}/delete", token=alice.token)
    assert status == 200 and body["is_deleted"] is True
    for device in devices:
        (deleted,) = drain(device)
        assert (deleted["type"], deleted["id"]) == ("message_deleted", message_id)

    status, history = server.request("GET", f"/chats/{alice.id}", token=bob.token)
    assert status == 200 and history == []


def test_offline_message_arrives_on_connect(stack):
    server = stack.servers[0]
    alice, bob = stack.account(), stack.account()
    alice_socket = alice.connect(server)
    for n in range(3):
        send_dm(alice_socket, bob, f"while you were out {n}")
        recv_type(alice_socket, "ack")

    bob_socket = bob.connect(server)
    contents = [recv_type(bob_socket, "direct_message")["content"] for _ in range(3)]
    assert contents == [f"while you were out {n}" for n in range(3)]
    assert_silent(bob_socket)


def test_history_over_http_matches_what_was_sent(stack):
    server = stack.servers[0]
    alice, bob = stack.account(), stack.account()
    alice_socket = alice.connect(server)
    for n in range(25):
        send_dm(alice_socket, bob, f"m{n}")
        recv_type(alice_socket, "ack")
    status, page = server.request("GET", f"/chats/{alice.id}?limit=20", token=bob.token)
    assert status == 200
    assert [m["content"] for m in page] == [f"m{n}" for n in range(24, 4, -1)]


def test_bad_frames_keep_the_socket_open(stack):
    server = stack.servers[0]
    alice = stack.account()
    socket_ = alice.connect(server)
    for raw, code in [("nope", "invalid_json"), ("[]", "invalid_frame"), ('{"type":"x"}', "unknown_type")]:
        socket_.send(raw)
        assert recv_json(socket_)["code"] == code
    socket_.send('{"type":"ping"}')
    assert recv_json(socket_) == {"type": "pong"}


@pytest.mark.parametrize("query", ["", "?token=invalid"])
def test_bad_credentials_get_an_error_frame_and_close_4401(stack, query):
    """The client can tell "log in again" from a wrong URL (a bare 403 said neither)."""
    with ws_connect(f"{stack.servers[0].ws}/ws{query}", open_timeout=10) as socket_:
        frame = recv_json(socket_)
        assert (frame["type"], frame["code"]) == ("error", "invalid_token") and frame["detail"]
        with pytest.raises(ConnectionClosed) as closed:
            socket_.recv(timeout=5)
    assert closed.value.rcvd.code == 4401


def test_foreign_origin_is_refused_with_http_403(stack):
    alice = stack.account()
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(f"{stack.servers[0].ws}/ws?token={alice.token}", origin="https://evil.example", open_timeout=10)
    assert refused.value.response.status_code == 403


def test_two_processes_share_postgres_and_redis(stack):
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL: processes share events only through Redis")
    one, two = stack.servers
    alice, bob = stack.account(one), stack.account(two)
    alice_on_one, alice_on_two = alice.connect(one), alice.connect(two)
    bob_on_two, bob_on_one = bob.connect(two), bob.connect(one)

    send_dm(alice_on_one, bob, "across processes")
    message_id = recv_type(alice_on_one, "ack")["id"]
    for device in (bob_on_two, bob_on_one, alice_on_two):
        assert recv_type(device, "direct_message")["id"] == message_id

    # An edit through the other process's REST API reaches everyone too.
    assert two.request("PATCH", f"/messages/{message_id}", {"content": "edited"}, token=alice.token)[0] == 200
    for device in (alice_on_one, alice_on_two, bob_on_one, bob_on_two):
        assert recv_type(device, "message_edited")["content"] == "edited"


FAST_PINGS = {
    "daphne": (("--ping-interval", "1", "--ping-timeout", "2"), {}),
    "uvicorn": ((), {"WS_PING_INTERVAL_SECONDS": "1", "WS_PING_TIMEOUT_SECONDS": "2"}),
}


@pytest.mark.parametrize("kind", FAST_PINGS)
def test_dead_socket_is_dropped_after_ping_timeout(server_factory, stack, kind):
    args, env = FAST_PINGS[kind]
    server = server_factory(*args, kind=kind, **env)
    alice = stack.account()
    dead = raw_websocket(server.port, alice.token)
    alive = alice.connect(server)  # the websockets client answers pings

    started = time.monotonic()
    dead.settimeout(15)
    try:
        while dead.recv(4096):
            pass  # server pings, which this client ignores
    except ConnectionResetError:
        pass
    dropped_after = time.monotonic() - started
    # ping after 1 s idle, dropped 2 s later without a pong (daphne checks every second or so)
    assert 2 <= dropped_after < 10

    alive.send('{"type":"ping"}')
    assert recv_json(alive) == {"type": "pong"}


def test_frame_over_the_transport_limit_is_closed_with_1009(stack):
    """Both servers say why (1009, message too big); daphne used to drop the TCP
    connection without a close frame, which a client cannot tell from a network failure.

    The client announces a frame of 1 MiB + 10 and sends only its start: a
    client writing the whole frame can have its write cut off by the server's
    close (a broken pipe before it reads the close frame), which says nothing
    about the server."""
    alice = stack.account()
    sock = raw_websocket(stack.servers[0].port, alice.token)
    while True:  # past hello and online_users, which arrive unasked
        header = _recv_exactly(sock, 2)
        length = header[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", _recv_exactly(sock, 2))[0]
        payload = _recv_exactly(sock, length)
        if b"online_users" in payload:
            break
    mask = os.urandom(4)
    start = b'{"type":"ping","pad":"' + b"x" * 1000
    sock.sendall(
        bytes([0x81, 0x80 | 127])
        + struct.pack("!Q", 1024 * 1024 + 10)
        + mask
        + bytes(byte ^ mask[i % 4] for i, byte in enumerate(start))
    )
    header = _recv_exactly(sock, 2)
    assert header[0] == 0x88, f"closed without a close frame: {header!r}"
    code = struct.unpack("!H", _recv_exactly(sock, header[1] & 0x7F)[:2])[0]
    assert code == 1009
    sock.close()


def _recv_exactly(sock, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed"
        data += chunk
    return data


def test_an_idle_socket_still_receives(stack):
    """Idle longer than the channel layer's 5 s blocking pop: with Redis, a read
    timeout that is not longer than the pop would end the consumer (redis-py 8)."""
    alice, bob = stack.account(stack.servers[0]), stack.account(stack.servers[-1])
    alice_phone, bob_phone = alice.connect(stack.servers[0]), bob.connect(stack.servers[-1])
    time.sleep(7)
    bob_phone.send(json.dumps({"type": "direct_message", "to": alice.id, "content": "still there?"}))
    assert recv_type(alice_phone, "direct_message")["content"] == "still there?"
