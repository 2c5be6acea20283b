"""Every benchmark in one run, then the figures against the targets.

    .venv/bin/python -m bench             # SQLite; with DATABASE_URL (PostgreSQL) and REDIS_URL set,
                                          # also PostgreSQL, two processes + Redis, and the persisted relay
    .venv/bin/python -m bench --quick     # smaller sizes, a few minutes

In order: direct messages on SQLite (one process, in-memory channel layer),
then on PostgreSQL (one process; two processes with Redis), each swept over
the offered rates against the bare relay measured in the same run
(``bench.messages``); idle connections held by one process
(``bench.connections``); a reconnect storm against a process already serving
traffic (``bench.reconnect``); REST with a large conversation (``bench.rest``).
Servers start the way production runs them (``manage.py serve``; daphne
too for the message runs) on fresh databases, with rate limits raised.
"""

import argparse
import os
import time

from bench import connections, groups, messages, reconnect, rest
from bench.common import is_postgres, percentile
from bench.messages import CHAT_ONE, CHAT_TWO_REDIS

FULL = {
    "pairs": 20,
    "seconds": 10.0,
    "rates": "100,200,400,600,800,1000,1200,1600,2400,3200,4800,6400",
    "sockets": 10_000,
    "group_sizes": "2,16,128,256",
    "storm": {"established": 2_000, "storm": 10_000, "users": 400},
}
QUICK = {
    "pairs": 10,
    "seconds": 5.0,
    "rates": "100,400,800,1600",
    "sockets": 2_000,
    "group_sizes": "2,16,128",
    "storm": {"established": 500, "storm": 2_000, "users": 150},
}


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
    parser.add_argument("--skip", default="", help="comma-separated: messages, groups, connections, reconnect, rest")
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

    grouped = None
    if "groups" not in skip:
        options = defaults(groups, sizes=sizes["group_sizes"], messages=40 if not args.quick else 20)
        grouped = groups.measure(configured, options)
        groups.print_report(grouped, options)

    held = None
    if "connections" not in skip:
        options = defaults(connections, sockets=sizes["sockets"], users=100, idle=10 if args.quick else 30)
        held = connections.measure(configured, options)
        connections.print_report(held, options)

    storm = None
    if "reconnect" not in skip:
        options = defaults(reconnect, **sizes["storm"])
        storm = reconnect.measure(configured, options)
        reconnect.print_report(storm, options)

    served = None
    if "rest" not in skip:
        options = defaults(rest, messages=100_000 if args.quick else 1_000_000, seconds=sizes["seconds"])
        served = rest.measure(configured, options)
        rest.print_report(served, options)

    print(f"\ntargets (this machine, this run; {(time.monotonic() - started) / 60:.0f} min):")
    postgres, sqlite = reports.get("PostgreSQL"), reports.get("SQLite")
    if postgres:
        check_delivery_engine(postgres)
    if sqlite:
        check("SQLite, 1 process, delivered msg/s at p99 <= 50 ms", sqlite.capacity(CHAT_ONE), 300, "/s", at_least=True)
    if grouped:
        row = next((r for r in grouped["rows"] if r["size"] == 128), None)
        if row:
            check(
                f"128-member group, send to last device p99 ({grouped['processes']} processes)",
                row["p99_ms"],
                100,
                "ms",
                at_least=False,
            )
    if held:
        check(f"idle sockets held ({held['sockets']:,} opened)", held["sockets"], 10_000, "", at_least=True)
        check("memory per idle socket", held["per_socket_bytes"] / 1024, 30, "KB", at_least=False)
    if storm:
        check(
            "reconnect storm: handshakes/s / bare relay's",
            storm["quiet_rate"] / storm["relay_rate"],
            0.5,
            "x",
            at_least=True,
        )
        check(
            "reconnect storm: established sockets' delivery p99 meanwhile", storm["p99_ms"], 100, "ms", at_least=False
        )
        check("reconnect storm: messages lost", storm["lost"], 0, "", at_least=False)
    if served:
        check_rest(served)


def check_delivery_engine(report: messages.Report) -> None:
    """The delivery engine's targets on PostgreSQL, each against this run's own figures."""
    ceiling = report.capacity(report.ceiling)
    one = report.capacity(CHAT_ONE)
    check(
        "1 process / persisted relay, delivered msg/s at p99 <= 50 ms",
        one / ceiling if ceiling else 0,
        0.5,
        "x",
        at_least=True,
    )
    check("1 process, delivered msg/s at p99 <= 50 ms", one, 600, "/s", at_least=True)
    at_100 = next((r for r in report.runs.get(CHAT_ONE, []) if r.offered == 100), None)
    if at_100:
        check("1 process, delivery p99 at 100 msg/s", at_100.p99_ms, 20, "ms", at_least=False)
    daphne = report.capacity("chat daphne, 1 process")
    if "chat daphne, 1 process" in report.runs:
        check("daphne / serve, delivered msg/s at p99 <= 50 ms", daphne / one if one else 0, 0.8, "x", at_least=True)
    if CHAT_TWO_REDIS in report.runs:
        two = report.capacity(CHAT_TWO_REDIS)
        check(
            "2 processes + Redis / 1 process, msg/s at p99 <= 50 ms", two / one if one else 0, 1.3, "x", at_least=True
        )
        rate = report.common_rate()
        single, double = report.cpu_at(CHAT_ONE, rate), report.cpu_at(CHAT_TWO_REDIS, rate)
        if single and double:
            check(
                f"2 processes + Redis / 1 process, server CPU per message at {rate:.0f}/s",
                double[0] / single[0],
                1.2,
                "x",
                at_least=False,
            )
    kept, top = report.throughput(CHAT_ONE), report.throughput(report.ceiling)
    print(f"  (at any latency: 1 process {kept:.0f}/s = {kept / top if top else 0:.2f} x the relay's {top:.0f}/s)")


def check_rest(figures: dict) -> None:
    """REST's targets, each against the bare endpoint measured in the same run."""
    served, single, bare = figures["served"], figures["single"], figures["bare"]
    me = "GET /users/me"
    if bare:
        check(f"{me} served / bare endpoint, req/s", served[me].rate / bare[me].rate, 0.5, "x", at_least=True)
    check(f"{me} p99", percentile(served[me].latencies, 0.99) * 1000, 20, "ms", at_least=False)
    for label in ("GET /chats/{id}, newest page", "GET /chats/{id}, 90% deep (?before=)"):
        check(f"{label}, 1 connection, p99", percentile(single[label].latencies, 0.99) * 1000, 10, "ms", at_least=False)
        if bare:
            check(f"{label} served / bare, req/s", served[label].rate / bare[label].rate, 0.3, "x", at_least=True)
    load, _ = figures["during_logins"]
    check(f"{me} p99 while logins run", percentile(load.latencies, 0.99) * 1000, 20, "ms", at_least=False)


if __name__ == "__main__":
    main()
