"""Beyond the seed, over WebSocket: event seq and resume, receipts, presence, typing."""

import asyncio
import itertools
import json

import pytest
from channels.db import database_sync_to_async
from prometheus_client import REGISTRY

from messaging import services
from messaging.conversations.selectors import direct_conversation_between
from messaging.models import EventStream, Message, UserEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

send = database_sync_to_async(services.message_send)


def dm(to, content="hi", **extra):
    return {"type": "direct_message", "to": str(to.id), "content": content, **extra}


async def frames_until_silent(device, timeout=0.3) -> list[dict]:
    frames = []
    while not await device.ws.receive_nothing(timeout=timeout):
        frames.append(await device.recv())
    return frames


# ---- seq and resume -------------------------------------------------------------


async def test_hello_carries_the_log_head_and_events_count_up(connect, alice, bob):
    _, phone = await connect(alice)
    assert phone.hello == {"type": "hello", "user_id": str(alice.id), "seq": 0, "head": 0}
    await phone.send(dm(bob, "one"))
    await phone.send(dm(bob, "two"))
    seqs = [(await phone.recv_type("direct_message"))["seq"] for _ in range(2)]
    assert seqs == [1, 2]
    await wait_for_delivered(alice, 2)
    _, laptop = await connect(alice)
    # The phone was sent everything: the laptop starts at the head, with nothing to replay.
    assert (laptop.hello["seq"], laptop.hello["head"]) == (2, 2)
    assert await laptop.drain() == []


async def wait_for_delivered(user, seq: int) -> None:
    """Delivery reports are stored by the writer shortly after the frames go out."""
    from messaging.eventlog.selectors import event_stream_state

    for _ in range(100):
        if (await database_sync_to_async(event_stream_state)(user.id)).delivered >= seq:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"delivered cursor of {user} never reached {seq}")


async def test_resume_after_a_cut_gets_everything_in_order_exactly_once(connect, alice, bob, token_for):
    _, bob_phone = await connect(bob)
    first = (await send(sender=alice, to=str(bob.id), content="before the cut")).message
    seen = await bob_phone.recv_type("direct_message")
    await bob_phone.close()  # the network drops

    second = (await send(sender=alice, to=str(bob.id), content="while away")).message
    await database_sync_to_async(services.message_edit)(user=alice, message_id=first.id, content="edited away")
    await database_sync_to_async(services.message_delete)(user=alice, message_id=second.id)
    third = (await send(sender=bob, to=str(alice.id), content="from my other device")).message

    _, bob_phone = await connect(path=f"/ws?token={token_for(bob)}&since={seen['seq']}")
    frames = await frames_until_silent(bob_phone)
    assert [(f["type"], f.get("id")) for f in frames] == [
        ("direct_message", str(second.id)),
        ("message_edited", str(first.id)),
        ("message_deleted", str(second.id)),
        ("direct_message", str(third.id)),
        ("synced", None),
    ]
    # Deleted while bob was away: its frame comes blanked and marked, never with its content.
    assert (frames[0]["content"], frames[0]["deleted"]) == ("", True)
    seqs = [f["seq"] for f in frames[:-1]]
    assert seqs == list(range(seen["seq"] + 1, seen["seq"] + 5))  # in order, no gap, nothing twice
    assert frames[-1]["seq"] == seqs[-1]
    # The state the device now holds is the database's.
    assert await Message.objects.filter(is_deleted=False, conversation_id=first.conversation_id).acount() == 2


async def test_resume_from_zero_replays_the_whole_log(connect, alice, bob, token_for):
    for n in range(3):
        await send(sender=alice, to=str(bob.id), content=f"m{n}")
    _, device = await connect(path=f"/ws?token={token_for(bob)}&since=0")
    frames = await frames_until_silent(device)
    assert [f.get("content") for f in frames if f["type"] == "direct_message"] == ["m0", "m1", "m2"]
    assert frames[-1] == {"type": "synced", "seq": 3}


async def test_sync_frame(connect, alice, bob):
    _, device = await connect(bob)
    await send(sender=alice, to=str(bob.id), content="one")
    await device.recv_type("direct_message")
    await device.send({"type": "sync", "since": 0})
    frames = await frames_until_silent(device)
    assert [f["type"] for f in frames] == ["direct_message", "synced"]
    await device.send({"type": "sync", "since": "soon"})
    assert (await device.recv())["code"] == "invalid"


