"""End to end: three devices of one user, across two processes when Redis is
configured, end with the same state as the database after any disconnects."""

import json

import pytest

from messaging.tests.e2e.conftest import recv_json


class DeviceState:
    """What a client app would keep: messages by id, and the last seq seen."""

    def __init__(self, account, server) -> None:
        self.account, self.server = account, server
        self.messages: dict[str, str] = {}
        self.seq = 0
        self.socket = None

    def connect(self, resume: bool = False) -> None:
        self.socket = self.account.connect(self.server, query=f"&since={self.seq}" if resume else "")
        if not resume:
            self.seq = self.socket.hello["seq"]

    def cut(self) -> None:
        self.drain()
        self.socket.close()

    def drain(self) -> None:
        while True:
            try:
                frame = recv_json(self.socket, timeout=0.6)
            except TimeoutError:
                return
            self.apply(frame)

    def apply(self, frame: dict) -> None:
        if "seq" in frame and frame["type"] not in ("synced", "hello"):
            assert frame["seq"] == self.seq + 1, f"gap or duplicate: {self.seq} -> {frame['seq']}"
            self.seq = frame["seq"]
        kind = frame["type"]
        if kind in ("direct_message", "message_edited"):
            self.messages[frame["id"]] = frame["content"]
        elif kind == "message_deleted":
            self.messages.pop(frame["id"], None)
        elif kind == "resync_required":
            pytest.fail("the log should reach back far enough")


def bob_sends(bob_socket, alice, content: str) -> str:
    bob_socket.send(json.dumps({"type": "direct_message", "to": alice.id, "content": content}))
    while True:
        frame = recv_json(bob_socket)
        if frame["type"] == "ack":
            return frame["id"]


def test_three_devices_across_processes_converge_on_the_database(stack):
    servers = stack.servers
    alice, bob = stack.account(servers[0]), stack.account(servers[-1])
    devices = [DeviceState(alice, servers[n % len(servers)]) for n in range(3)]
    for device in devices:
        device.connect()
    bob_socket = bob.connect(servers[-1])

    m1 = bob_sends(bob_socket, alice, "one")
    devices[0].cut()
    m2 = bob_sends(bob_socket, alice, "two")
    assert servers[-1].request("PATCH", f"/messages/{m1}", {"content": "one, edited"}, token=bob.token)[0] == 200
    devices[1].drain()
    devices[2].cut()
    assert servers[0].request("DELETE", f"/messages/{m2}/delete", token=bob.token)[0] == 200
    bob_sends(bob_socket, alice, "three")
    devices[1].cut()
    bob_sends(bob_socket, alice, "four")
    for device in devices:
        device.connect(resume=True)
    bob_sends(bob_socket, alice, "five")
    for device in devices:
        device.drain()

    status, history = servers[0].request("GET", f"/chats/{bob.id}?limit=100", token=alice.token)
    assert status == 200
    database = {m["id"]: m["content"] for m in history}
    assert sorted(database.values()) == ["five", "four", "one, edited", "three"]
    for device in devices:
        assert device.messages == database
    assert len({device.seq for device in devices}) == 1


def frames_of(socket_, kind: str, timeout: float = 5) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while True:
        frame = recv_json(socket_, max(0.05, deadline - time.monotonic()))
        if frame["type"] == kind:
            return frame


def test_receipts_presence_and_typing_across_processes(server_factory, database_url):
    """Each event reaches both devices of a user, one on each process."""
    # A fresh pair of processes with a short presence grace and typing timeout.
    import os

    from messaging.tests.e2e.conftest import Stack

    servers = [server_factory(PRESENCE_GRACE_SECONDS="0.5", TYPING_TIMEOUT_SECONDS="1")]
    if os.environ.get("REDIS_URL"):
        servers.append(server_factory(PRESENCE_GRACE_SECONDS="0.5", TYPING_TIMEOUT_SECONDS="1"))
    stack = Stack(servers)
    with stack.sockets:
        alice, bob = stack.account(servers[0]), stack.account(servers[-1])
        alice_devices = [alice.connect(servers[0]), alice.connect(servers[-1])]
        bob_socket = bob.connect(servers[-1])
        message_id = bob_sends(bob_socket, alice, "hello")

        for device in alice_devices:
            assert frames_of(device, "direct_message")["id"] == message_id
        assert frames_of(bob_socket, "message_delivered")["id"] == message_id

        alice_devices[1].send(json.dumps({"type": "read", "with": bob.id}))
        assert frames_of(bob_socket, "message_read")["id"] == message_id
        for device in alice_devices:
            assert frames_of(device, "unread")["count"] == 0

        bob_socket.send(json.dumps({"type": "typing", "to": alice.id}))
        for device in alice_devices:
            assert frames_of(device, "typing")["typing"] is True
        for device in alice_devices:
            assert frames_of(device, "typing")["typing"] is False  # expired on the server

        bob_on_one = bob.connect(servers[0])
        bob_socket.close()
        bob_on_one.close()
        for device in alice_devices:
            presence = frames_of(device, "presence")
            assert (presence["user_id"], presence["online"]) == (bob.id, False)
