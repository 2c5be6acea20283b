"""The connect path in bursts: work per burst of handshakes, not per socket,
and a process that refuses what it cannot take in yet (reconnect storms)."""

import asyncio
import itertools

import pytest
from channels.db import database_sync_to_async
from prometheus_client import REGISTRY

from chatserver.websocket import CLOSE_TRY_AGAIN_LATER
from messaging import services
from messaging.services import message_send

pytestmark = pytest.mark.django_db(transaction=True)


def db_calls(name: str) -> float:
    return REGISTRY.get_sample_value("chat_db_calls_total", {"call": name}) or 0.0


@pytest.fixture
def twenty_users(make_user):
    return [make_user() for _ in range(20)]


async def test_a_burst_of_handshakes_reads_users_and_logs_in_one_call_each(connect, twenty_users):
    users = twenty_users
    before = {name: db_calls(name) for name in ("users_get_active", "sockets_start", "user_events_after")}
    results = await asyncio.gather(*(connect(user) for user in users))
    assert all(connected for connected, _ in results)
    assert db_calls("users_get_active") - before["users_get_active"] <= 2  # one per loop turn the burst spans
    assert db_calls("sockets_start") - before["sockets_start"] <= 2
    assert db_calls("user_events_after") == before["user_events_after"]  # nothing to replay, nothing read


def test_starting_sockets_is_three_queries_whatever_their_number(make_user, django_assert_max_num_queries):
    users = [make_user() for _ in range(10)]
    for sender, receiver in itertools.pairwise(users):
        message_send(sender=sender, to=str(receiver.id), content="hi")
    with django_assert_max_num_queries(3):  # log states; memberships and co-members (presence, online_users)
        started = services.sockets_start([(user, f"channel-{n}") for n, user in enumerate(users)])
    assert [start.state.head for start in started[1:-1]] == [2] * 8  # a message sent and one received
    # Each is told which contacts are online: here its two neighbours, started in the same burst.
    assert [set(start.online_contacts) for start in started[1:-1]] == [
        {before.id, after.id} for before, after in zip(users, users[2:], strict=False)
    ]


async def test_a_reconnect_with_fifty_events_to_replay_is_two_queries(connect, alice, bob, token_for):
    _, first = await connect(bob)
    await first.close()
    for n in range(50):
        await database_sync_to_async(message_send)(sender=alice, to=str(bob.id), content=f"m{n}")
    before = db_calls("sockets_start"), db_calls("user_events_after")
    _, device = await connect(path=f"/ws?token={token_for(bob)}&since=0")
    frames = await device.drain()
    assert [f["content"] for f in frames if f["type"] == "direct_message"] == [f"m{n}" for n in range(50)]
    assert frames[-1]["type"] == "synced"
    assert (db_calls("sockets_start") - before[0], db_calls("user_events_after") - before[1]) == (1, 1)


async def test_a_busy_process_refuses_at_once_with_1013_and_a_jittered_retry(connect, alice, settings):
    settings.WS_ADMISSION_MAX_STARTING = 0
    connected, device = await connect(alice)
    assert not connected
    assert (device.refusal["code"], device.close_code) == ("server_busy", CLOSE_TRY_AGAIN_LATER)
    assert 1.0 <= device.refusal["retry_after"] <= 4.0
    settings.WS_ADMISSION_MAX_STARTING = 1
    assert (await connect(alice))[0]  # a started socket no longer counts
    assert (await connect(alice))[0]
