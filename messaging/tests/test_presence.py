"""messaging.presence: who is online, on every process, and typing."""

import itertools

import pytest
from channels.db import database_sync_to_async

from messaging import services
from messaging.conversations.selectors import direct_conversation_between
from messaging.tests.helpers import dm, send_async

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


# ---- presence ----------------------------------------------------------------------


@pytest.fixture
def quick_presence(settings):
    settings.PRESENCE_GRACE_SECONDS = 0.2
    settings.TYPING_TIMEOUT_SECONDS = 0.3


async def talk(alice, bob):
    await send_async(sender=alice, to=str(bob.id), content="we share a conversation")


@pytest.mark.parametrize("close_order", list(itertools.permutations(range(3))))
async def test_presence_with_three_devices_in_every_order(connect, alice, bob, quick_presence, close_order):
    await talk(alice, bob)
    _, watcher = await connect(bob)
    await watcher.drain()
    devices = [(await connect(alice))[1] for _ in range(3)]
    presence = [f for f in await watcher.drain() if f["type"] == "presence"]
    assert presence == [{"type": "presence", "user_id": str(alice.id), "online": True, "last_seen": None, "version": 1}]

    for index in close_order:
        await devices[index].close()
        frames = await watcher.drain(0.5)  # longer than the grace period
        offline = [f for f in frames if f["type"] == "presence"]
        if index == close_order[-1]:
            assert len(offline) == 1 and offline[0]["online"] is False and offline[0]["last_seen"]
            assert offline[0]["version"] == 2
        else:
            assert offline == []  # still online through the other devices


async def test_reconnect_within_grace_does_not_flap(connect, alice, bob, quick_presence):
    await talk(alice, bob)
    _, watcher = await connect(bob)
    _, phone = await connect(alice)
    await watcher.drain()
    await phone.close()
    await connect(alice)  # back within the grace period
    frames = await watcher.drain(0.5)
    assert [f for f in frames if f["type"] == "presence"] == []


async def test_presence_goes_only_to_contacts(connect, alice, bob, make_user, quick_presence):
    stranger = await database_sync_to_async(make_user)("stranger")
    _, watcher = await connect(stranger)
    await connect(alice)
    assert [f for f in await watcher.drain() if f["type"] == "presence"] == []


# ---- typing --------------------------------------------------------------------------


async def test_typing_reaches_the_other_users_devices_and_expires(connect, alice, bob, quick_presence):
    await talk(alice, bob)
    _, alice_phone = await connect(alice)
    _, bob_phone = await connect(bob)
    _, bob_laptop = await connect(bob)
    await bob_phone.drain()
    await bob_laptop.drain()
    conversation = await database_sync_to_async(direct_conversation_between)(alice.id, bob.id)
    await alice_phone.send({"type": "typing", "to": str(bob.id)})
    for device in (bob_phone, bob_laptop):
        assert await device.recv_type("typing") == {
            "type": "typing",
            "from": str(alice.id),
            "conversation": str(conversation.id),
            "typing": True,
        }
    # Nothing more from alice: it stops on the server by itself.
    stop = await bob_phone.recv_type("typing", timeout=2)
    assert stop["typing"] is False


async def test_typing_stops_on_send_and_on_disconnect(connect, alice, bob, quick_presence, settings):
    settings.TYPING_TIMEOUT_SECONDS = 30
    await talk(alice, bob)
    _, alice_phone = await connect(alice)
    _, bob_phone = await connect(bob)
    await bob_phone.drain()
    await alice_phone.send({"type": "typing", "to": str(bob.id)})
    assert (await bob_phone.recv_type("typing"))["typing"] is True
    await alice_phone.send(dm(bob, "done typing"))
    assert (await bob_phone.recv_type("typing"))["typing"] is False

    await alice_phone.send({"type": "typing", "to": str(bob.id)})
    assert (await bob_phone.recv_type("typing"))["typing"] is True
    await alice_phone.close()
    assert (await bob_phone.recv_type("typing"))["typing"] is False


async def test_typing_needs_a_conversation(connect, alice, bob):
    _, device = await connect(alice)
    await device.send({"type": "typing", "to": str(bob.id)})
    assert (await device.recv())["code"] == "recipient_not_found"
    await device.send({"type": "typing", "to": str(bob.id), "typing": "yes"})
    assert (await device.recv())["code"] == "invalid"


async def test_a_dead_process_does_not_leave_a_user_online(connect, alice, bob, clock, quick_presence):
    """Sockets registered by a process that died expire; the sweeper settles the user."""
    from messaging.presence import registry as presence

    await talk(alice, bob)
    _, watcher = await connect(bob)
    # From here on, a registry on the fake clock (bob's own socket is not in it).
    presence.set_presence(presence.build_presence(prefix=f"test:{alice.id.hex}", clock=clock))
    await database_sync_to_async(services.presence_connected)(alice, "socket-on-a-process-that-died")
    assert (await watcher.recv_type("presence"))["online"] is True

    assert await database_sync_to_async(services.presence_sweep)() == 0  # still registered
    clock.advance(presence.SOCKET_TTL_SECONDS + 1)  # never refreshed, never disconnected
    assert await database_sync_to_async(services.presence_sweep)() == 1
    offline = await watcher.recv_type("presence")
    assert offline["user_id"] == str(alice.id) and offline["online"] is False and offline["version"] == 2
