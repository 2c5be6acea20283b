"""Generated frames never crash the consumer: every one gets a frame back
(an answer or an error) and the socket stays open."""

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
frame_types = st.sampled_from(["direct_message", "group_message", "ping", "sync", "read", "typing", "bogus"])
frames = st.one_of(
    st.fixed_dictionaries(
        {"type": frame_types},
        optional={
            "to": json_values | st.uuids().map(str),
            "conversation": json_values | st.uuids().map(str),
            "content": json_values,
            "client_id": json_values,
            "attachments": json_values,
            "since": json_values,
            "up_to": json_values,
            "with": json_values,
            "typing": json_values,
        },
    ).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=60),
)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.lists(frames, min_size=1, max_size=5))
async def test_generated_frames_never_crash_the_consumer(connect, alice, raw, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "ws": (10_000, 10_000), "ws_connect": (10_000, 10_000)}
    _, device = await connect(alice)
    for text in raw:
        await device.ws.send_input({"type": "websocket.receive", "text": text})
        reply = await device.recv()
        assert isinstance(reply, dict) and "type" in reply
        assert reply.get("code") != "server_error", (text, reply)
    await device.send({"type": "ping"})
    assert await device.recv_type("pong")
    await device.close()
