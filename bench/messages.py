"""Direct-message throughput and latency, with the bare relay as the ceiling.

    .venv/bin/python -m bench.messages --pairs 20 --rates 100,200,400,800,1600,3200 --seconds 10

For each target it starts the server the way production runs it on a fresh
database (PostgreSQL when DATABASE_URL points at one, else SQLite; with
REDIS_URL also a two-process run), opens a socket per user, and each user
sends to its partner on an open-loop schedule (at the offered rate whatever
the replies). Each target is swept over the offered rates, lowest first,
up to the first rate it does not keep up with (a message not delivered, or
under 95 % of the offered rate delivered).

Printed per run: messages persisted (acknowledged) and delivered per second,
delivery latency p50/p99/max (send to receipt on the partner's socket), sent,
stored (counted in the database) and lost = sent minus delivered. Then each
target's capacity: the highest delivered rate with delivery p99 within
``P99_BUDGET_MS``, and the highest it kept up with at any latency. Rate
limits are raised for the run.

The ceiling runs in the same invocation: ``bench.relay`` under uvicorn, with
one INSERT per message through psycopg's async pool (PostgreSQL), and without
storage. Every figure is also printed as a ratio to the ceiling: the persisted
relay on PostgreSQL, the relay without storage on SQLite (there is no SQLite
relay).
"""

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    Account,
    create_accounts,
    describe_gc_pauses,
    diff,
    gc_pauses,
    is_postgres,
    migrate,
    open_socket,
    percentile,
    run,
    scratch_database,
    server_env,
    server_metrics,
    start_server,
    uvicorn_app,
)

P99_BUDGET_MS = 50.0
CHAT_ONE = "chat uvicorn, 1 process"
CHAT_ONE_REDIS = "chat uvicorn, 1 process + Redis"
CHAT_TWO_REDIS = "chat uvicorn, 2 processes + Redis"
DRAIN_SECONDS = 20.0
WARMUP_SECONDS = 3.0
SETTLE_SECONDS = 2.0


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
    # Read from the servers' /metrics over the run: CPU seconds of the
    # process(es), and of each database call (name -> (calls, CPU seconds)).
    server_cpu: float | None = None
    db_calls: dict[str, tuple[float, float]] = field(default_factory=dict)
    gc_pauses: dict[str, tuple[float, float]] = field(default_factory=dict)  # generation -> (count, seconds)

    @property
    def persisted_rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0

    @property
    def delivered_rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    @property
    def lost(self) -> int:
        return self.sent - self.delivered

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 0.99) * 1000

    @property
    def kept_up(self) -> bool:
        """Everything offered was stored and delivered, at the rate offered."""
        return (
            self.lost == 0
            and self.delivered_rate >= 0.95 * self.offered
            and (self.stored is None or self.stored == self.acked)
        )

    @property
    def sustained(self) -> bool:
        """Kept up, with delivery p99 within the budget."""
        return self.kept_up and self.p99_ms <= P99_BUDGET_MS


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
    # A socket's start (presence, offline delivery) goes on after its hello:
    # measure messages, not the burst of connections.
    await asyncio.sleep(SETTLE_SECONDS)
    begin = time.perf_counter()
    writers = []
    for index, (alice, bob) in enumerate(pairs):
        writers.append(writer(alice, bob, interval * index / len(users)))
        writers.append(writer(bob, alice, interval * (index + 0.5) / len(users)))
    await asyncio.gather(*writers)
    deadline = time.perf_counter() + DRAIN_SECONDS
    while time.perf_counter() < deadline and (result.acked < result.sent or result.delivered < result.sent):
        await asyncio.sleep(0.05)
    # Throughput over the time it took to persist and deliver everything offered.
    result.seconds = max(seconds, time.perf_counter() - begin - 0.05)
    for socket_ in sockets.values():
        await socket_.close()
    for task in readers:
        task.cancel()


def stored_messages(database_url: str, table: str) -> int:
    if is_postgres(database_url):
        import psycopg

        with psycopg.connect(database_url) as connection:
            return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    import sqlite3

    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


class Target:
    """One server set-up, kept up for its whole sweep: ``measure(rate)`` per offered rate."""

    name: str

    def measure(self, offered: float, seconds: float) -> Result:
        raise NotImplementedError


@dataclass
class ChatTarget(Target):
    name: str
    urls: list[str]
    pairs: list[tuple[Account, Account]]
    database_url: str

    http: list[str] = field(default_factory=list)

    def measure(self, offered: float, seconds: float) -> Result:
        before = stored_messages(self.database_url, "messaging_message")
        samples_before = [server_metrics(base) for base in self.http]
        result = Result(self.name, offered)
        run(drive(self.urls, self.pairs, offered, seconds, result))
        result.stored = stored_messages(self.database_url, "messaging_message") - before
        deltas = [diff(server_metrics(base), old) for base, old in zip(self.http, samples_before, strict=True)]
        result.server_cpu = sum(d.get("process_cpu_seconds_total", 0.0) for d in deltas)
        for delta in deltas:
            for name, value in delta.items():
                if name.startswith('chat_db_calls_total{call="'):
                    call = name.split('"')[1]
                    cpu = delta.get(f'chat_db_call_cpu_seconds_total{{call="{call}"}}', 0.0)
                    calls, seconds_ = result.db_calls.get(call, (0.0, 0.0))
                    result.db_calls[call] = (calls + value, seconds_ + cpu)
            for generation, (count, total) in gc_pauses(delta).items():
                old_count, old_total = result.gc_pauses.get(generation, (0.0, 0.0))
                result.gc_pauses[generation] = (old_count + count, old_total + total)
        return result


