"""Prometheus metrics: the endpoint is private by default, and the counters move
with the events they name."""

import asyncio
import gc
import socket
import uuid

import pytest
from django.db import transaction
from django.test import AsyncClient
from prometheus_client import REGISTRY

from chatserver.db import db
from messaging.eventlog import events
from messaging.fanout import get_fanout

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

TOKEN = "metrics-scrape-token-0123456789abcdef"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_endpoint_is_404_without_a_configured_token(settings):
    settings.METRICS_TOKEN = ""
    response = await AsyncClient().get("/metrics", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Token {TOKEN}", f"Bearer {TOKEN}x"])
async def test_metrics_endpoint_hides_itself_from_a_wrong_token(settings, header):
    settings.METRICS_TOKEN = TOKEN
    headers = {"Authorization": header} if header else {}
    assert (await AsyncClient().get("/metrics", headers=headers)).status_code == 404


async def test_metrics_endpoint_serves_prometheus_text_with_the_token(settings):
    settings.METRICS_TOKEN = TOKEN
    response = await AsyncClient().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    for name in (
        "chat_websocket_connections",
        "chat_messages_stored_total",
        "chat_delivery_latency_seconds_bucket",
        "chat_rate_limited_total",
        "chat_http_responses_total",
        "chat_channel_layer_drops_total",
    ):
        assert name in body


async def test_http_responses_are_counted_by_status():
    before = sample("chat_http_responses_total", status="404")
    await AsyncClient().get("/no-such-path")
    assert sample("chat_http_responses_total", status="404") == before + 1


async def test_sockets_messages_and_delivery_latency_are_measured(connect, alice, bob):
    sockets = sample("chat_websocket_connections")
    stored = sample("chat_messages_stored_total", kind="direct")
    delivered = sample("chat_delivery_latency_seconds_count")

    _, sender = await connect(alice)
    _, receiver = await connect(bob)
    assert sample("chat_websocket_connections") == sockets + 2

    await sender.send({"type": "direct_message", "to": str(bob.id), "content": "hi"})
    await sender.recv_type("ack")
    await receiver.recv_type("direct_message")
    assert sample("chat_messages_stored_total", kind="direct") == stored + 1
    # Only the receiving device observes a delivery latency, not the sender's echo.
    assert sample("chat_delivery_latency_seconds_count") == delivered + 1
    assert sample("chat_delivery_latency_seconds_sum") >= 0

    await receiver.close()
    assert sample("chat_websocket_connections") == sockets + 1


async def test_refused_frames_are_counted_per_limit(connect, alice, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "ws": (1, 0.001)}
    before = sample("chat_rate_limited_total", limit="ws")
    _, device = await connect(alice)
    await device.send({"type": "ping"})
    await device.recv_type("pong")
    await device.send({"type": "ping"})
    assert (await device.recv_type("error"))["code"] == "rate_limited"
    assert sample("chat_rate_limited_total", limit="ws") == before + 1


async def test_garbage_collector_pauses_are_measured_by_generation():
    count = sample("chat_gc_pause_seconds_count", generation="2")
    total = sample("chat_gc_pause_seconds_sum", generation="2")
    garbage = [[] for _ in range(100_000)]
    for item in garbage:
        item.append(item)  # cycles: only the collector frees them
    del garbage
    gc.collect()
    assert sample("chat_gc_pause_seconds_count", generation="2") >= count + 1  # gc.collect() at least
    assert sample("chat_gc_pause_seconds_sum", generation="2") > total


async def test_a_publish_the_channel_layer_refuses_is_counted_and_logged(settings, caplog):
    """Events committed on a database thread are published from the serving
    loop, after the call has returned: a failure there is still counted."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chatserver.channel_layer.RedisPubSubLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{port}/0", "socket_connect_timeout": 1}]},
        }
    }
    get_fanout().bind(asyncio.get_running_loop())
    errors = sample("chat_channel_layer_errors_total")

    def publish() -> None:
        with transaction.atomic():
            events.send_ephemeral([uuid.uuid4()], {"type": "typing"})

    await db(publish)()
    for _ in range(100):
        if sample("chat_channel_layer_errors_total") > errors:
            break
        await asyncio.sleep(0.05)
    assert sample("chat_channel_layer_errors_total") == errors + 1
    assert "Channel layer publish failed (1 messages dropped)" in caplog.text
