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
import os
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from bench.common import (
    PASSWORD,
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


def measure(configured: str, args: argparse.Namespace) -> dict:
    rows, single = [], []
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
            targets = [
                ("GET /users/me", "/users/me"),
                ("GET /chats/{id}, newest page", f"/chats/{bob.id}"),
                ("GET /chats/{id}, 90% deep (?before=)", f"/chats/{bob.id}?before={deep}"),
            ]
            for label, path in targets:
                load = http_load(server.http, path, alice.token, concurrency=args.concurrency, seconds=args.seconds)
                rows.append((label, run(load)))
            # One connection, one request at a time: the cost of the request itself, without queueing.
            for label, path in targets:
                load = http_load(server.http, path, alice.token, concurrency=1, seconds=min(args.seconds, 5))
                single.append((f"{label}, 1 connection", run(load)))
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
    return {
        "database": "PostgreSQL" if is_postgres(configured) else "SQLite",
        "fill_seconds": fill_seconds,
        "rows": rows,
        "single": single,
        "costs": costs,
    }


def print_report(figures: dict, args: argparse.Namespace) -> None:
    from django.contrib.auth.hashers import BCryptSHA256PasswordHasher

    print(
        f"\nREST: 1 process (manage.py serve), {figures['database']}, {args.messages:,} messages in the conversation"
        f" (filled in {figures['fill_seconds']:.0f} s), {args.concurrency} keep-alive connections,"
        f" {os.cpu_count()} cores"
    )
    header = f"{'request':<40}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
    print(header)
    print("-" * len(header))
    for label, r in figures["rows"] + figures["single"]:
        print(
            f"{label:<40}{r.rate:>9.0f}{percentile(r.latencies, 0.5) * 1000:>9.1f}"
            f"{percentile(r.latencies, 0.99) * 1000:>9.1f}{max(r.latencies) * 1000:>9.1f}{r.errors:>8}"
        )
    rounds = BCryptSHA256PasswordHasher.rounds
    for label, seconds in figures["costs"]:
        print(f"{label:<40}{'one at a time':>18}{seconds * 1000:>9.1f} ms each (median; bcrypt, {rounds} rounds)")


def main() -> None:
    run_alone(__doc__, add_arguments, measure, print_report)


if __name__ == "__main__":
    main()
