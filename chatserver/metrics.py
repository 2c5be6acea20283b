"""Prometheus metrics of one process, served by ``GET /metrics``.

Each process is scraped on its own (not through the load balancer). With
several uvicorn workers in one ``serve`` command, set PROMETHEUS_MULTIPROC_DIR
to an empty directory and the endpoint aggregates them (prometheus_client's
multiprocess mode).
"""

import gc
import hmac
import os
import time

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

OPEN_SOCKETS = Gauge("chat_websocket_connections", "Open WebSocket connections.", multiprocess_mode="livesum")
MESSAGES_STORED = Counter("chat_messages_stored", "Messages stored (acknowledged to their sender).", ["kind"])
DELIVERY_LATENCY = Histogram(
    "chat_delivery_latency_seconds",
    "From a message's commit to its frame being written to a receiving device.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WS_REFUSED = Counter(
    "chat_websocket_refused",
    "WebSocket handshakes refused before any work: busy (too many starting at once, 1013).",
    ["reason"],
)
RATE_LIMITED = Counter("chat_rate_limited", "Requests and frames refused by a rate limit.", ["limit"])
HTTP_RESPONSES = Counter("chat_http_responses", "HTTP responses by status code.", ["status"])
ERRORS = Counter("chat_errors", "Server-side failures: 5xx responses and server_error/unavailable frames.", ["where"])
CHANNEL_LAYER_DROPS = Counter(
    "chat_channel_layer_drops",
    "Logged events the channel layer lost on the way to a socket (filled in from the event log).",
)
CHANNEL_LAYER_ERRORS = Counter("chat_channel_layer_errors", "Channel-layer sends that failed (e.g. Redis down).")
# Where a process's database work goes: divide a call's CPU (or wall) seconds
# by its count for the mean cost of one (e.g. message_send, messages_delivered_many).
DB_CALLS = Counter("chat_db_calls", "Database calls made by WebSocket sockets, by service or selector.", ["call"])
DB_CALL_CPU = Counter("chat_db_call_cpu_seconds", "CPU time of the thread running each call.", ["call"])
DB_CALL_WALL = Counter("chat_db_call_seconds", "Wall-clock time of each call, waits included.", ["call"])
WRITER_BATCH_SIZE = Histogram(
    "chat_writer_batch_size",
    "Jobs (sends, delivery reports) stored by one transaction of the process's writer (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
GC_PAUSES = Histogram(
    "chat_gc_pause_seconds",
    "Pauses of Python's cyclic garbage collector, by generation: the whole process waits.",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


_GC_PAUSES_BY_GENERATION = tuple(GC_PAUSES.labels(str(generation)) for generation in range(3))
_gc_started = [0.0]


def _observe_gc(phase: str, info: dict) -> None:
    """A ``gc.callbacks`` hook: a full collection walks every tracked object of
    the process (each socket holds hundreds), stalling the event loop."""
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        _GC_PAUSES_BY_GENERATION[info["generation"]].observe(time.perf_counter() - _gc_started[0])


# Not in multiprocess mode: there every value shares one non-reentrant lock,
# and a collection can start while this thread holds it (creating a value
# allocates), so observing from the hook could deadlock the process.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR") and _observe_gc not in gc.callbacks:
    gc.callbacks.append(_observe_gc)


# Collectors that read their values from the database (totals kept by other
# processes, such as the push worker's), registered by their apps. Their own
# registry: they are read only when /metrics is served, never by whoever
# walks the process registry (and never from the event loop).
_DATABASE_REGISTRY = CollectorRegistry(auto_describe=False)


def register_database_collector(collector) -> None:
    _DATABASE_REGISTRY.register(collector)


def _registry() -> CollectorRegistry | None:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Not public by default: 404 unless METRICS_TOKEN is set, then only with
    ``Authorization: Bearer <METRICS_TOKEN>`` (Prometheus' ``authorization``)."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Http404  # no hint that the endpoint exists
    registry = _registry()
    body = (generate_latest(registry) if registry else generate_latest()) + generate_latest(_DATABASE_REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