@contextmanager
def chat_target(name, kind, processes, configured, redis_url, pairs_count, workdir: Path) -> Iterator[ChatTarget]:
    with scratch_database(configured, workdir) as url:
        env = server_env(url, redis_url)
        migrate(env)
        servers = [start_server(env, kind, workdir / f"{name.replace(' ', '-')}-{i}.log") for i in range(processes)]
        try:
            accounts = create_accounts(servers[0].http, pairs_count * 2)
            pairs = list(zip(accounts[::2], accounts[1::2], strict=True))
            yield ChatTarget(name, [s.ws for s in servers], pairs, url, [s.http for s in servers])
        finally:
            for server in servers:
                server.stop()


@dataclass
class RelayTarget(Target):
    name: str
    url: str
    pairs_count: int
    database_url: str

    def measure(self, offered: float, seconds: float) -> Result:
        before = stored_messages(self.database_url, "relay_message") if self.database_url else 0
        ids = [str(uuid.uuid4()) for _ in range(self.pairs_count * 2)]
        accounts = [Account(pk, pk) for pk in ids]  # the relay takes ?token= as the user id
        pairs = list(zip(accounts[::2], accounts[1::2], strict=True))
        result = Result(self.name, offered)
        run(drive([self.url], pairs, offered, seconds, result))
        if self.database_url:
            result.stored = stored_messages(self.database_url, "relay_message") - before
        return result


@contextmanager
def relay_target(name: str, database_url: str, pairs_count: int) -> Iterator[RelayTarget]:
    env = {**os.environ, "RELAY_DATABASE_URL": database_url}
    with uvicorn_app("bench.relay:app", env, "--ws-per-message-deflate", "false") as port:
        yield RelayTarget(name, f"ws://127.0.0.1:{port}", pairs_count, database_url)


def sweep(target: Target, rates: list[float], seconds: float) -> list[Result]:
    """Lowest rate first, up to and including the first one the target does
    not keep up with, after a warm-up run that is not counted (first
    connections, caches)."""
    target.measure(rates[0], WARMUP_SECONDS)
    results = []
    for rate in rates:
        result = target.measure(rate, seconds)
        results.append(result)
        print(f"  {target.name} at {rate:.0f}/s: {result.delivered_rate:.0f}/s delivered, p99 {result.p99_ms:.1f} ms")
        if not result.kept_up:
            break
    return results


def capacity(results: list[Result]) -> float:
    """The highest delivered rate sustained with p99 within the budget."""
    return max((r.delivered_rate for r in results if r.sustained), default=0.0)


def throughput(results: list[Result]) -> float:
    """The highest delivered rate kept up with, whatever the latency."""
    return max((r.delivered_rate for r in results if r.kept_up), default=0.0)