async def test_resume_too_far_back_or_ahead_is_resync_required(connect, alice, bob, token_for):
    for n in range(3):
        await send(sender=alice, to=str(bob.id), content=f"m{n}")
    await database_sync_to_async(EventStream.objects.filter(user=bob).update)(pruned_through=2)
    await database_sync_to_async(UserEvent.objects.filter(user=bob, seq__lte=2).delete)()

    _, behind = await connect(path=f"/ws?token={token_for(bob)}&since=1")
    assert await behind.recv() == {
        "type": "resync_required",
        "seq": 3,
        "oldest_seq": 3,
        "detail": "Fetch state over REST, then resume from seq.",
    }
    _, ahead = await connect(path=f"/ws?token={token_for(bob)}&since=99")
    assert (await ahead.recv())["type"] == "resync_required"
    _, fine = await connect(path=f"/ws?token={token_for(bob)}&since=2")
    assert [f["type"] for f in await frames_until_silent(fine)] == ["direct_message", "synced"]


def log_without_sending(user, count: int) -> None:
    """Write the user's next event into the log without sending it: what a
    dropped channel-layer message looks like."""
    stream, _ = EventStream.objects.get_or_create(user=user)
    stream.last_seq += 1
    stream.save()
    UserEvent.objects.create(
        user=user,
        seq=stream.last_seq,
        frame={"type": "unread", "seq": stream.last_seq, "conversation": None, "with": None, "count": count},
    )


async def test_a_lost_live_event_is_filled_in_from_the_log(connect, alice, bob):
    """Write bob's next event into the log without sending it (what a dropped
    channel-layer message looks like), then a live one: the device gets both, in order."""
    _, device = await connect(bob)

    drops = REGISTRY.get_sample_value("chat_channel_layer_drops_total") or 0
    await database_sync_to_async(log_without_sending)(bob, count=7)
    await send(sender=alice, to=str(bob.id), content="live")
    lost, live = await device.recv(), await device.recv()
    assert (lost["type"], lost["count"]) == ("unread", 7)
    assert live["type"] == "direct_message" and live["seq"] == lost["seq"] + 1
    assert REGISTRY.get_sample_value("chat_channel_layer_drops_total") == drops + 1


async def test_a_lost_event_with_nothing_after_it_is_caught_up(connect, alice, bob, settings):
    """No later event reveals the gap: the periodic check against the log does."""
    settings.WS_CATCH_UP_SECONDS = 0.2
    _, device = await connect(bob)

    await database_sync_to_async(log_without_sending)(bob, count=3)
    lost = await device.recv(timeout=3)
    assert (lost["type"], lost["count"]) == ("unread", 3)
    await device.assert_silent(0.5)  # sent once, not on every check


# ---- delivery and read receipts --------------------------------------------------------


async def test_delivery_receipt_when_the_receiver_is_online(connect, alice, bob):
    _, alice_phone = await connect(alice)
    _, alice_laptop = await connect(alice)
    _, bob_phone = await connect(bob)
    await connect(bob)
    await alice_phone.send(dm(bob, "hi"))
    message_id = (await alice_phone.recv_type("ack"))["id"]
    for device in (alice_phone, alice_laptop):
        receipts = [frame for frame in await device.drain() if frame["type"] == "message_delivered"]
        assert len(receipts) == 1  # once, though the receiver has two devices
        assert receipts[0]["id"] == message_id and receipts[0]["ids"] == [message_id]
        assert receipts[0]["to"] == str(bob.id) and receipts[0]["delivered_at"]
    assert [frame["type"] for frame in await bob_phone.drain()] == ["direct_message"]


async def test_delivery_receipt_when_the_receiver_comes_online(connect, alice, bob):
    _, alice_phone = await connect(alice)
    await alice_phone.send(dm(bob, "one"))
    await alice_phone.send(dm(bob, "two"))
    await alice_phone.recv_type("ack")
    await alice_phone.recv_type("ack")
    assert "message_delivered" not in [f["type"] for f in await frames_until_silent(alice_phone)]
    await connect(bob)
    frames = [frame for frame in await alice_phone.drain() if frame["type"] not in ("presence", "presence_change")]
    assert [frame["type"] for frame in frames] == ["message_delivered"]  # one receipt for both
    assert len(frames[0]["ids"]) == 2


async def test_read_receipts_and_unread_counts(connect, alice, bob):
    _, alice_phone = await connect(alice)
    _, bob_phone = await connect(bob)
    _, bob_laptop = await connect(bob)
    for n in range(3):
        await alice_phone.send(dm(bob, f"m{n}"))
    ids = [(await alice_phone.recv_type("ack"))["id"] for _ in range(3)]

    await bob_phone.send({"type": "read", "with": str(alice.id), "up_to": ids[1]})
    read = await alice_phone.recv_type("message_read")
    assert (read["id"], read["reader"]) == (ids[1], str(bob.id)) and read["read_at"]
    for device in (bob_phone, bob_laptop):
        assert (await device.recv_type("unread"))["count"] == 1
    await bob_laptop.send({"type": "read", "with": str(alice.id)})
    assert (await alice_phone.recv_type("message_read"))["id"] == ids[2]
    assert (await bob_phone.recv_type("unread"))["count"] == 0
    # Reading again moves nothing and tells nobody.
    for device in (bob_phone, bob_laptop, alice_phone):
        await device.drain()
    await bob_phone.send({"type": "read", "with": str(alice.id)})
    assert await alice_phone.drain() == []
    assert await bob_laptop.drain_types() == []


