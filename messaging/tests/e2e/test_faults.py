"""Faults against real services: Redis stopped during traffic, PostgreSQL
restarted during traffic, a client that stops reading.

These tests start their own Redis and PostgreSQL servers (the binaries CI has)
so they can stop them without disturbing anything else. They run when the
suite runs on PostgreSQL + Redis; there a missing binary is a failure.
"""

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from messaging.tests.e2e.conftest import (
    Server,
    Stack,
    _is_postgres,
    free_port,
    recv_json,
    recv_type,
)

pytestmark = pytest.mark.skipif(
    not (_is_postgres(os.environ.get("DATABASE_URL", "")) and os.environ.get("REDIS_URL")),
    reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: fault tests run against real services",
)


def binary(name: str, *candidates: str) -> str:
    for path in (shutil.which(name), *candidates):
        if path and os.path.exists(path):
            return path
    pytest.fail(f"{name} is needed for the fault tests and was not found")


class RedisProcess:
    """A private redis-server that a test may stop and start again (empty, like
    a restarted Redis without persistence)."""

    def __init__(self, directory: Path) -> None:
        self.binary = binary("redis-server")
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while (
            subprocess.run([binary("redis-cli"), "-p", str(self.port), "ping"], capture_output=True).stdout != b"PONG\n"
        ):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[RedisProcess]:
    redis = RedisProcess(tmp_path_factory.mktemp("redis"))
    redis.start()
    yield redis
    if redis.process.poll() is None:
        redis.stop()


def drain(socket_, timeout: float = 0.5) -> list[dict]:
    frames = []
    while True:
        try:
            frames.append(recv_json(socket_, timeout))
        except TimeoutError:
            return frames


def test_redis_outage_loses_nothing_and_heals_itself(server_factory, redis_server):
    one = server_factory(REDIS_URL=redis_server.url)
    two = server_factory(REDIS_URL=redis_server.url)
    stack = Stack([one, two])
    with stack.sockets:
        alice, bob = stack.account(one), stack.account(two)
        alice_phone = alice.connect(one)
        bob_phone = bob.connect(two)

        bob_phone.send(json.dumps({"type": "direct_message", "to": alice.id, "content": "before"}))
        recv_type(bob_phone, "ack")
        assert recv_type(alice_phone, "direct_message")["content"] == "before"
        drain(alice_phone)

        redis_server.stop()
        statuses = []
        # REST keeps working: reads, login, the conversation list (presence reads as offline).
        for path in ("/users/me", "/conversations", f"/chats/{bob.id}"):
            statuses.append(one.request("GET", path, token=alice.token)[0])
        status, body = two.request(
            "POST", "/auth/login", {"email": f"{bob.username}@example.com", "password": "e2e-passphrase-not-common"}
        )
        statuses.append(status)
        # Tickets live in Redis: a clear 503, not a 500.
        status, body = one.request("POST", "/ws/ticket", token=alice.token)
        assert (status, body["code"]) == (503, "unavailable")
        assert statuses == [200, 200, 200, 200]

        # Messages sent meanwhile are stored and acknowledged.
        sent = []
        for number in range(5):
            bob_phone.send(
                json.dumps(
                    {"type": "direct_message", "to": alice.id, "content": f"during {number}", "client_id": f"d{number}"}
                )
            )
            sent.append(recv_type(bob_phone, "ack", timeout=10)["id"])
        # A device can still connect (no live events until Redis returns).
        alice_laptop = alice.connect(one)

        redis_server.start()
        # Both of Alice's devices get what was sent during the outage, in order,
        # with no gap in seq, without reconnecting.
        received = {}
        for device in (alice_phone, alice_laptop):
            frames = received[device] = []
            while len(frames) < 5:
                frames.append(recv_type(device, "direct_message", timeout=20))
            assert [f["id"] for f in frames] == sent
        # The phone was connected throughout: the log filled its gap, seq unbroken.
        seqs = [f["seq"] for f in received[alice_phone]]
        assert seqs == list(range(seqs[0], seqs[0] + 5))

        # Live delivery across processes works again.
        bob_phone.send(json.dumps({"type": "direct_message", "to": alice.id, "content": "after"}))
        recv_type(bob_phone, "ack")
        assert recv_type(alice_phone, "direct_message", timeout=10)["content"] == "after"
        assert recv_type(alice_laptop, "direct_message", timeout=10)["content"] == "after"
        for server in (one, two):
            assert server.process.poll() is None
            assert "Internal Server Error" not in server.log.read_text()
