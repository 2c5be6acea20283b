"""Every benchmark in one run, then the figures against the targets.

    .venv/bin/python -m bench             # SQLite; with DATABASE_URL (PostgreSQL) and REDIS_URL set,
                                          # also PostgreSQL, two processes + Redis, and the persisted relay
    .venv/bin/python -m bench --quick     # smaller sizes, a few minutes

In order: direct messages on SQLite (one process, in-memory channel layer),
then on PostgreSQL (one process; two processes with Redis), each swept over
the offered rates against the bare relay measured in the same run
(``bench.messages``); idle connections held by one process
(``bench.connections``); REST with a large conversation (``bench.rest``).
Servers start the way production runs them (``manage.py serve``; daphne
too for the message runs) on fresh databases, with rate limits raised.
"""

import argparse
import os
import time

from bench import connections, messages, rest
from bench.common import is_postgres, percentile

FULL = {"pairs": 20, "seconds": 10.0, "rates": "50,100,150,200,300,400,800,1600,3200,4800", "sockets": 10_000}
QUICK = {"pairs": 10, "seconds": 5.0, "rates": "50,100,200,400,800", "sockets": 2_000}


def check(label: str, value: float, target: float, unit: str, *, at_least: bool) -> None:
    met = value >= target if at_least else value <= target
    sign = ">=" if at_least else "<="
    print(f"  {'met    ' if met else 'not met'}  {label:<58}{value:>10.2f} {unit} (target {sign} {target:g})")


def defaults(module, **sizes) -> argparse.Namespace:
    """A benchmark module's own argument defaults, with these sizes."""
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return argparse.Namespace(**{**vars(parser.parse_args([])), **sizes})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a few minutes instead of half an hour")
    parser.add_argument("--skip", default="", help="comma-separated: messages, connections, rest")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    skip = set(filter(None, args.skip.split(",")))
    configured = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    started = time.monotonic()
    reports: dict[str, messages.Report] = {}
    rates = sorted(float(r) for r in sizes["rates"].split(","))

    if "messages" not in skip:
        databases = [""] + ([configured] if is_postgres(configured) else [])
        for database in databases:
            report = messages.measure(
                database,
                redis_url if database else "",
                pairs=sizes["pairs"],
                rates=rates,
                seconds=sizes["seconds"],
                servers=["uvicorn", "daphne"],
            )
            reports[report.database] = report
            report.print()

    held = None
    if "connections" not in skip:
        options = defaults(connections, sockets=sizes["sockets"], users=100, idle=10 if args.quick else 30)
        held = connections.measure(configured, options)
        connections.print_report(held, options)

    served = None
    if "rest" not in skip:
        options = defaults(rest, messages=100_000 if args.quick else 1_000_000, seconds=sizes["seconds"])
        served = rest.measure(configured, options)
        rest.print_report(served, options)

    print(f"\ntargets (this machine, this run; {(time.monotonic() - started) / 60:.0f} min):")
    postgres = reports.get("PostgreSQL")
    if postgres:
        ceiling = postgres.capacity(postgres.ceiling)
        one = postgres.capacity("chat uvicorn, 1 process")
        two = postgres.capacity("chat uvicorn, 2 processes + Redis")
        check(
            "1 process / persisted relay, delivered msg/s at p99 <= 50 ms",
            one / ceiling if ceiling else 0,
            0.5,
            "x",
            at_least=True,
        )
        if "chat uvicorn, 2 processes + Redis" in postgres.runs:
            check("2 processes + Redis / 1 process, at p99 <= 50 ms", two / one if one else 0, 1.5, "x", at_least=True)
        kept_one = postgres.throughput("chat uvicorn, 1 process")
        kept_two = postgres.throughput("chat uvicorn, 2 processes + Redis")
        top = postgres.throughput(postgres.ceiling)
        print(
            f"  (at any latency: 1 process {kept_one:.0f}/s = {kept_one / top if top else 0:.2f} x the relay's", end=""
        )
        print(f" {top:.0f}/s; 2 processes + Redis {kept_two:.0f}/s)")
    if held:
        check(f"idle sockets held ({held['sockets']:,} opened)", held["sockets"], 10_000, "", at_least=True)
        check("memory per idle socket", held["per_socket_bytes"] / 1024, 30, "KB", at_least=False)
    if served:
        by_label = dict(served["rows"] + served["single"])
        check("GET /users/me", by_label["GET /users/me"].rate, 1000, "req/s", at_least=True)
        for label in ("GET /chats/{id}, newest page", "GET /chats/{id}, 90% deep (?before=)"):
            for suffix in ("", ", 1 connection"):
                p99 = percentile(by_label[label + suffix].latencies, 0.99) * 1000
                check(f"{label}{suffix} p99", p99, 10, "ms", at_least=False)


if __name__ == "__main__":
    main()
