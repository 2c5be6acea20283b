"""Faults against real services: Redis stopped during traffic, PostgreSQL
restarted during traffic, a client that stops reading.

These tests start their own Redis and PostgreSQL servers (the binaries CI has)
so they can stop them without disturbing anything else. They run when the
suite runs on PostgreSQL + Redis; there a missing binary is a failure.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from messaging.tests.e2e.conftest import (
    ROOT,
    Stack,
    free_port,
    is_postgres,
    raw_websocket,
    recv_json,
    recv_type,
    server_env,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.skipif(
    not (is_postgres(os.environ.get("DATABASE_URL", "")) and os.environ.get("REDIS_URL")),
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
    # A quick catch-up: an event lost in the instant Redis returns shows up soon.
    one = server_factory(REDIS_URL=redis_server.url, WS_CATCH_UP_SECONDS="1")
    two = server_factory(REDIS_URL=redis_server.url, WS_CATCH_UP_SECONDS="1")
    stack = Stack([one, two])
    with stack.sockets:
        alice, bob = stack.account(one), stack.account(two)
        alice_phone = alice.connect(one)
        bob_phone = bob.connect(two)

        bob_phone.send(json.dumps({"type": "direct_message", "to": alice.id, "content": "before"}))
        recv_type(bob_phone, "ack")
        before = recv_type(alice_phone, "direct_message")
        assert before["content"] == "before"
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
        # A device can still connect and resume (no live events until Redis
        # returns). It resumes from the log: the phone may already have been
        # sent some of these by the periodic catch-up, so offline delivery
        # (what no device was sent) would give it only the rest.
        alice_laptop = alice.connect(one, query=f"&since={before['seq']}")

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
        # Typing is never logged, so only a rejoined group carries it: the
        # catch-up cannot stand in for live delivery here.
        bob_phone.send(json.dumps({"type": "typing", "to": alice.id}))
        for device in (alice_phone, alice_laptop):
            assert recv_type(device, "typing", timeout=10)["from"] == bob.id
        for server in (one, two):
            assert server.process.poll() is None
            assert "Internal Server Error" not in server.log.read_text()


class PostgresProcess:
    """A private PostgreSQL cluster (initdb) that a test may stop and start."""

    def __init__(self, directory: Path) -> None:
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        self.bin = Path(binary("initdb", *map(str, versions))).parent
        self.port = free_port()
        self.directory = directory
        self.data = directory / "data"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(directory, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_postgres, str(self.bin / tool), *args], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.directory / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def postgres_server() -> Iterator[PostgresProcess]:
    # Not under pytest's private temp root: the postgres user must reach it.
    directory = Path(tempfile.mkdtemp(prefix="chat-fault-pg-"))
    directory.chmod(0o755)
    postgres = PostgresProcess(directory)
    postgres.start()
    yield postgres
    with contextlib.suppress(subprocess.CalledProcessError):
        postgres.stop()
    shutil.rmtree(directory, ignore_errors=True)


def test_postgres_restart_means_503_meanwhile_and_no_false_ack(postgres_server, tmp_path):
    with psycopg.connect(postgres_server.admin_url, autocommit=True) as connection:
        connection.execute("CREATE DATABASE chat")
    database_url = f"postgres://postgres@127.0.0.1:{postgres_server.port}/chat"
    env = server_env(database_url, "pgfault")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    server = start_server(env, tmp_path)
    stack = Stack([server])
    try:
        with stack.sockets:
            alice, bob = stack.account(), stack.account()
            alice_phone, bob_phone = alice.connect(server), bob.connect(server)
            acked: dict[str, str] = {}
            refused: list[str] = []

            def send(client_id: str) -> None:
                bob_phone.send(
                    json.dumps({"type": "direct_message", "to": alice.id, "content": client_id, "client_id": client_id})
                )
                while True:
                    frame = recv_json(bob_phone, timeout=15)
                    if frame["type"] == "ack":
                        acked[frame["client_id"]] = frame["id"]
                        return
                    if frame["type"] == "error":
                        assert frame["code"] == "unavailable", frame
                        assert frame["client_id"] == client_id
                        refused.append(client_id)
                        return

            send("m0")
            postgres_server.stop()
            # Down: REST answers 503 JSON; sends are refused, never acknowledged.
            status, body = server.request("GET", "/users/me", token=alice.token)
            assert (status, body["code"]) == (503, "unavailable")
            assert server.request("GET", "/readyz")[0] == 503
            for number in range(1, 4):
                send(f"m{number}")
            assert refused == ["m1", "m2", "m3"]

            postgres_server.start()
            # Back, without restarting the app: the first request may still find a
            # dead pooled connection (503), then it is replaced.
            deadline = time.monotonic() + 20
            while server.request("GET", "/users/me", token=alice.token)[0] != 200:
                assert time.monotonic() < deadline, "the app did not recover"
                time.sleep(0.2)
            # The client retries what was refused, with the same client_ids.
            for client_id in ["m1", "m2", "m3", "m4"]:
                for _ in range(5):
                    send(client_id)
                    if client_id in acked:
                        break
            assert set(acked) == {"m0", "m1", "m2", "m3", "m4"}

            with psycopg.connect(database_url) as connection:
                stored = dict(connection.execute("SELECT client_id, id::text FROM messaging_message").fetchall())
            assert {k: v.replace("-", "") for k, v in stored.items()} == {
                k: v.replace("-", "") for k, v in acked.items()
            }
            assert server.process.poll() is None
            assert "Internal Server Error" not in server.log.read_text()
            # Alice, connected throughout, ends with every stored message.
            ids = set()
            while len(ids) < len(stored):
                ids.add(recv_type(alice_phone, "direct_message", timeout=10)["id"])
            assert ids == set(acked.values())
    finally:
        stop_server(server)


def test_clients_that_stop_reading_are_dropped_and_others_carry_on(server_factory):
    """Clients that stop reading are dropped when their pings go unanswered,
    everyone else carries on meanwhile, and nothing is lost for the user.

    What bounds the server's memory meanwhile is uvicorn's flow control: a send
    to a socket whose transport is over its high-water mark waits, the socket's
    channel holds at most 100 events and drops the rest (filled from the log
    on resume). A test cannot show it through RSS: the kernel's loopback send
    buffers (up to 4 MB a socket) absorb more than it can send in the ping window.
    """
    server = server_factory(kind="uvicorn", WS_PING_INTERVAL_SECONDS="10", WS_PING_TIMEOUT_SECONDS="10")
    stack = Stack([server])
    with stack.sockets:
        alice, bob, carol, dave = (stack.account() for _ in range(4))
        # Devices of Alice's that never read again.
        stalled = [raw_websocket(server.port, alice.token) for _ in range(8)]
        bob_phone, carol_phone, dave_phone = bob.connect(server), carol.connect(server), dave.connect(server)

        started = time.monotonic()
        content = "x" * 4000
        sent = 0
        # About 1.6 MB addressed to the stalled client, well inside the ping window.
        while sent * len(content) < 1_600_000 and time.monotonic() - started < 9:
            for _ in range(20):
                bob_phone.send(json.dumps({"type": "direct_message", "to": alice.id, "content": content}))
            for _ in range(20):
                recv_type(bob_phone, "ack")
            sent += 20
            # Others are unaffected while the flood goes on.
            carol_phone.send(json.dumps({"type": "direct_message", "to": dave.id, "content": f"still here {sent}"}))
            assert recv_type(dave_phone, "direct_message")["content"] == f"still here {sent}"
        assert sent * len(content) * len(stalled) > 8_000_000

        # Dropped once their pings go unanswered (ping after 10 s, 10 s to answer).
        for device in stalled:
            device.settimeout(30)
            with contextlib.suppress(ConnectionResetError):
                while device.recv(65536):
                    pass  # what the kernel buffers held, then the end
        assert time.monotonic() - started < 30

        # Nothing is lost: a new connection resumes from the log.
        fresh = alice.connect(server, query="&since=0")
        ids = set()
        while True:
            frame = recv_json(fresh, timeout=10)
            if frame["type"] == "synced":
                break
            if frame["type"] == "direct_message":
                ids.add(frame["id"])
        assert len(ids) == sent
