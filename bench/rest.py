"""REST throughput and latency: ``GET /users/me`` and history pages with a
large conversation, plus what a registration and a login cost.

    .venv/bin/python -m bench.rest --messages 1000000 --seconds 10

Starts ``manage.py serve`` (one process) on a fresh database, fills one
direct conversation with ``--messages`` messages (PostgreSQL: one
``generate_series`` INSERT; SQLite: a recursive CTE), then runs closed-loop
GETs over keep-alive connections and prints requests/s and latency p50/p99/max
for: ``GET /users/me``; ``GET /chats/{id}`` (the newest page); the same
a page deep in history (``?before=`` the timestamp of a message 90% of the
way back, and following a cursor from there). Registration and login are
timed one at a time: their cost is the password hash (bcrypt-SHA256 at
Django's default work factor).
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
from pathlib import Path
from urllib.parse import quote

from bench.common import (
    PASSWORD,
    ROOT,
    create_account,
    http_load,
    is_postgres,
    migrate,
    percentile,
    request,
    run,
    run_alone,
    scratch_database,
    server_env,
    start_server,
    uvicorn_app,
)


def fill_conversation(database_url: str, conversation_id: str, sender: str, receiver: str, count: int) -> None:
    """``count`` messages, one a second, alternating senders, newest now."""
    if is_postgres(database_url):
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(
                """
                INSERT INTO messaging_message (id, conversation_id, sender_id, seq, content, created_at, is_deleted)
                SELECT gen_random_uuid(), %(conversation)s::uuid,
                       CASE WHEN g %% 2 = 0 THEN %(a)s::uuid ELSE %(b)s::uuid END,
                       g + 1, 'message number ' || g, now() - make_interval(secs => %(count)s - g), false
                FROM generate_series(1, %(count)s) AS g
                """,
                {"conversation": conversation_id, "a": sender, "b": receiver, "count": count},
            )
            connection.execute(
                "UPDATE messaging_conversation SET last_seq = %s WHERE id = %s", [count + 1, conversation_id]
            )
            connection.execute("VACUUM ANALYZE messaging_message")
        return
    import sqlite3

    path = database_url.removeprefix("sqlite:///")
    hexes = {name: value.replace("-", "") for name, value in (("c", conversation_id), ("a", sender), ("b", receiver))}
    with sqlite3.connect(path) as connection:
        connection.execute(
            """
            WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :count)
            INSERT INTO messaging_message (id, conversation_id, sender_id, seq, content, created_at, is_deleted)
            SELECT lower(hex(randomblob(16))), :c, CASE WHEN n % 2 = 0 THEN :a ELSE :b END, n + 1,
                   'message number ' || n, strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (:count - n) || ' seconds'), 0
            FROM g
            """,
            {**hexes, "count": count},
        )
        connection.execute("UPDATE messaging_conversation SET last_seq = ? WHERE id = ?", [count + 1, hexes["c"]])
        connection.execute("ANALYZE")


def deep_timestamp(database_url: str, conversation_id: str, offset: int) -> str:
    """created_at of the message ``offset`` places from the newest, as ISO 8601."""
    query = (
        "SELECT created_at FROM messaging_message WHERE conversation_id = %s ORDER BY created_at DESC LIMIT 1 OFFSET %s"
    )
    if is_postgres(database_url):
        import psycopg

        with psycopg.connect(database_url) as connection:
            return connection.execute(query, [conversation_id, offset]).fetchone()[0].isoformat()
    import sqlite3

    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
        value = connection.execute(query.replace("%s", "?"), [conversation_id.replace("-", ""), offset]).fetchone()[0]
        return value.replace(" ", "T") + "+00:00"


def register(base: str) -> None:
    name = f"r{uuid.uuid4().hex[:12]}"
    status, _ = request(
        base, "POST", "/auth/register", {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    )
    assert status == 201, status


def timed(label: str, function, repeat: int) -> tuple[str, float]:
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
    return label, percentile(durations, 0.5)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)


def in_process(env: dict[str, str], token: str, paths: list[str], seconds: float) -> dict[str, list[float]]:
    """Seconds per request through Django's test Client, one at a time (``bench.rest_inprocess``)."""
    output = subprocess.run(
        [sys.executable, "-m", "bench.rest_inprocess", token, str(seconds), *paths],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.splitlines()[-1])


async def during_logins(base: str, token: str, email: str, seconds: float, concurrency: int):
    """``GET /users/me`` over ``concurrency`` connections while one client logs in
    over and over (each login hashes a password): (load, logins done)."""
    stop = time.perf_counter() + seconds
    logins = 0

    def log_in() -> None:
        nonlocal logins
        while time.perf_counter() < stop:
            status, _ = request(base, "POST", "/auth/login", {"email": email, "password": PASSWORD})
            assert status == 200, status
            logins += 1

    load, _ = await asyncio.gather(
        http_load(base, "/users/me", token, concurrency=concurrency, seconds=seconds), asyncio.to_thread(log_in)
    )
    return load, logins


