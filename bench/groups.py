"""Group messages by group size: latency to the last member's device, and the cost.

    .venv/bin/python -m bench.groups --sizes 2,16,128,256 --messages 40 --rate 4

Starts ``manage.py serve``: two processes sharing Redis when REDIS_URL is
set (PostgreSQL when DATABASE_URL points at one), else one. For each size it
creates a group of that many users, connects every member, alternating
between the processes, and lets the first member send ``--messages``
messages at ``--rate`` a second. Printed per size:

- send to last device: from the sender's send to the frame's arrival on the
  last member's socket (p50, p99, max): what "everyone has it" takes, the
  commit included;
- commit to device (server): the servers' own ``chat_delivery_latency_seconds``
  histogram over the run, p99 (bucket upper bound);
- server CPU per message, and per frame delivered (a message reaches every
  member's device; their delivery receipts come back to the sender), less
  the processes' CPU while idle (measured just before);
- nothing lost: every member's device got every message.
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
    diff,
    is_postgres,
    migrate,
    open_socket,
    percentile,
    request,
    run,
    run_alone,
    scratch_database,
    server_env,
    server_metrics,
    start_server,
)

IDLE_SECONDS = 3.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def histogram_quantile(delta: dict[str, float], name: str, fraction: float) -> float:
    """The upper bound of the bucket holding ``fraction`` of a histogram's observations."""
    total = delta.get(f"{name}_count", 0.0)
    if not total:
        return float("nan")
    for bound in LATENCY_BUCKETS:
        if delta.get(f'{name}_bucket{{le="{bound}"}}', 0.0) >= fraction * total:
            return bound
    return float("inf")


async def one_size(servers, accounts, size: int, messages: int, rate: float) -> dict:
    members = accounts[:size]
    sender = members[0]
    status, group = request(
        servers[0].http,
        "POST",
        "/conversations",
        {"title": f"bench {size}", "members": [m.id for m in members[1:]]},
        token=sender.token,
    )
    assert status == 201, (status, group)
    sockets = [await open_socket(servers[i % len(servers)].ws, m.token) for i, m in enumerate(members)]
    sent_at: dict[str, float] = {}
    arrivals: dict[str, list[float]] = {}
    # Members connected; the group's creation events are on their way: let them pass.
    await asyncio.sleep(1.0)

    async def reader(socket_) -> None:
        async for raw in socket_:
            frame = json.loads(raw)
            if frame["type"] == "group_message" and frame.get("client_id") in sent_at:
                arrivals.setdefault(frame["client_id"], []).append(time.perf_counter())

    readers = [asyncio.create_task(reader(s)) for s in sockets]
    # The processes' CPU while nothing is sent (presence refreshes, metrics),
    # subtracted from the run's: what is left is the messages' own cost.
    idle_before = [server_metrics(s.http) for s in servers]
    await asyncio.sleep(IDLE_SECONDS)
    idle = (
        sum(
            diff(server_metrics(s.http), b).get("process_cpu_seconds_total", 0.0)
            for s, b in zip(servers, idle_before, strict=True)
        )
        / IDLE_SECONDS
    )
    before = [server_metrics(s.http) for s in servers]
    begin = time.perf_counter()
    for number in range(messages):
        delay = begin + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        client_id = uuid.uuid4().hex
        sent_at[client_id] = time.perf_counter()
        frame = {"type": "group_message", "conversation": group["id"], "content": "x" * 64, "client_id": client_id}
        await sockets[0].send(json.dumps(frame))
    deadline = time.perf_counter() + 20
    while time.perf_counter() < deadline and any(len(arrivals.get(c, ())) < size for c in sent_at):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the receipts that follow the last message
    deltas = [diff(server_metrics(s.http), b) for s, b in zip(servers, before, strict=True)]
    elapsed = time.perf_counter() - begin
    for task in readers:
        task.cancel()
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    complete = [max(arrivals[c]) - sent_at[c] for c in sent_at if len(arrivals.get(c, ())) >= size]
    merged: dict[str, float] = {}
    for delta in deltas:
        for name, value in delta.items():
            merged[name] = merged.get(name, 0.0) + value
    cpu = max(0.0, merged.get("process_cpu_seconds_total", 0.0) - idle * elapsed)
    frames = sum(len(v) for v in arrivals.values())
    return {
        "size": size,
        "sent": len(sent_at),
        "complete": len(complete),
        "lost": len(sent_at) * size - frames,
        "p50_ms": percentile(complete, 0.5) * 1000,
        "p99_ms": percentile(complete, 0.99) * 1000,
        "max_ms": max(complete, default=float("nan")) * 1000,
        "server_p99_ms": histogram_quantile(merged, "chat_delivery_latency_seconds", 0.99) * 1000,
        "cpu_per_message_ms": cpu / max(1, len(sent_at)) * 1000,
        "cpu_per_frame_ms": cpu / max(1, frames) * 1000,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="2,16,128,256", help="group sizes, comma-separated")
    parser.add_argument("--messages", type=int, default=40, help="messages per size")
    parser.add_argument("--rate", type=float, default=4, help="messages a second from the sender")


def measure(configured: str, args: argparse.Namespace) -> dict:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    redis_url = os.environ.get("REDIS_URL", "")
    with tempfile.TemporaryDirectory() as workdir, scratch_database(configured, Path(workdir)) as url:
        env = server_env(url, redis_url)
        migrate(env)
        count = 2 if redis_url else 1
        servers = [start_server(env, "uvicorn", Path(workdir) / f"groups-{i}.log") for i in range(count)]
        try:
            accounts = create_accounts(servers[0].http, max(sizes))
            rows = [run(one_size(servers, accounts, size, args.messages, args.rate)) for size in sizes]
        finally:
            for server in servers:
                server.stop()
    return {
        "rows": rows,
        "processes": count,
        "database": "PostgreSQL" if is_postgres(configured) else "SQLite",
        "layer": "Redis" if redis_url else "in-memory",
    }


def print_report(figures: dict, args: argparse.Namespace) -> None:
    print(
        f"\ngroup messages: {figures['processes']} process(es) (manage.py serve), {figures['database']},"
        f" {figures['layer']} channel layer, members alternating between processes,"
        f" {args.messages} messages at {args.rate:g}/s per size, {os.cpu_count()} cores"
    )
    header = (
        f"{'members':>8}{'send->last device p50':>23}{'p99':>9}{'max':>9}{'commit->device p99 (server)':>29}"
        f"{'CPU/message':>13}{'CPU/frame':>11}{'lost':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in figures["rows"]:
        print(
            f"{row['size']:>8}{row['p50_ms']:>20.1f} ms{row['p99_ms']:>6.1f} ms{row['max_ms']:>6.1f} ms"
            f"{'<= ' + format(row['server_p99_ms'], 'g') + ' ms':>29}"
            f"{row['cpu_per_message_ms']:>10.2f} ms{row['cpu_per_frame_ms']:>8.3f} ms{row['lost']:>6}"
        )


def main() -> None:
    run_alone(__doc__, add_arguments, measure, print_report)


if __name__ == "__main__":
    main()
