"""Steady load for a while; resources at the start and the end must stay flat.

    .venv/bin/python -m bench.soak --minutes 10 --pairs 20 --rate 2

Starts ``manage.py serve`` on a fresh database (PostgreSQL when DATABASE_URL
points at one, else SQLite; Redis when REDIS_URL is set), then N pairs of users
exchange direct messages, each user sending ``--rate`` messages a second while
every socket stays open. After a warm-up, and at the end, it samples the server's
resident memory, its open file descriptors, the database's connections and
Redis' keys, and prints them with the messages sent and received.
"""

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from bench.common import (
    create_accounts,
    is_postgres,
    migrate,
    open_socket,
    run,
    scratch_database,
    server_env,
    start_server,
)


def sample(server, database_url: str, redis_url: str) -> dict[str, float]:
    figures = {
        "rss_mb": server.rss_bytes() / 2**20,
        "open_fds": len(os.listdir(f"/proc/{server.process.pid}/fd")),
    }
    if is_postgres(database_url):
        import psycopg

        with psycopg.connect(database_url) as connection:
            (count,) = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        figures["db_connections"] = count
    if redis_url:
        import redis

        figures["redis_keys"] = redis.Redis.from_url(redis_url).dbsize()
    return figures


async def pair_traffic(server, alice, bob, rate: float, stop_at: float, counts: dict) -> None:
    sockets = [await open_socket(server.ws, alice.token), await open_socket(server.ws, bob.token)]

    async def reader(socket_) -> None:
        async for raw in socket_:
            frame = json.loads(raw)
            counts[frame["type"]] = counts.get(frame["type"], 0) + 1

    async def writer(socket_, to: str) -> None:
        number = 0
        while time.monotonic() < stop_at:
            number += 1
            await socket_.send(json.dumps({"type": "direct_message", "to": to, "content": f"soak {number}"}))
            counts["sent"] = counts.get("sent", 0) + 1
            await asyncio.sleep(1 / rate)

    readers = [asyncio.create_task(reader(s)) for s in sockets]
    await asyncio.gather(writer(sockets[0], bob.id), writer(sockets[1], alice.id))
    deadline = time.monotonic() + 30  # let the last messages be acknowledged and arrive
    while time.monotonic() < deadline and counts.get("ack", 0) < counts.get("sent", 0):
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    for socket_ in sockets:
        await socket_.close()
    for task in readers:
        task.cancel()


async def soak(server, pairs, rate: float, seconds: float, warmup: float, samples: list, urls) -> dict:
    counts: dict = {}
    started = time.monotonic()
    stop_at = started + warmup + seconds
    tasks = [asyncio.create_task(pair_traffic(server, a, b, rate, stop_at, counts)) for a, b in pairs]
    await asyncio.sleep(warmup)
    samples.append(("start", await asyncio.to_thread(sample, server, *urls)))
    await asyncio.sleep(max(0.0, stop_at - time.monotonic() - 1))
    samples.append(("end", await asyncio.to_thread(sample, server, *urls)))
    await asyncio.gather(*tasks)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=2, help="messages a second per user")
    parser.add_argument("--warmup", type=float, default=20, help="seconds before the first sample")
    args = parser.parse_args()

    configured_db = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    with tempfile.TemporaryDirectory() as workdir, scratch_database(configured_db, Path(workdir)) as database_url:
        env = server_env(database_url, redis_url)
        migrate(env)
        server = start_server(env, "uvicorn", Path(workdir) / "server.log")
        try:
            accounts = create_accounts(server.http, args.pairs * 2)
            pairs = list(zip(accounts[::2], accounts[1::2], strict=True))
            samples: list = []
            counts = run(
                soak(server, pairs, args.rate, args.minutes * 60, args.warmup, samples, (database_url, redis_url))
            )
        finally:
            server.stop()

    print(
        f"soak: {args.pairs} pairs, {args.rate:g} msg/s per user, {args.minutes:g} min after {args.warmup:g} s warm-up"
    )
    print(
        f"database: {'PostgreSQL' if is_postgres(configured_db) else 'SQLite'}, channel layer: "
        f"{'Redis' if redis_url else 'in-memory'}, server: manage.py serve (uvicorn)"
    )
    print(
        f"messages sent {counts.get('sent', 0)}, acknowledged {counts.get('ack', 0)}, "
        f"received {counts.get('direct_message', 0) // 2} (each reaches both users' sockets)"
    )
    print(f"errors: {counts.get('error', 0)}, unacknowledged: {counts.get('sent', 0) - counts.get('ack', 0)}")
    (_, start), (_, end) = samples
    print(f"{'resource':<16}{'start':>12}{'end':>12}{'change':>12}")
    for key in start:
        change = end[key] - start[key]
        print(f"{key:<16}{start[key]:>12.1f}{end[key]:>12.1f}{change:>+12.1f}")


if __name__ == "__main__":
    main()
