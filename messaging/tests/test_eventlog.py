"""messaging.eventlog: each user's log, resume and catch-up from it, pruning."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from prometheus_client import REGISTRY

from messaging import services
from messaging.eventlog.selectors import event_stream_state
from messaging.models import EventStream, Message, UserEvent
from messaging.tests.helpers import dm, send_async


def send(sender, to, content="hi", **kwargs):
    return services.message_send(sender=sender, to=str(to.id), content=content, **kwargs)


@pytest.mark.django_db
def test_prune_events_command(alice, bob):
    from django.core.management import call_command

    from messaging.models import EventStream, UserEvent

    for n in range(3):
        send(alice, bob, f"m{n}")
    call_command("prune_events", "--days", "1")
    assert UserEvent.objects.filter(user=bob).count() == 3  # all recent
    call_command("prune_events", "--days", "0")
    assert not UserEvent.objects.exists()
    assert EventStream.objects.get(user=bob).pruned_through == 3
    assert event_stream_state(bob.id)[:2] == (3, 3)


async def wait_for_delivered(user, seq: int) -> None:
    """Delivery reports are stored by the writer shortly after the frames go out."""
    from messaging.eventlog.selectors import event_stream_state

    for _ in range(100):
        if (await database_sync_to_async(event_stream_state)(user.id)).delivered >= seq:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"delivered cursor of {user} never reached {seq}")


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


@pytest.mark.django_db(transaction=True)
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


@pytest.mark.django_db(transaction=True)
async def test_resume_after_a_cut_gets_everything_in_order_exactly_once(connect, alice, bob, token_for):
    _, bob_phone = await connect(bob)
    first = (await send_async(sender=alice, to=str(bob.id), content="before the cut")).message
    seen = await bob_phone.recv_type("direct_message")
    await bob_phone.close()  # the network drops

    second = (await send_async(sender=alice, to=str(bob.id), content="while away")).message
    await database_sync_to_async(services.message_edit)(user=alice, message_id=first.id, content="edited away")
    await database_sync_to_async(services.message_delete)(user=alice, message_id=second.id)
    third = (await send_async(sender=bob, to=str(alice.id), content="from my other device")).message

    _, bob_phone = await connect(path=f"/ws?token={token_for(bob)}&since={seen['seq']}")
    frames = await bob_phone.drain()
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


@pytest.mark.django_db(transaction=True)
async def test_resume_from_zero_replays_the_whole_log(connect, alice, bob, token_for):
    for n in range(3):
        await send_async(sender=alice, to=str(bob.id), content=f"m{n}")
    _, device = await connect(path=f"/ws?token={token_for(bob)}&since=0")
    frames = await device.drain()
    assert [f.get("content") for f in frames if f["type"] == "direct_message"] == ["m0", "m1", "m2"]
    assert frames[-1] == {"type": "synced", "seq": 3}


@pytest.mark.django_db(transaction=True)
async def test_sync_frame(connect, alice, bob):
    _, device = await connect(bob)
    await send_async(sender=alice, to=str(bob.id), content="one")
    await device.recv_type("direct_message")
    await device.send({"type": "sync", "since": 0})
    frames = await device.drain()
    assert [f["type"] for f in frames] == ["direct_message", "synced"]
    await device.send({"type": "sync", "since": "soon"})
    assert (await device.recv())["code"] == "invalid"


@pytest.mark.django_db(transaction=True)
async def test_resume_too_far_back_or_ahead_is_resync_required(connect, alice, bob, token_for):
    for n in range(3):
        await send_async(sender=alice, to=str(bob.id), content=f"m{n}")
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
    assert [f["type"] for f in await fine.drain()] == ["direct_message", "synced"]


@pytest.mark.django_db(transaction=True)
async def test_a_lost_live_event_is_filled_in_from_the_log(connect, alice, bob):
    """Write bob's next event into the log without sending it (what a dropped
    channel-layer message looks like), then a live one: the device gets both, in order."""
    _, device = await connect(bob)

    drops = REGISTRY.get_sample_value("chat_channel_layer_drops_total") or 0
    await database_sync_to_async(log_without_sending)(bob, count=7)
    await send_async(sender=alice, to=str(bob.id), content="live")
    lost, live = await device.recv(), await device.recv()
    assert (lost["type"], lost["count"]) == ("unread", 7)
    assert live["type"] == "direct_message" and live["seq"] == lost["seq"] + 1
    assert REGISTRY.get_sample_value("chat_channel_layer_drops_total") == drops + 1


@pytest.mark.django_db(transaction=True)
async def test_a_lost_event_with_nothing_after_it_is_caught_up(connect, alice, bob, settings):
    """No later event reveals the gap: the periodic check against the log does."""
    settings.WS_CATCH_UP_SECONDS = 0.2
    _, device = await connect(bob)

    await database_sync_to_async(log_without_sending)(bob, count=3)
    lost = await device.recv(timeout=3)
    assert (lost["type"], lost["count"]) == ("unread", 3)
    await device.assert_silent(0.5)  # sent once, not on every check


@pytest.mark.django_db(transaction=True)
async def test_event_frames_are_json_objects_with_type(connect, alice, bob):
    _, device = await connect(bob)
    await send_async(sender=alice, to=str(bob.id), content="x")
    frame = await device.recv_type("direct_message")
    assert json.loads(json.dumps(frame)) == frame


@pytest.mark.django_db(transaction=True)
# ---- robustness -------------------------------------------------------------------------


@pytest.mark.parametrize("since", ["abc", "-1", "1.5"])
async def test_bad_since_is_an_error_and_the_socket_carries_on(connect, alice, bob, token_for, since):
    await send_async(sender=alice, to=str(bob.id), content="offline")
    _, device = await connect(path=f"/ws?token={token_for(bob)}&since={since}")
    error = await device.recv()
    assert (error["type"], error["code"], error["field"]) == ("error", "invalid", "since")
    assert (await device.recv_type("direct_message"))["content"] == "offline"  # offline delivery instead
    await device.send({"type": "ping"})
    assert await device.recv() == {"type": "pong"}


@pytest.mark.django_db(transaction=True)
async def test_resume_never_shows_deleted_content(connect, alice, bob, token_for):
    secret = (await send_async(sender=alice, to=str(bob.id), content="oops, my password")).message
    await database_sync_to_async(services.message_delete)(user=alice, message_id=secret.id)
    _, device = await connect(path=f"/ws?token={token_for(bob)}&since=0")
    frames = await device.drain()
    assert "oops" not in json.dumps(frames)
    assert [f["type"] for f in frames] == ["direct_message", "message_deleted", "synced"]


# ---- the log's own statements and batches --------------------------------------


@pytest.mark.django_db
def test_a_batch_gives_each_user_consecutive_seqs_in_one_statement_each(alice, bob, django_assert_num_queries):
    from django.db import transaction

    from messaging.eventlog import events

    frames = [(alice.id, {"type": "pong"}), (bob.id, {"type": "pong"}), (alice.id, {"type": "synced", "seq": 0})]
    with transaction.atomic(), django_assert_num_queries(2), events.collected():  # seqs, then rows
        events.publish(frames[:2])
        events.publish(frames[2:])
    logged = list(UserEvent.objects.order_by("user_id", "seq").values_list("user_id", "seq", "frame"))
    assert [(user, seq, frame["type"]) for user, seq, frame in logged if user == alice.id] == [
        (alice.id, 1, "pong"),
        (alice.id, 2, "synced"),
    ]
    assert [(user, seq) for user, seq, _ in logged if user == bob.id] == [(bob.id, 1)]
    assert all(frame["seq"] == seq for _, seq, frame in logged)  # each logged frame carries its seq


@pytest.mark.django_db
def test_the_delivered_cursor_never_moves_back(alice):
    from django.db import transaction

    from messaging.eventlog.sql import event_streams_advance

    with transaction.atomic():
        assert event_streams_advance({alice.id: 3}, {alice.id: 2}) == {alice.id: 3}
        event_streams_advance({}, {alice.id: 1})  # an older report
    state = event_stream_state(alice.id)
    assert (state.head, state.delivered) == (3, 2)


@pytest.mark.django_db
def test_a_deleted_message_leaves_the_log_of_everyone_who_saw_it(make_user):
    from messaging.eventlog.selectors import user_events_after

    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    group = services.group_create(creator=alice, title="g", members=[bob.id, carol.id])
    said = services.conversation_message_send(sender=alice, conversation=str(group.id), content="secret").message
    services.message_edit(user=alice, message_id=said.id, content="secret, edited")
    kept = services.conversation_message_send(sender=alice, conversation=str(group.id), content="kept").message
    services.group_leave(user=carol, conversation_id=group.id)  # saw it, then left
    services.message_delete(user=alice, message_id=said.id)
    for user in (alice, bob, carol):
        log = user_events_after(user.id, 0)
        about = [f for f in log if f.get("id") == str(said.id)]
        assert [f["type"] for f in about] == ["group_message", "message_edited", "message_deleted"]
        assert all(f.get("content", "") == "" and f.get("deleted", True) for f in about)
        assert "secret" not in json.dumps(log)
        assert any(f.get("content") == "kept" for f in log if f.get("id") == str(kept.id))  # a control
