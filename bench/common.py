"""Shared pieces of the benchmarks: a database, server processes started the way
production runs them, accounts, and WebSocket clients."""

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-passphrase-not-common"
# /metrics of the servers under test, read for their CPU time and database calls.
METRICS_TOKEN = secrets.token_urlsafe(32)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def uvicorn_app(app: str, env: dict[str, str], *options: str) -> Iterator[int]:
    """A bare ASGI app (``bench.relay:app``, ``bench.rest_bare:app``) under
    uvicorn on a free port: yields the port once it answers HTTP, stops it after."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning", *options]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # answering, with an error status (no token, say)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


@contextmanager
def scratch_database(configured: str, workdir: Path):
    """A fresh database for one run: a new PostgreSQL database beside the
    configured one, or a SQLite file."""
    if not is_postgres(configured):
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    import psycopg

    name = f"chat_bench_{uuid.uuid4().hex[:10]}"
    admin = urlunparse(urlparse(configured)._replace(path="/postgres", query=""))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(configured)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(database_url: str, redis_url: str = "", **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.pop("REDIS_URL", None)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    env.update(
        DJANGO_SETTINGS_MODULE="chatserver.settings",
        DJANGO_ENV_FILE=os.devnull,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        JWT_SECRET=secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DATABASE_URL=database_url,
        CHANNEL_LAYER_PREFIX=prefix,
        CACHE_KEY_PREFIX=prefix,
        RATE_LIMIT_PREFIX=prefix,
        PRESENCE_PREFIX=f"{prefix}:presence",
        # The load is the point: limits raised for the run.
        AUTH_RATE_BURST="1000000",
        AUTH_EMAIL_RATE_BURST="1000000",
        REST_RATE_BURST="1000000",
        WS_RATE_BURST="1000000",
        WS_RATE_PER_SECOND="1000000",
        WS_CONNECT_RATE_BURST="1000000",
        WS_CONNECT_RATE_PER_MINUTE="60000000",
        WS_MAX_SOCKETS_PER_USER="1000000",
        LOG_LEVEL="WARNING",
        METRICS_TOKEN=METRICS_TOKEN,
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(overrides)
    return env


def server_metrics(base: str) -> dict[str, float]:
    """The process's Prometheus samples, ``name{labels}`` -> value."""
    req = urllib.request.Request(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """Samples of ``server_metrics`` taken later, minus those taken before."""
    return {name: value - before.get(name, 0.0) for name, value in after.items()}


GC_GENERATIONS = (("0", "young"), ("1", "middle"), ("2", "full"))


def gc_pauses(delta: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Generation -> (pauses, seconds paused), from a ``diff`` of samples."""
    return {
        generation: tuple(
            delta.get(f'chat_gc_pause_seconds_{part}{{generation="{generation}"}}', 0.0) for part in ("count", "sum")
        )
        for generation, _ in GC_GENERATIONS
    }


def describe_gc_pauses(pauses: dict[str, tuple[float, float]]) -> str:
    """``young 12 x 1.8 ms, middle 1 x 30.7 ms`` (generations that paused)."""
    return (
        ", ".join(
            f"{label} {count:.0f} x {total / count * 1000:.1f} ms"
            for generation, label in GC_GENERATIONS
            for count, total in [pauses.get(generation, (0.0, 0.0))]
            if count
        )
        or "none"
    )


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)


@dataclass
class ServerProcess:
    port: int
    process: subprocess.Popen

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(env: dict[str, str], kind: str = "uvicorn", log: Path | None = None) -> ServerProcess:
    """``uvicorn``: ``manage.py serve`` (production); ``daphne``: the daphne command."""
    port = free_port()
    if kind == "uvicorn":
        command = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "chatserver.asgi:application"]
    output = log.open("w") if log else subprocess.DEVNULL
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    server = ServerProcess(port, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"{server.http}/healthz", timeout=2)
            return server
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{kind} did not come up")


def request(base: str, method: str, path: str, body: dict | None = None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


@dataclass
class Account:
    id: str
    token: str
    email: str = ""


def create_account(base: str) -> Account:
    name = f"b{uuid.uuid4().hex[:12]}"
    email = f"{name}@example.com"
    status, _ = request(base, "POST", "/auth/register", {"username": name, "email": email, "password": PASSWORD})
    assert status == 201, status
    status, body = request(base, "POST", "/auth/login", {"email": email, "password": PASSWORD})
    assert status == 200, status
    _, me = request(base, "GET", "/users/me", token=body["token"])
    return Account(me["id"], body["token"], email)


def create_accounts(base: str, count: int) -> list[Account]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: create_account(base), range(count)))


async def open_socket(url: str, token: str):
    import websockets

    socket_ = await websockets.connect(f"{url}/ws?token={token}", max_size=2**20, compression=None)
    hello = json.loads(await socket_.recv())
    assert hello["type"] == "hello", hello
    return socket_


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(coroutine):
    try:
        import uvloop

        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


@dataclass
class HttpLoad:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def http_load(base: str, path: str, token: str, *, concurrency: int, seconds: float) -> HttpLoad:
    """Closed-loop GETs over ``concurrency`` keep-alive connections for ``seconds``.

    A minimal HTTP/1.1 client on asyncio streams: a general-purpose client
    library costs more CPU per request than the server under test, on the
    same two cores.
    """
    parsed = urlparse(base)
    raw = (
        f"GET {path} HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    result = HttpLoad(latencies=[])

    async def client(deadline: float) -> None:
        reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                result.latencies.append(time.perf_counter() - started)
                if status == 200:
                    result.requests += 1
                else:
                    result.errors += 1
        finally:
            writer.close()

    begin = time.perf_counter()
    await asyncio.gather(*(client(begin + seconds) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - begin
    return result


def run_alone(doc: str, add_arguments, measure, print_report) -> None:
    """A benchmark module's ``main``: its arguments, then measure and print on
    the database DATABASE_URL names (SQLite without it)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args()
    print_report(measure(os.environ.get("DATABASE_URL", ""), args), args)
