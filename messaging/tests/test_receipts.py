"""messaging.receipts: delivered and read state, receipts to the senders, unread counts."""

import uuid

import pytest
from channels.db import database_sync_to_async

from messaging import services
from messaging.models import UserEvent
from messaging.tests.helpers import dm, undelivered


def send(sender, to, content="hi", **kwargs):
    return services.message_send(sender=sender, to=str(to.id), content=content, **kwargs)


@pytest.mark.django_db
def test_messages_delivered_moves_the_cursor_and_tells_the_sender(alice, bob):
    one = send(alice, bob, "one").message
    send(bob, alice, "mine")
    two = send(alice, bob, "two").message
    services.messages_delivered(bob, [two.id])
    assert undelivered(bob) == []
    frame = UserEvent.objects.filter(user=alice).order_by("-seq").values_list("frame", flat=True).first()
    assert frame["type"] == "message_delivered"
    assert frame["ids"] == [str(one.id), str(two.id)] and frame["id"] == str(two.id)
    assert frame["to"] == str(bob.id)
    # Idempotent: nothing new, no new event.
    count = UserEvent.objects.filter(user=alice).count()
    services.messages_delivered(bob, [one.id, two.id])
    assert UserEvent.objects.filter(user=alice).count() == count


@pytest.mark.django_db
def test_receipts_of_several_users_are_stored_together(alice, bob, make_user, django_assert_max_num_queries):
    carol = make_user("carol")
    to_bob = [send(alice, bob, f"bob {n}").message for n in range(2)]
    to_carol = send(alice, carol, "carol").message
    from_carol = send(carol, bob, "from carol").message
    # A receiver's own message in its list changes nothing; unknown ids are ignored.
    with django_assert_max_num_queries(8):
        services.messages_delivered_many(
            {bob.id: [to_bob[1].id, from_carol.id], carol.id: [to_carol.id, from_carol.id, uuid.uuid4()]}
        )
    assert undelivered(bob) == [] and undelivered(carol) == []
    receipts = [
        (user_id, f["to"], f["ids"])
        for user_id, f in UserEvent.objects.order_by("seq").values_list("user_id", "frame")
        if f["type"] == "message_delivered"
    ]
    assert sorted(r[1:] for r in receipts if r[0] == alice.id) == sorted(
        [(str(bob.id), [str(m.id) for m in to_bob]), (str(carol.id), [str(to_carol.id)])]
    )
    assert [r[1:] for r in receipts if r[0] == carol.id] == [(str(bob.id), [str(from_carol.id)])]


@pytest.mark.django_db
def test_reading_counts_as_delivery(alice, bob):
    message = send(alice, bob, "read before any device got it").message
    services.conversation_mark_read(user=bob, conversation_or_user_id=alice.id)
    kinds = [f["type"] for f in UserEvent.objects.filter(user=alice).order_by("seq").values_list("frame", flat=True)]
    assert kinds == ["direct_message", "message_delivered", "message_read", "conversation_read"]
    delivered = UserEvent.objects.get(user=alice, frame__type="message_delivered").frame
    assert delivered["ids"] == [str(message.id)]


@pytest.mark.django_db
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_between_the_same_users_do_not_deadlock(make_user):
    """Two receivers catching up on messages from the same two senders at once."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import close_old_connections

    senders = [make_user("s1"), make_user("s2")]
    receivers = [make_user("r1"), make_user("r2")]
    batches = {r.id: [] for r in receivers}
    for _ in range(5):
        for sender in senders:
            for receiver in receivers:
                batches[receiver.id].append(send(sender, receiver, "m").message.id)

    def deliver(receiver):
        try:
            for n in range(0, len(batches[receiver.id]), 2):
                services.messages_delivered(receiver, batches[receiver.id][n : n + 2])
                send(receiver, senders[n % 2], "reply")  # and write to the senders' logs meanwhile
        finally:
            close_old_connections()

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(deliver, r) for r in receivers]:
            future.result()
    assert all(undelivered(r) == [] for r in receivers)


@pytest.mark.django_db(transaction=True)
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


@pytest.mark.django_db(transaction=True)
async def test_delivery_receipt_when_the_receiver_comes_online(connect, alice, bob):
    _, alice_phone = await connect(alice)
    await alice_phone.send(dm(bob, "one"))
    await alice_phone.send(dm(bob, "two"))
    await alice_phone.recv_type("ack")
    await alice_phone.recv_type("ack")
    assert "message_delivered" not in [f["type"] for f in await alice_phone.drain()]
    await connect(bob)
    frames = [frame for frame in await alice_phone.drain() if frame["type"] not in ("presence", "presence_change")]
    assert [frame["type"] for frame in frames] == ["message_delivered"]  # one receipt for both
    assert len(frames[0]["ids"]) == 2


@pytest.mark.django_db(transaction=True)
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


@pytest.mark.django_db(transaction=True)
async def test_read_receipts_can_be_turned_off(connect, alice, bob):
    bob.read_receipts = False
    await database_sync_to_async(bob.save)()
    _, alice_phone = await connect(alice)
    _, bob_phone = await connect(bob)
    await alice_phone.send(dm(bob, "m"))
    await alice_phone.recv_type("ack")
    await bob_phone.send({"type": "read", "with": str(alice.id)})
    assert (await bob_phone.recv_type("unread"))["count"] == 0
    frames = await alice_phone.drain()
    assert "message_read" not in [f["type"] for f in frames]


@pytest.mark.django_db(transaction=True)
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
