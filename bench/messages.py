"""Direct-message throughput and latency, with the bare relay as the ceiling.

    .venv/bin/python -m bench.messages --pairs 20 --rates 100,200,400 --seconds 10

For each target it starts the server the way production runs it on a fresh
database (PostgreSQL when DATABASE_URL points at one, else SQLite; with
REDIS_URL also a two-process run), opens a socket per user, and each user
sends to its partner on an open-loop schedule (at the offered rate whatever
the replies). Printed per run: messages persisted (acknowledged) and
delivered per second, delivery latency p50/p99/max (send to receipt on the
partner's socket), and lost = acknowledged minus delivered, with the stored
count read back from the database. Rate limits are raised for the run.

The ceiling runs in the same invocation: ``bench.relay`` under uvicorn, with
one INSERT per message through psycopg's async pool, and without storage.
Every figure is also printed as a ratio to the persisted relay at that rate.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    ROOT,
    Account,
    create_accounts,
    free_port,
    is_postgres,
    migrate,
    open_socket,
    percentile,
    run,
    scratch_database,
    server_env,
    start_server,
)


@dataclass
class Result:
    name: str
    offered: float
    sent: int = 0
    acked: int = 0
    delivered: int = 0
    stored: int | None = None
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def persisted_rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0

    @property
    def delivered_rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0


async def drive(urls: list[str], pairs: list[tuple[Account, Account]], offered: float, seconds: float, result: Result):
    """Open-loop: every user sends at offered / users messages a second."""
    users = [user for pair in pairs for user in pair]
    interval = len(users) / offered
    sent_at: dict[str, float] = {}
    sockets = {}
    for index, user in enumerate(users):
        sockets[user.id] = await open_socket(urls[index % len(urls)], user.token)

    async def reader(user: Account) -> None:
        async for raw in sockets[user.id]:
            frame = json.loads(raw)
            if frame["type"] == "ack":
                result.acked += 1
            elif frame["type"] == "direct_message" and frame.get("to") == user.id:
                started = sent_at.get(frame.get("client_id"))
                if started is not None:
                    result.latencies.append(time.perf_counter() - started)
                    result.delivered += 1

    async def writer(user: Account, partner: Account, offset: float) -> None:
        socket_ = sockets[user.id]
        start = time.perf_counter() + offset
        number = 0
        while True:
            due = start + number * interval
            if due - begin > seconds:
                return
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            client_id = uuid.uuid4().hex
            sent_at[client_id] = time.perf_counter()
            await socket_.send(
                json.dumps({"type": "direct_message", "to": partner.id, "content": "x" * 64, "client_id": client_id})
            )
            result.sent += 1
            number += 1

    readers = [asyncio.create_task(reader(user)) for user in users]
    begin = time.perf_counter()
    writers = []
    for index, (alice, bob) in enumerate(pairs):
        writers.append(writer(alice, bob, interval * index / len(users)))
        writers.append(writer(bob, alice, interval * (index + 0.5) / len(users)))
    await asyncio.gather(*writers)
    deadline = time.perf_counter() + 20
    while time.perf_counter() < deadline and (result.acked < result.sent or result.delivered < result.acked):
        await asyncio.sleep(0.05)
    # Throughput over the time it took to persist and deliver everything offered.
    result.seconds = max(seconds, time.perf_counter() - begin - 0.05)
    for socket_ in sockets.values():
        await socket_.close()
    for task in readers:
        task.cancel()


def stored_messages(database_url: str, table: str) -> int | None:
    if is_postgres(database_url):
        import psycopg

        with psycopg.connect(database_url) as connection:
            return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    import sqlite3

    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def chat_run(name, kind, processes, database_url, redis_url, pairs_count, offered, seconds, workdir) -> Result:
    env = server_env(database_url, redis_url)
    migrate(env)
    servers = [start_server(env, kind, Path(workdir) / f"{name}-{i}.log") for i in range(processes)]
    try:
        accounts = create_accounts(servers[0].http, pairs_count * 2)
        pairs = list(zip(accounts[::2], accounts[1::2], strict=True))
        result = Result(name, offered)
        run(drive([s.ws for s in servers], pairs, offered, seconds, result))
    finally:
        for server in servers:
            server.stop()
    result.stored = stored_messages(database_url, "messaging_message")
    return result


def relay_run(name, database_url, pairs_count, offered, seconds) -> Result:
    env = {**os.environ, "RELAY_DATABASE_URL": database_url if is_postgres(database_url) else ""}
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.relay:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--ws-per-message-deflate",
            "false",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                import urllib.request

                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        accounts = [Account(str(uuid.uuid4()), "") for _ in range(pairs_count * 2)]
        accounts = [Account(a.id, a.id) for a in accounts]
        pairs = list(zip(accounts[::2], accounts[1::2], strict=True))
        result = Result(name, offered)
        run(drive([f"ws://127.0.0.1:{port}"], pairs, offered, seconds, result))
    finally:
        process.terminate()
        process.wait(10)
    if env["RELAY_DATABASE_URL"]:
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as connection:
            result.stored = connection.execute("SELECT count(*) FROM relay_message").fetchone()[0]
            connection.execute("DROP TABLE relay_message")
    return result


def print_table(results: list[Result], ceilings: dict[float, Result]) -> None:
    header = (
        f"{'run':<34}{'offered/s':>10}{'persisted/s':>12}{'delivered/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'lost':>6}{'stored':>8}{'x relay':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ceiling = ceilings.get(r.offered)
        ratio = r.delivered_rate / ceiling.delivered_rate if ceiling and ceiling.delivered_rate else float("nan")
        print(
            f"{r.name:<34}{r.offered:>10.0f}{r.persisted_rate:>12.0f}{r.delivered_rate:>12.0f}"
            f"{percentile(r.latencies, 0.5) * 1000:>9.1f}{percentile(r.latencies, 0.99) * 1000:>9.1f}"
            f"{(max(r.latencies) if r.latencies else float('nan')) * 1000:>9.1f}{r.acked - r.delivered:>6}"
            f"{'' if r.stored is None else r.stored:>8}{ratio:>9.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--rates", default="100,200,400", help="offered messages a second, comma-separated")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--servers", default="uvicorn,daphne", help="uvicorn (manage.py serve) and/or daphne")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    configured = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    results: list[Result] = []
    ceilings: dict[float, Result] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for rate in rates:
            if is_postgres(configured):
                with scratch_database(configured, Path(workdir)) as url:
                    ceilings[rate] = relay_run("bare relay, INSERT per message", url, args.pairs, rate, args.seconds)
                    results.append(ceilings[rate])
            results.append(relay_run("bare relay, no storage", "", args.pairs, rate, args.seconds))
            for kind in args.servers.split(","):
                with scratch_database(configured, Path(workdir)) as url:
                    results.append(
                        chat_run(f"chat {kind}, 1 process", kind, 1, url, "", args.pairs, rate, args.seconds, workdir)
                    )
            if redis_url:
                with scratch_database(configured, Path(workdir)) as url:
                    results.append(
                        chat_run(
                            "chat uvicorn, 2 processes + Redis",
                            "uvicorn",
                            2,
                            url,
                            redis_url,
                            args.pairs,
                            rate,
                            args.seconds,
                            workdir,
                        )
                    )
    database = "PostgreSQL" if is_postgres(configured) else "SQLite"
    print(f"direct messages: {args.pairs} pairs, {args.seconds:g} s per run, {database}, {os.cpu_count()} cores")
    print_table(results, ceilings)


if __name__ == "__main__":
    main()