@dataclass
class Report:
    database: str
    pairs: int
    seconds: float
    ceiling: str
    runs: dict[str, list[Result]]

    def cpu_at(self, name: str, offered: float) -> tuple[float, float] | None:
        """(CPU ms per delivered message in all, of which the database calls'
        own threads) of a target's run at this offered rate, if kept up with."""
        r = next((r for r in self.runs.get(name, []) if r.offered == offered), None)
        if r is None or not r.kept_up or r.server_cpu is None or not r.delivered:
            return None
        db = sum(cpu for _, cpu in r.db_calls.values())
        return r.server_cpu / r.delivered * 1000, db / r.delivered * 1000

    def common_rate(self) -> float | None:
        """The highest offered rate every chat target kept up with: CPU per
        message falls as batches grow with the rate, so targets are compared at one rate."""
        chats = [results for name, results in self.runs.items() if name.startswith("chat")]
        rates = [{r.offered for r in results if r.kept_up} for results in chats]
        common = set.intersection(*rates) if rates else set()
        return max(common) if common else None

    def print_cpu(self) -> None:
        """Where the chat servers' CPU went, per message delivered, at one rate
        for every target (from the servers' /metrics)."""
        rate = self.common_rate()
        if rate is None:
            return
        print(f"\nserver CPU per message delivered, ms, at {rate:.0f}/s (the highest rate every target kept up with)")
        print(f"  {'':<34}{'in all':>8}{'database':>10}{'event loop':>12}   (database: writer and reads)")
        for name in self.runs:
            figures = self.cpu_at(name, rate)
            if figures is None or not name.startswith("chat"):
                continue
            total, db = figures
            print(f"  {name:<34}{total:>8.2f}{db:>10.2f}{total - db:>12.2f}")
        one, redis = self.cpu_at(CHAT_ONE, rate), self.cpu_at(CHAT_ONE_REDIS, rate)
        if one and redis:
            print(
                f"  channel layer and Redis (rate limits, presence, pub/sub): 1 process + Redis minus 1 process"
                f" = {redis[0] - one[0]:.2f} ms"
            )
        for name, results in self.runs.items():
            kept = [r for r in results if r.kept_up and r.gc_pauses]
            if name.startswith("chat") and kept:
                top = max(kept, key=lambda r: r.offered)
                print(f"  {name:<34} collector pauses at {top.offered:.0f}/s: {describe_gc_pauses(top.gc_pauses)}")

    def ceiling_at(self, offered: float) -> Result | None:
        return next((r for r in self.runs.get(self.ceiling, []) if r.offered == offered), None)

    def capacity(self, name: str) -> float:
        return capacity(self.runs.get(name, []))

    def throughput(self, name: str) -> float:
        return throughput(self.runs.get(name, []))

    def print(self) -> None:
        print(
            f"\ndirect messages: {self.database}, {self.pairs} pairs, {self.seconds:g} s per run,"
            f" {os.cpu_count()} cores; ceiling: {self.ceiling}"
        )
        header = (
            f"{'run':<36}{'offered/s':>10}{'persisted/s':>12}{'delivered/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'max ms':>9}{'sent':>7}{'stored':>8}{'lost':>6}{'x ceiling':>10}"
        )
        print(header)
        print("-" * len(header))
        for name, results in self.runs.items():
            for r in results:
                ceiling = self.ceiling_at(r.offered)
                top = ceiling.delivered_rate if ceiling else 0.0
                ratio = r.delivered_rate / top if top else float("nan")
                print(
                    f"{name:<36}{r.offered:>10.0f}{r.persisted_rate:>12.0f}{r.delivered_rate:>12.0f}"
                    f"{percentile(r.latencies, 0.5) * 1000:>9.1f}{r.p99_ms:>9.1f}"
                    f"{(max(r.latencies) if r.latencies else float('nan')) * 1000:>9.1f}{r.sent:>7}"
                    f"{'-' if r.stored is None else r.stored:>8}{r.lost:>6}{ratio:>10.2f}"
                )
        self.print_cpu()
        top, top_throughput = self.capacity(self.ceiling), self.throughput(self.ceiling)
        print(
            f"\n{'highest delivered/s':<36}{'p99 <= ' + format(P99_BUDGET_MS, 'g') + ' ms':>14}{'x ceiling':>11}"
            f"{'any latency':>14}{'x ceiling':>11}   (nothing lost in either)"
        )
        for name, results in self.runs.items():
            value, kept = self.capacity(name), self.throughput(name)
            capped = "   kept up with every rate offered" if all(r.kept_up for r in results) else ""
            print(
                f"  {name:<34}{value:>12.0f}/s{value / top if top else float('nan'):>11.2f}"
                f"{kept:>12.0f}/s{kept / top_throughput if top_throughput else float('nan'):>11.2f}{capped}"
            )


def measure(
    configured: str, redis_url: str, *, pairs: int, rates: list[float], seconds: float, servers: list[str]
) -> Report:
    """Every target on the database ``configured`` names (PostgreSQL URL, or '' for SQLite)."""
    postgres = is_postgres(configured)
    runs: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory() as workdir, ExitStack() as stack:
        workdir = Path(workdir)
        if postgres:
            url = stack.enter_context(scratch_database(configured, workdir))
            with relay_target("bare relay, INSERT per message", url, pairs) as relay:
                runs[relay.name] = sweep(relay, rates, seconds)
        with relay_target("bare relay, no storage", "", pairs) as relay:
            runs[relay.name] = sweep(relay, rates, seconds)
        chat_targets = [(f"chat {kind}, 1 process", kind, 1, "") for kind in servers]
        if redis_url:
            chat_targets.append((CHAT_ONE_REDIS, "uvicorn", 1, redis_url))
            chat_targets.append((CHAT_TWO_REDIS, "uvicorn", 2, redis_url))
        for name, kind, processes, redis in chat_targets:
            with chat_target(name, kind, processes, configured, redis, pairs, workdir) as target:
                runs[name] = sweep(target, rates, seconds)
    ceiling = "bare relay, INSERT per message" if postgres else "bare relay, no storage"
    return Report("PostgreSQL" if postgres else "SQLite", pairs, seconds, ceiling, runs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--rates", default="100,200,400,800,1600,3200", help="offered messages/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--servers", default="uvicorn,daphne", help="uvicorn (manage.py serve) and/or daphne")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args()
    report = measure(
        os.environ.get("DATABASE_URL", ""),
        os.environ.get("REDIS_URL", ""),
        pairs=args.pairs,
        rates=sorted(float(r) for r in args.rates.split(",")),
        seconds=args.seconds,
        servers=args.servers.split(","),
    )
    report.print()


if __name__ == "__main__":
    main()
