"""Reconnect storms: handshakes per second, and the established sockets' latency meanwhile.

    .venv/bin/python -m bench.reconnect --established 2000 --storm 10000

A rolling restart or a network blip sends every socket of a process to the
others at once. Measured, against ``manage.py serve`` (PostgreSQL when
DATABASE_URL points at one, Redis when REDIS_URL is set), with the same
client as the ceiling (``bench.relay``, which only accepts and says hello),
each socket opened by a pool of ``--concurrency`` clients:

- handshakes/s for ``--established`` devices with nothing to replay, against
  the relay's in the same run (the ratio is the figure that carries over);
- then, while those sockets carry ``--rate`` messages a second between pairs
  of them (100 users with one device each), ``--storm`` more devices of the
  other users connect at once: the storm's handshakes/s,
  how many the server told to come back later (1013, honoured with the
  ``retry_after`` it sent), and the established sockets' delivery p50/p99/max
  and losses during the storm.
"""

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import websockets

from bench.common import (
    Account,
    create_accounts,
    is_postgres,
    migrate,
    percentile,
    run,
    run_alone,
    scratch_database,
    server_env,
    start_server,
    uvicorn_app,
)

TALKERS = 100  # users with one device each, who send the traffic


async def open_all(url: str, tokens: list[str], concurrency: int) -> tuple[list, float, int]:
    """Open a socket per token, ``concurrency`` handshakes in flight; a socket
    told 1013 (busy) comes back after its ``retry_after``. ([(token, socket)], seconds, refusals)."""
    sockets: list = []
    refusals = 0
    queue = list(tokens)

    async def one(token: str) -> None:
        nonlocal refusals
        while True:
            socket_ = await websockets.connect(f"{url}/ws?token={token}", max_size=2**20, compression=None)
            first = json.loads(await socket_.recv())
            if first["type"] == "hello":
                sockets.append((token, socket_))
                return
            await socket_.close()
            if first.get("code") != "server_busy":
                raise RuntimeError(f"refused: {first}")
            refusals += 1
            await asyncio.sleep(first["retry_after"])

    async def worker() -> None:
        while queue:
            await one(queue.pop())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sockets, time.perf_counter() - started, refusals