def measure(configured: str, args: argparse.Namespace) -> dict:
    served, bare, single, bare_single = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as workdir, scratch_database(configured, Path(workdir)) as url:
        env = server_env(url)
        migrate(env)
        server = start_server(env, "uvicorn", Path(workdir) / "rest.log")
        try:
            alice, bob = create_account(server.http), create_account(server.http)
            status, opened = request(server.http, "POST", "/conversations", {"user_id": bob.id}, token=alice.token)
            assert status == 201, (status, opened)
            started = time.perf_counter()
            fill_conversation(url, opened["id"], alice.id, bob.id, args.messages)
            fill_seconds = time.perf_counter() - started
            deep = quote(deep_timestamp(url, opened["id"], int(args.messages * 0.9)))
            status, page = request(server.http, "GET", f"/chats/{bob.id}?before={deep}", token=alice.token)
            assert status == 200 and len(page) == 20, (status, len(page))
            targets = {label: path.format(other=bob.id, deep=deep) for label, path in TARGETS}
            for label, path in targets.items():
                served[label] = run(
                    http_load(server.http, path, alice.token, concurrency=args.concurrency, seconds=args.seconds)
                )
            # One connection, one request at a time: the cost of the request itself, without queueing.
            for label, path in targets.items():
                single[label] = run(
                    http_load(server.http, path, alice.token, concurrency=1, seconds=min(args.seconds, 5))
                )
            logins_load, logins = run(
                during_logins(server.http, alice.token, alice.email, args.seconds, args.concurrency)
            )
            costs = [
                timed("POST /auth/register", lambda: register(server.http), 5),
                timed(
                    "POST /auth/login",
                    lambda: request(server.http, "POST", "/auth/login", {"email": alice.email, "password": PASSWORD}),
                    10,
                ),
            ]
        finally:
            server.stop()
        inside = in_process(env, alice.token, list(targets.values()), min(args.seconds, 5))
        if is_postgres(url):
            with uvicorn_app("bench.rest_bare:app", {**env, "BARE_DATABASE_URL": url}) as port:
                base = f"http://127.0.0.1:{port}"
                for label, path in targets.items():
                    bare[label] = run(
                        http_load(base, path, alice.token, concurrency=args.concurrency, seconds=args.seconds)
                    )
                for label, path in targets.items():
                    bare_single[label] = run(
                        http_load(base, path, alice.token, concurrency=1, seconds=min(args.seconds, 5))
                    )
    return {
        "database": "PostgreSQL" if is_postgres(configured) else "SQLite",
        "fill_seconds": fill_seconds,
        "served": served,
        "single": single,
        "bare": bare,
        "bare_single": bare_single,
        "in_process": {label: inside[path] for label, path in targets.items()},
        "during_logins": (logins_load, logins),
        "costs": costs,
    }


TARGETS = [
    ("GET /users/me", "/users/me"),
    ("GET /chats/{id}, newest page", "/chats/{other}"),
    ("GET /chats/{id}, 90% deep (?before=)", "/chats/{other}?before={deep}"),
]


def _row(load) -> str:
    if load is None:
        return f"{'-':>8}{'-':>8}{'-':>8}"
    p50, p99 = (percentile(load.latencies, q) * 1000 for q in (0.5, 0.99))
    return f"{load.rate:>8.0f}{p50:>8.1f}{p99:>8.1f}"


def print_report(figures: dict, args: argparse.Namespace) -> None:
    from django.contrib.auth.hashers import BCryptSHA256PasswordHasher

    print(
        f"\nREST: 1 process (manage.py serve), {figures['database']}, {args.messages:,} messages in the conversation"
        f" (filled in {figures['fill_seconds']:.0f} s), {os.cpu_count()} cores; bare = bench.rest_bare (no framework),"
        " in-process = Django's test Client, no server"
    )
    for title, served, bare in (
        (f"{args.concurrency} keep-alive connections", figures["served"], figures["bare"]),
        ("1 connection", figures["single"], figures["bare_single"]),
    ):
        header = (
            f"{title:<40}{'bare req/s':>10}{'p50':>8}{'p99':>8}{'served req/s':>14}{'p50':>8}{'p99':>8}{'ratio':>7}"
        )
        print(header)
        print("-" * len(header))
        for label, load in served.items():
            ceiling = bare.get(label)
            ratio = f"{load.rate / ceiling.rate:>7.2f}" if ceiling and ceiling.rate else f"{'-':>7}"
            print(f"{label:<40}{_row(ceiling)[:8]:>10}{_row(ceiling)[8:]}{_row(load)[:8]:>14}{_row(load)[8:]}{ratio}")
    for label, times in figures["in_process"].items():
        median = percentile(times, 0.5) * 1000
        print(f"{label + ', in-process':<40}{median:>10.2f} ms each (median), {len(times)} requests")
    load, logins = figures["during_logins"]
    print(
        f"{'GET /users/me while logins run':<40}{_row(load)[:8]:>10}{_row(load)[8:]} ({logins} logins meanwhile,"
        f" {args.concurrency} connections)"
    )
    rounds = BCryptSHA256PasswordHasher.rounds
    for label, seconds in figures["costs"]:
        print(f"{label:<40}{'one at a time':>18}{seconds * 1000:>9.1f} ms each (median; bcrypt, {rounds} rounds)")


def main() -> None:
    run_alone(__doc__, add_arguments, measure, print_report)


if __name__ == "__main__":
    main()
