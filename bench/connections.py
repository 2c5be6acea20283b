"""Idle WebSocket connections held by one process, and memory per connection.

    .venv/bin/python -m bench.connections --sockets 10000

Starts ``manage.py serve`` (one process, in-memory channel layer; PostgreSQL
when DATABASE_URL points at one), opens ``--sockets`` authenticated sockets
spread over ``--users`` users (several devices each), and reads the server's
resident memory (VmRSS) after a warm-up of ``--warmup`` sockets and again
with every socket open and idle. Memory per connection is the growth divided
by the sockets added. It then checks the process still serves: a message
between idle users arrives (``--messages`` of them, one pair after another,
median and max printed), with the garbage collector's pauses meanwhile
(read from the server's ``/metrics``): a full collection walks every object
of the process and stops it for as long. The server's CPU time while idle is
read over ``--idle`` seconds (periodic presence refreshes and catch-ups).
"""

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import (
    create_accounts,
    describe_gc_pauses,
    diff,
    gc_pauses,
    is_postgres,
    migrate,
    open_socket,
    percentile,
    run,
    run_alone,
    scratch_database,
    server_env,
    server_metrics,
    start_server,
)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_message(sender, receiver, receiver_id: str) -> float:
    """Milliseconds from sending a direct message to its arrival on the receiver's socket."""
    client_id = uuid.uuid4().hex
    started = time.perf_counter()
    await sender.send(
        json.dumps({"type": "direct_message", "to": receiver_id, "content": "still there?", "client_id": client_id})
    )
    while True:
        frame = json.loads(await asyncio.wait_for(receiver.recv(), 30))
        if frame.get("type") == "direct_message" and frame.get("client_id") == client_id:
            return (time.perf_counter() - started) * 1000


async def hold(server, accounts, args: argparse.Namespace) -> dict:
    sockets: dict[int, object] = {}  # socket number -> socket of accounts[number % len(accounts)]
    figures: dict = {}

    async def open_many(count: int) -> None:
        queue = list(range(len(sockets), len(sockets) + count))

        async def worker() -> None:
            while queue:
                index = queue.pop()
                account = accounts[index % len(accounts)]
                sockets[index] = await open_socket(server.ws, account.token)

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))

    await open_many(args.warmup)
    await asyncio.sleep(2)
    figures["rss_warm"] = server.rss_bytes()
    started = time.perf_counter()
    await open_many(args.sockets - args.warmup)
    figures["open_seconds"] = time.perf_counter() - started
    await asyncio.sleep(5)  # let offline delivery and presence settle
    figures["rss_full"] = server.rss_bytes()
    figures["sockets"] = len(sockets)
    cpu_before = cpu_seconds(server.process.pid)
    await asyncio.sleep(args.idle)
    figures["idle_cpu"] = (cpu_seconds(server.process.pid) - cpu_before) / args.idle
    figures["rss_idle"] = server.rss_bytes()

    # Still serving: messages between pairs of idle users, one at a time, on
    # the users' first devices (each user has several devices, all get it).
    figures["message_ms"] = []
    before = server_metrics(server.http)
    for number in range(args.messages):
        a, b = (2 * number) % len(accounts), (2 * number + 1) % len(accounts)
        figures["message_ms"].append(await one_message(sockets[a], sockets[b], accounts[b].id))
        await asyncio.sleep(args.message_gap)
    figures["gc_pauses"] = gc_pauses(diff(server_metrics(server.http), before))
    await asyncio.gather(*(s.close() for s in sockets.values()), return_exceptions=True)
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--idle", type=float, default=30, help="seconds to measure idle CPU over")
    parser.add_argument("--concurrency", type=int, default=32, help="handshakes in flight")
    parser.add_argument("--messages", type=int, default=20, help="messages between idle users, one at a time")
    parser.add_argument("--message-gap", type=float, default=0.5, help="seconds between those messages")


def measure(configured: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as workdir, scratch_database(configured, Path(workdir)) as url:
        env = server_env(url)
        migrate(env)
        server = start_server(env, "uvicorn", Path(workdir) / "connections.log")
        try:
            accounts = create_accounts(server.http, args.users)
            figures = run(hold(server, accounts, args))
        finally:
            server.stop()
    added = figures["sockets"] - args.warmup
    figures["per_socket_bytes"] = (figures["rss_full"] - figures["rss_warm"]) / added
    figures["handshakes_per_second"] = added / figures["open_seconds"]
    figures["database"] = "PostgreSQL" if is_postgres(configured) else "SQLite"
    return figures


def print_report(figures: dict, args: argparse.Namespace) -> None:
    print(
        f"\nidle connections: 1 process (manage.py serve), {figures['database']}, in-memory channel layer,"
        f" {args.users} users, {os.cpu_count()} cores"
    )
    print(f"{'sockets open':<44}{figures['sockets']:>12,}")
    print(f"{'handshakes/s while opening':<44}{figures['handshakes_per_second']:>12.0f}")
    print(f"{'RSS after warm-up (' + str(args.warmup) + ' sockets)':<44}{figures['rss_warm'] / 2**20:>10.1f} MB")
    print(f"{'RSS with all sockets open':<44}{figures['rss_full'] / 2**20:>10.1f} MB")
    print(f"{'RSS after ' + format(args.idle, 'g') + ' s idle':<44}{figures['rss_idle'] / 2**20:>10.1f} MB")
    print(f"{'memory per connection':<44}{figures['per_socket_bytes'] / 1024:>10.1f} KB")
    print(f"{'server CPU while idle':<44}{figures['idle_cpu'] * 100:>10.1f} % of a core")
    times = sorted(figures["message_ms"])
    print(
        f"{'a message between two idle users':<44}{percentile(times, 0.5):>10.1f} ms median,"
        f" {times[-1]:.1f} ms max of {len(times)}"
    )
    print(f"{'  garbage collector pauses meanwhile':<44}  {describe_gc_pauses(figures['gc_pauses'])}")


def main() -> None:
    run_alone(__doc__, add_arguments, measure, print_report)


if __name__ == "__main__":
    main()
