"""End to end: abuse protection against real daphne processes."""

import contextlib
import json
import os
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from messaging.tests.e2e.conftest import past_hello, recv_json

NEEDS_REDIS = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs REDIS_URL: processes share limits and events only through Redis"
)
# Burst 10 and (practically) no refill during the test.
STINGY = {
    "WS_RATE_BURST": "10",
    "WS_RATE_PER_SECOND": "0.0001",
    "REST_RATE_BURST": "5",
    "REST_RATE_PER_MINUTE": "0.001",
}


def drain(socket_, count: int) -> list[dict]:
    return [recv_json(socket_) for _ in range(count)]


def test_access_log_never_contains_a_token(stack):
    server = stack.servers[0]
    alice = stack.account()
    socket_ = alice.connect(server)
    socket_.send('{"type":"ping"}')
    recv_json(socket_)
    # A plain HTTP request carrying a token in its query string, as a misconfigured client might send.
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(f"{server.http}/chats/{alice.id}?token={alice.token}", timeout=5)
    socket_.close()
    log = server.log.read_text()
    assert "/ws" in log and "/chats/" in log  # the requests were logged...
    assert alice.token not in log  # ...without the credential
    assert "token=[REDACTED]" in log
    # Production logs are JSON lines with a request id (and the user id once known).
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert lines and all("request_id" in line and "user_id" in line for line in lines)


def test_access_log_never_contains_search_terms(stack):
    server = stack.servers[0]
    alice = stack.account()
    status, _ = server.request("GET", "/messages/search?q=my+secret+diagnosis&limit=5", token=alice.token)
    assert status == 200
    status, _ = server.request("GET", "/users/search?q=confidentialname", token=alice.token)
    assert status == 200
    log = server.log.read_text()
    assert "/messages/search" in log and "/users/search" in log  # the requests were logged...
    assert "secret" not in log and "diagnosis" not in log and "confidentialname" not in log  # ...without the terms
    assert "limit=5" in log  # paging parameters stay readable


def test_ticket_flow_keeps_the_jwt_out_of_the_url(stack):
    server = stack.servers[0]
    alice = stack.account()
    status, body = server.request("POST", "/ws/ticket", token=alice.token)
    assert status == 200
    with ws_connect(f"{server.ws}/ws?ticket={body['ticket']}", open_timeout=10) as socket_:
        past_hello(socket_)
        socket_.send('{"type":"ping"}')
        assert recv_json(socket_) == {"type": "pong"}
    with ws_connect(f"{server.ws}/ws?ticket={body['ticket']}", open_timeout=10) as socket_:  # single use
        assert recv_json(socket_)["code"] == "invalid_token"
        with pytest.raises(ConnectionClosed) as closed:
            socket_.recv(timeout=5)
    assert closed.value.rcvd.code == 4401


def test_bearer_subprotocol(stack):
    server = stack.servers[0]
    alice = stack.account()
    with ws_connect(f"{server.ws}/ws", subprotocols=["bearer", alice.token], open_timeout=10) as socket_:
        assert socket_.subprotocol == "bearer"
        past_hello(socket_)
        socket_.send('{"type":"ping"}')
        assert recv_json(socket_) == {"type": "pong"}


def test_oversized_frame_gets_an_error_and_the_socket_lives_on(server_factory, stack):
    server = server_factory(WS_MAX_FRAME_BYTES="2048")
    alice = stack.account()
    with ws_connect(f"{server.ws}/ws?token={alice.token}", open_timeout=10) as socket_:
        past_hello(socket_)
        socket_.send(json.dumps({"type": "ping", "pad": "x" * 4096}))
        assert recv_json(socket_)["code"] == "frame_too_large"
        socket_.send('{"type":"ping"}')
        assert recv_json(socket_) == {"type": "pong"}


@NEEDS_REDIS
def test_two_processes_allow_the_websocket_limit_once(server_factory, stack):
    one, two = server_factory(**STINGY), server_factory(**STINGY)
    alice = stack.account(one)
    with ws_connect(f"{one.ws}/ws?token={alice.token}") as a, ws_connect(f"{two.ws}/ws?token={alice.token}") as b:
        past_hello(a), past_hello(b)
        for n in range(20):
            (a if n % 2 else b).send('{"type":"ping"}')
        frames = drain(a, 10) + drain(b, 10)
    assert sum(f["type"] == "pong" for f in frames) == 10
    assert sum(f.get("code") == "rate_limited" for f in frames) == 10


@NEEDS_REDIS
def test_two_processes_allow_the_rest_limit_once(server_factory, stack):
    one, two = server_factory(**STINGY), server_factory(**STINGY)
    alice = stack.account(one)
    # account() already spent one of the 5 tokens on GET /users/me.
    statuses = [(one if n % 2 else two).request("GET", "/users/me", token=alice.token)[0] for n in range(10)]
    assert statuses.count(200) == 4
    assert statuses.count(429) == 6


def test_password_change_closes_sockets_on_every_process(stack):
    """The change goes through the first process; the socket sits on the last one
    (the same process without Redis, the other one with it)."""
    rest, ws = stack.servers[0], stack.servers[-1]
    alice = stack.account(rest)
    socket_ = alice.connect(ws)
    status, body = rest.request(
        "POST",
        "/users/me/password",
        {"current_password": "e2e-passphrase-not-common", "new_password": "a-new-e2e-passphrase"},
        token=alice.token,
    )
    assert status == 200
    with pytest.raises(ConnectionClosed) as closed:
        socket_.recv(timeout=5)
    assert closed.value.rcvd.code == 4401
    assert ws.request("GET", "/users/me", token=alice.token)[0] == 401
    assert ws.request("GET", "/users/me", token=body["token"])[0] == 200