async def traffic(sockets: list, ids: list[str], rate: float, stop: asyncio.Event) -> list[float]:
    """Pairs of established sockets send to each other at ``rate`` messages a
    second in all until ``stop``; returns the delivery latencies (lost ones: inf)."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    pairs = list(zip(range(0, len(sockets) - 1, 2), range(1, len(sockets), 2), strict=False))

    async def reader(socket_) -> None:
        async for raw in socket_:
            frame = json.loads(raw)
            if frame["type"] == "direct_message" and frame.get("client_id") in sent:
                latencies.append(time.perf_counter() - sent.pop(frame["client_id"]))

    readers = [asyncio.create_task(reader(sockets[i])) for pair in pairs for i in pair]
    begin, number = time.perf_counter(), 0
    while not stop.is_set():
        delay = begin + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        one, other = pairs[number % len(pairs)]
        if number % 2:
            one, other = other, one
        client_id = uuid.uuid4().hex
        sent[client_id] = time.perf_counter()
        frame = {"type": "direct_message", "to": ids[other], "content": "x" * 64, "client_id": client_id}
        await sockets[one].send(json.dumps(frame))
        number += 1
    await asyncio.sleep(3)  # what is in flight arrives
    for task in readers:
        task.cancel()
    return latencies + [float("inf")] * len(sent)


async def measure_relay(url: str, count: int, concurrency: int) -> float:
    tokens = [str(uuid.uuid4()) for _ in range(count)]
    sockets, seconds, _ = await open_all(url, tokens, concurrency)
    await asyncio.gather(*(s.close() for _, s in sockets), return_exceptions=True)
    return count / seconds


async def measure_chat(url: str, accounts: list[Account], args: argparse.Namespace) -> dict:
    """The first ``TALKERS`` users have one device each and talk; every other
    device belongs to the rest of the users (several devices each)."""
    talkers, others = accounts[:TALKERS], accounts[TALKERS:]
    tokens = [a.token for a in talkers] + [others[n % len(others)].token for n in range(args.established - TALKERS)]
    established, seconds, refused_first = await open_all(url, tokens, args.concurrency)
    figures = {"quiet_rate": args.established / seconds, "quiet_refused": refused_first}
    by_token = dict(established)
    senders = [by_token[a.token] for a in talkers]
    await asyncio.sleep(2)
    stop = asyncio.Event()
    load = asyncio.create_task(traffic(senders, [a.id for a in talkers], args.rate, stop))
    await asyncio.sleep(2)  # traffic before the storm
    storm, storm_seconds, refused = await open_all(
        url, [others[n % len(others)].token for n in range(args.storm)], args.concurrency
    )
    stop.set()
    latencies = await load
    await asyncio.gather(*(s.close() for _, s in established + storm), return_exceptions=True)
    figures.update(
        storm_rate=args.storm / storm_seconds,
        storm_seconds=storm_seconds,
        storm_refused=refused,
        lost=sum(1 for value in latencies if value == float("inf")),
        messages=len(latencies),
        p50_ms=percentile(latencies, 0.5) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        max_ms=max(latencies, default=float("nan")) * 1000,
    )
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--established", type=int, default=2000, help="sockets opened first, then kept")
    parser.add_argument("--storm", type=int, default=10_000, help="sockets opened at once while they talk")
    parser.add_argument("--users", type=int, default=400, help="users the devices belong to (100 of them talk)")
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight")
    parser.add_argument("--rate", type=float, default=100, help="messages a second among established sockets")


def measure(configured: str, args: argparse.Namespace) -> dict:
    redis_url = os.environ.get("REDIS_URL", "")
    with uvicorn_app("bench.relay:app", {**os.environ, "RELAY_DATABASE_URL": ""}) as port:
        relay_rate = run(measure_relay(f"ws://127.0.0.1:{port}", args.established, args.concurrency))
    with tempfile.TemporaryDirectory() as workdir, scratch_database(configured, Path(workdir)) as url:
        env = server_env(url, redis_url)
        migrate(env)
        server = start_server(env, "uvicorn", Path(workdir) / "reconnect.log")
        try:
            accounts = create_accounts(server.http, args.users)
            figures = run(measure_chat(server.ws, accounts, args))
        finally:
            server.stop()
    figures.update(
        relay_rate=relay_rate,
        database="PostgreSQL" if is_postgres(configured) else "SQLite",
        layer="Redis" if redis_url else "in-memory",
    )
    return figures


def print_report(figures: dict, args: argparse.Namespace) -> None:
    print(
        f"\nreconnect storm: 1 process (manage.py serve), {figures['database']}, {figures['layer']} channel layer,"
        f" {args.users} users, {args.concurrency} handshakes in flight, {os.cpu_count()} cores"
    )
    ratio = figures["quiet_rate"] / figures["relay_rate"]
    print(f"{'bare relay, handshakes/s':<52}{figures['relay_rate']:>10.0f}")
    print(
        f"{'chat, ' + format(args.established, ',') + ' devices, nothing to replay':<52}"
        f"{figures['quiet_rate']:>10.0f}/s  ({ratio:.2f} x relay)"
    )
    print(
        f"{'chat, ' + format(args.storm, ',') + ' more while ' + format(args.rate, 'g') + ' msg/s flow':<52}"
        f"{figures['storm_rate']:>10.0f}/s  ({figures['storm_seconds']:.1f} s; told to come back later:"
        f" {figures['storm_refused']})"
    )
    print(
        f"{'established sockets meanwhile: delivery p50 / p99 / max':<52}{figures['p50_ms']:>10.1f}"
        f" / {figures['p99_ms']:.1f} / {figures['max_ms']:.1f} ms, {figures['messages']} messages,"
        f" lost {figures['lost']}"
    )


def main() -> None:
    run_alone(__doc__, add_arguments, measure, print_report)


if __name__ == "__main__":
    main()
