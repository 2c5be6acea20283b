"""Real server processes for end-to-end tests.

Each test module gets its own database (a SQLite file, or a fresh PostgreSQL
database when DATABASE_URL points at PostgreSQL), migrated by ``manage.py``,
and daphne processes running the production settings (DEBUG off). With
REDIS_URL set, a second process shares PostgreSQL and Redis with the first.

The server is daphne (the development server) unless ``E2E_SERVER=uvicorn``
asks for ``manage.py serve``, the production server; CI runs the PostgreSQL +
Redis pass that way. Tests of production-only behaviour (graceful shutdown,
slow readers, nginx) always use ``serve``.
"""

import base64
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "e2e-passphrase-not-common"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        """(status, parsed JSON body or None)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.http + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None


@dataclass
class Account:
    id: str
    username: str
    token: str
    sockets: contextlib.ExitStack

    def connect(self, server: Server, path: str = "/ws", query: str = "") -> ClientConnection:
        """A device of this user, past its ``hello`` (kept as ``.hello``); closed
        when the module's servers stop."""
        socket_ = self.sockets.enter_context(
            ws_connect(f"{server.ws}{path}?token={self.token}{query}", open_timeout=10)
        )
        socket_.hello = past_hello(socket_)
        return socket_


class Stack:
    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self.sockets = contextlib.ExitStack()

    def account(self, server: Server | None = None) -> Account:
        server = server or self.servers[0]
        username = f"u{uuid.uuid4().hex[:10]}"
        status, _ = server.request(
            "POST", "/auth/register", {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
        )
        assert status == 201
        status, body = server.request("POST", "/auth/login", {"email": f"{username}@example.com", "password": PASSWORD})
        assert status == 200
        _, me = server.request("GET", "/users/me", token=body["token"])
        return Account(me["id"], username, body["token"], self.sockets)


def recv_json(socket_: ClientConnection, timeout: float = 5) -> dict:
    return json.loads(socket_.recv(timeout=timeout))


def past_hello(socket_: ClientConnection) -> dict:
    """Read a new socket's ``hello`` and the ``online_users`` that follows it; the hello."""
    hello = recv_json(socket_)
    assert hello["type"] == "hello", hello
    assert recv_json(socket_)["type"] == "online_users"
    return hello


def recv_type(socket_: ClientConnection, frame_type: str, timeout: float = 5) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        frame = recv_json(socket_, max(0.01, deadline - time.monotonic()))
        if frame["type"] == frame_type:
            return frame


def drain(socket_: ClientConnection, quiet: float = 0.5) -> list[dict]:
    """Every frame until none comes for ``quiet`` seconds (to show nothing else was sent)."""
    frames = []
    while True:
        try:
            frames.append(recv_json(socket_, quiet))
        except TimeoutError:
            return frames


def raw_websocket(port: int, token: str) -> socket.socket:
    """A client that completes the handshake and then never answers a ping."""
    sock = socket.socket()
    # A small receive buffer, so a client that does not read pushes back quickly.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(uuid.uuid4().bytes).decode()
    sock.sendall(
        (
            f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def assert_silent(socket_: ClientConnection, timeout: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        socket_.recv(timeout=timeout)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


@pytest.fixture(scope="module")
def database_url(tmp_path_factory) -> Iterator[str]:
    configured = os.environ.get("DATABASE_URL", "")
    if not is_postgres(configured):
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'chat.db'}"
        return
    name = f"chat_e2e_{uuid.uuid4().hex[:12]}"
    admin = urlunparse(urlparse(configured)._replace(path="/postgres", query=""))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield urlunparse(urlparse(configured)._replace(path=f"/{name}"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(database_url: str, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="chatserver.settings",
        DJANGO_ENV_FILE=os.devnull,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        JWT_SECRET=secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        CHANNEL_LAYER_PREFIX=prefix,
        CACHE_KEY_PREFIX=prefix,
        RATE_LIMIT_PREFIX=prefix,
        PYTHONUNBUFFERED="1",
        # Plain HTTP on loopback; production behind TLS keeps the redirect on.
        DJANGO_SECURE_SSL_REDIRECT="false",
        # Generous limits: these tests open many accounts and sockets from one address.
        AUTH_RATE_BURST="10000",
        AUTH_EMAIL_RATE_BURST="10000",
        REST_RATE_BURST="10000",
        WS_RATE_BURST="10000",
        WS_CONNECT_RATE_BURST="10000",
    )
    return env


DEFAULT_SERVER = os.environ.get("E2E_SERVER", "daphne")


def server_command(kind: str, port: int, extra_args: tuple[str, ...]) -> list[str]:
    if kind == "daphne":
        address = ["-b", "127.0.0.1", "-p", str(port)]
        return [sys.executable, "-m", "daphne", *address, *extra_args, "chatserver.asgi:application"]
    if kind == "uvicorn":
        return [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port), *extra_args]
    raise ValueError(f"unknown E2E_SERVER {kind!r}")


def wait_until_up(server: "Server", ready_path: str = "/users/me", ready_status: int = 401) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log.read_text()}")
        try:
            if server.request("GET", ready_path)[0] == ready_status:
                return
        except OSError:
            time.sleep(0.1)
    server.process.kill()
    raise RuntimeError(f"server did not come up:\n{server.log.read_text()}")


def start_server(
    env: dict[str, str],
    log_dir: Path,
    *extra_args: str,
    kind: str = DEFAULT_SERVER,
    ready_path: str = "/users/me",
    ready_status: int = 401,
) -> Server:
    port = free_port()
    log = log_dir / f"{kind}-{port}.log"
    process = subprocess.Popen(
        server_command(kind, port, extra_args),
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    server = Server(port, process, log)
    wait_until_up(server, ready_path, ready_status)
    return server


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="module")
def server_factory(database_url, tmp_path_factory) -> Iterator:
    """``server_factory(*server_args, kind=..., **env)`` starts a server process on the module's database."""
    env = server_env(database_url, f"e2e{uuid.uuid4().hex[:8]}")
    env["MEDIA_ROOT"] = str(tmp_path_factory.mktemp("media"))
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    log_dir = tmp_path_factory.mktemp("logs")
    started: list[Server] = []

    def start(*extra_args: str, kind: str = DEFAULT_SERVER, **env_overrides: str) -> Server:
        server = start_server({**env, **env_overrides}, log_dir, *extra_args, kind=kind)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_server(server)


@pytest.fixture(scope="module")
def stack(server_factory) -> Iterator[Stack]:
    """One server; a second sharing PostgreSQL and Redis when REDIS_URL is set."""
    servers = [server_factory()]
    if os.environ.get("REDIS_URL"):
        servers.append(server_factory())
    stack = Stack(servers)
    with stack.sockets:
        yield stack


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (the browser tests skip without it, except on CI)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
