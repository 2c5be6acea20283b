"""The suite runs against what the environment configures, never silently less."""

import os

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import caches
from django.db import connection


@pytest.mark.django_db
def test_database_is_the_configured_one():
    expected = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    assert connection.vendor == expected


def test_channel_layer_round_trip_on_the_configured_backend():
    layer = get_channel_layer()
    expected = "RedisPubSubLayer" if os.environ.get("REDIS_URL") else "LocalChannelLayer"
    assert type(layer).__name__ == expected

    async def round_trip():
        channel = await layer.new_channel()
        await layer.group_add("probe", channel)
        await layer.group_send("probe", {"type": "probe.message", "n": 1})
        message = await layer.receive(channel)
        await layer.group_discard("probe", channel)
        return message

    assert async_to_sync(round_trip)() == {"type": "probe.message", "n": 1}


def test_cache_round_trip_on_the_configured_backend():
    expected = "RedisCache" if os.environ.get("REDIS_URL") else "LocMemCache"
    cache = caches["default"]
    assert type(cache).__name__ == expected
    cache.set("probe", 42, 5)
    assert cache.get("probe") == 42