async def test_read_receipts_can_be_turned_off(connect, alice, bob):
    bob.read_receipts = False
    await database_sync_to_async(bob.save)()
    _, alice_phone = await connect(alice)
    _, bob_phone = await connect(bob)
    await alice_phone.send(dm(bob, "m"))
    await alice_phone.recv_type("ack")
    await bob_phone.send({"type": "read", "with": str(alice.id)})
    assert (await bob_phone.recv_type("unread"))["count"] == 0
    frames = await frames_until_silent(alice_phone)
    assert "message_read" not in [f["type"] for f in frames]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "read"}, "invalid"),
        ({"type": "read", "with": "nope"}, "invalid"),
        ({"type": "read", "with": "00000000-0000-0000-0000-000000000000"}, "conversation_not_found"),
    ],
)
async def test_bad_read_frames(connect, alice, frame, code):
    _, device = await connect(alice)
    await device.send(frame)
    assert (await device.recv())["code"] == code


# ---- presence ----------------------------------------------------------------------


@pytest.fixture
def quick_presence(settings):
    settings.PRESENCE_GRACE_SECONDS = 0.2
    settings.TYPING_TIMEOUT_SECONDS = 0.3


async def talk(alice, bob):
    await send(sender=alice, to=str(bob.id), content="we share a conversation")


@pytest.mark.parametrize("close_order", list(itertools.permutations(range(3))))
async def test_presence_with_three_devices_in_every_order(connect, alice, bob, quick_presence, close_order):
    await talk(alice, bob)
    _, watcher = await connect(bob)
    await frames_until_silent(watcher)
    devices = [(await connect(alice))[1] for _ in range(3)]
    presence = [f for f in await frames_until_silent(watcher) if f["type"] == "presence"]
    assert presence == [{"type": "presence", "user_id": str(alice.id), "online": True, "last_seen": None, "version": 1}]

    for index in close_order:
        await devices[index].close()
        frames = await frames_until_silent(watcher, timeout=0.5)  # longer than the grace period
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
    await frames_until_silent(watcher)
    await phone.close()
    await connect(alice)  # back within the grace period
    frames = await frames_until_silent(watcher, timeout=0.5)
    assert [f for f in frames if f["type"] == "presence"] == []


async def test_presence_goes_only_to_contacts(connect, alice, bob, make_user, quick_presence):
    stranger = await database_sync_to_async(make_user)("stranger")
    _, watcher = await connect(stranger)
    await connect(alice)
    assert [f for f in await frames_until_silent(watcher) if f["type"] == "presence"] == []


# ---- typing --------------------------------------------------------------------------


async def test_typing_reaches_the_other_users_devices_and_expires(connect, alice, bob, quick_presence):
    await talk(alice, bob)
    _, alice_phone = await connect(alice)
    _, bob_phone = await connect(bob)
    _, bob_laptop = await connect(bob)
    await frames_until_silent(bob_phone)
    await frames_until_silent(bob_laptop)
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
    await frames_until_silent(bob_phone)
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


async def test_event_frames_are_json_objects_with_type(connect, alice, bob):
    _, device = await connect(bob)
    await send(sender=alice, to=str(bob.id), content="x")
    frame = await device.recv_type("direct_message")
    assert json.loads(json.dumps(frame)) == frame


# ---- robustness -------------------------------------------------------------------------


@pytest.mark.parametrize("since", ["abc", "-1", "1.5"])
async def test_bad_since_is_an_error_and_the_socket_carries_on(connect, alice, bob, token_for, since):
    await send(sender=alice, to=str(bob.id), content="offline")
    _, device = await connect(path=f"/ws?token={token_for(bob)}&since={since}")
    error = await device.recv()
    assert (error["type"], error["code"], error["field"]) == ("error", "invalid", "since")
    assert (await device.recv_type("direct_message"))["content"] == "offline"  # offline delivery instead
    await device.send({"type": "ping"})
    assert await device.recv() == {"type": "pong"}


async def test_resume_never_shows_deleted_content(connect, alice, bob, token_for):
    secret = (await send(sender=alice, to=str(bob.id), content="oops, my password")).message
    await database_sync_to_async(services.message_delete)(user=alice, message_id=secret.id)
    _, device = await connect(path=f"/ws?token={token_for(bob)}&since=0")
    frames = await frames_until_silent(device)
    assert "oops" not in json.dumps(frames)
    assert [f["type"] for f in frames] == ["direct_message", "message_deleted", "synced"]


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
