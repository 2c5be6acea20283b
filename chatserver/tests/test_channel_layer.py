"""The process-local channel layer: channels' in-memory semantics, without
per-message copies or a walk over every socket on each send."""

import asyncio
import time

import pytest

from chatserver.channel_layer import LocalChannelLayer


async def test_group_send_reaches_every_member_once():
    layer = LocalChannelLayer()
    first, second, outsider = [await layer.new_channel() for _ in range(3)]
    await layer.group_add("user.a", first)
    await layer.group_add("user.a", second)
    await layer.group_send("user.a", {"type": "chat.event", "n": 1})
    assert await layer.receive(first) == {"type": "chat.event", "n": 1}
    assert await layer.receive(second) == {"type": "chat.event", "n": 1}
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(outsider), 0.05)


async def test_a_full_channel_misses_messages_without_failing_the_sender():
    layer = LocalChannelLayer(capacity=2)
    slow, quick = await layer.new_channel(), await layer.new_channel()
    for channel in (slow, quick):
        await layer.group_add("user.a", channel)
    for n in range(3):
        await layer.group_send("user.a", {"type": "chat.event", "n": n})
        assert (await layer.receive(quick))["n"] == n
    assert [(await layer.receive(slow))["n"] for _ in range(2)] == [0, 1]


async def test_expired_messages_still_leave_the_groups(monkeypatch):
    layer = LocalChannelLayer(expiry=1)
    dead, alive = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("user.a", dead)
    await layer.group_add("user.b", alive)
    await layer.group_send("user.a", {"type": "chat.event"})
    wall, monotonic = time.time(), time.monotonic()
    monkeypatch.setattr(time, "time", lambda: wall + 5)  # past the expiry, and the clean interval
    monkeypatch.setattr(time, "monotonic", lambda: monotonic + 5)
    await layer.group_send("user.b", {"type": "chat.event"})
    assert dead not in layer.groups.get("user.a", {})
    assert layer.channels.get(dead) is None
    assert await layer.receive(alive) == {"type": "chat.event"}


async def test_memberships_older_than_the_group_expiry_end(monkeypatch):
    layer = LocalChannelLayer(group_expiry=60)
    old, new = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("user.a", old)
    wall, monotonic = time.time(), time.monotonic()
    monkeypatch.setattr(time, "time", lambda: wall + 45)
    await layer.group_add("user.a", new)
    monkeypatch.setattr(time, "time", lambda: wall + 90)
    monkeypatch.setattr(time, "monotonic", lambda: monotonic + 5)
    await layer.group_send("user.a", {"type": "chat.event"})
    assert list(layer.groups["user.a"]) == [new]
    assert await layer.receive(new) == {"type": "chat.event"}
