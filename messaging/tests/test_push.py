"""Push notifications: registration, the relay, the job, and what reaches a
real (local) Web Push service and webhook gateway.

The jobs go through the real queue (django-q2's database broker): the relay
queues them, ``run_jobs`` runs what is queued in this process, as a worker
would. Time is passed to the relay, so nothing sleeps out a grace period.
"""

import asyncio
import threading
import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from messaging import services
from messaging.models import Membership, PushOutbox
from messaging.push import relay
from messaging.push.models import PushCounter, PushDelivery, PushTarget, VapidKey
from messaging.push.outbox import push_outbox_claim, push_outbox_settle, push_outbox_touch
from messaging.push.relay import relay_once
from messaging.push.senders import new_vapid_private_key
from messaging.tests.push_receivers import PushReceiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    receiver = PushReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def carol(make_user):
    return make_user("carol")


def run_jobs() -> int:
    """Run every queued job here, in order, as a queue worker would."""
    ran = 0
    for row in OrmQ.objects.order_by("id"):
        job = SignedPackage.loads(row.payload)
        func = import_string(job["func"]) if isinstance(job["func"], str) else job["func"]
        func(*job["args"], **job["kwargs"])
        row.delete()
        ran += 1
    return ran


def later(seconds: float = 0) -> timezone.datetime:
    """A time past the grace period of messages sent now."""
    return timezone.now() + timedelta(seconds=settings.PUSH_GRACE_SECONDS + 1 + seconds)


def subscribe(client, receiver, name: str) -> tuple[dict, object]:
    subscription = receiver.subscription(name)
    response = client.post(
        "/push/targets", {"kind": "webpush", "name": "Phone", "subscription": subscription.as_json()}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json(), subscription


def hook(client, receiver, name: str) -> dict:
    response = client.post("/push/targets", {"kind": "webhook", "url": receiver.webhook_url(name)}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    receiver.set_secret(name, body["secret"])
    return body


def send(sender, to, text: str):
    return services.message_send(sender=sender, to=str(to.id), content=text).message


def counter(name: str, kind: str, reason: str = "") -> int:
    row = PushCounter.objects.filter(key=f"{name}|{kind}|{reason}").first()
    return row.value if row else 0


# ---- one push per burst, with what it says ------------------------------------------


def test_an_offline_user_gets_one_web_push_per_burst(client_for, alice, bob, receiver):
    subscribe(client_for(bob), receiver, "bob")
    messages = [send(alice, bob, f"message {n}") for n in range(3)]
    assert PushOutbox.objects.count() == 1  # one row for the burst, written with the messages

    assert relay_once(now=timezone.now()) == 0  # still within the grace period
    assert relay_once(now=later()) == 1
    assert run_jobs() == 1
    [push] = receiver.received("/wp/bob")
    delivery = PushDelivery.objects.get()
    assert push.payload == {
        "id": str(delivery.id),
        "type": "messages",
        "conversation": {"id": str(messages[0].conversation_id), "kind": "direct", "title": "alice"},
        "sender": {"id": str(alice.id), "username": "alice"},
        "message_id": str(messages[-1].id),
        "count": 3,
        "excerpt": None,  # hidden unless bob asks for it
        "created_at": messages[-1].created_at.isoformat(),
    }
    assert push.headers["ttl"] == str(settings.WEBPUSH_TTL_SECONDS)
    assert len(push.headers["topic"]) == 32  # one conversation's pushes replace each other at the push service
    assert delivery.status == "sent" and delivery.target.last_success_at is not None
    assert (counter("queued", "webpush"), counter("sent", "webpush")) == (1, 1)
    # Nothing more to say: a later pass sends nothing again.
    assert relay_once(now=later(120)) == 0 and PushOutbox.objects.count() == 0


def test_the_excerpt_only_when_the_user_asks_for_it(client_for, alice, bob, receiver):
    subscribe(client_for(bob), receiver, "bob")
    assert (
        client_for(bob).put("/users/me/update", {"push_show_content": True}, format="json").json()["push_show_content"]
    )
    send(alice, bob, "  see   you at\n8  ")
    relay_once(now=later())
    run_jobs()
    assert receiver.received("/wp/bob")[0].payload["excerpt"] == "see you at 8"


def test_the_sender_and_users_without_targets_get_nothing(client_for, alice, bob, receiver):
    subscribe(client_for(alice), receiver, "alice")
    send(alice, bob, "hello")  # bob has no target; alice's own message is not news to her
    assert relay_once(now=later()) == 0
    assert PushOutbox.objects.count() == 0
    send(bob, alice, "and back")  # the control: a message to alice is
    assert relay_once(now=later()) == 1


@pytest.mark.django_db(transaction=True)
async def test_a_user_whose_device_got_the_messages_gets_no_push(connect, client_for, alice, bob, receiver):
    await database_sync_to_async(subscribe)(client_for(bob), receiver, "bob")
    _, bob_phone = await connect(bob)
    message = await database_sync_to_async(send)(alice, bob, "you are online")
    assert (await bob_phone.recv_type("direct_message"))["id"] == str(message.id)
    for _ in range(100):  # the socket reports the delivery within ~50 ms
        membership = await Membership.objects.aget(user=bob, conversation_id=message.conversation_id)
        if membership.delivered_seq >= message.seq:
            break
        await asyncio.sleep(0.05)
    assert await database_sync_to_async(relay_once)(now=later()) == 0
    assert await PushDelivery.objects.acount() == 0
    await bob_phone.close()  # the control: with the device gone, the next message is pushed
    await asyncio.sleep(0.3)
    await database_sync_to_async(send)(alice, bob, "now you are away")
    assert await database_sync_to_async(relay_once)(now=later()) == 1


@pytest.mark.parametrize("push_when", ["undelivered", "unread"])
def test_pushes_for_unread_messages_when_configured(client_for, alice, bob, receiver, settings, push_when):
    settings.PUSH_WHEN = push_when
    subscribe(client_for(bob), receiver, "bob")
    message = send(alice, bob, "delivered, not read")
    services.messages_delivered_many({bob.id: [message.id]})  # a device of bob's got it
    assert relay_once(now=later()) == (1 if push_when == "unread" else 0)


# ---- never a push that is no longer news ----------------------------------------------


def test_read_or_deleted_before_it_left_sends_nothing(client_for, alice, bob, carol, receiver):
    subscribe(client_for(bob), receiver, "bob")
    subscribe(client_for(carol), receiver, "carol")
    send(alice, bob, "read soon")
    gone = send(alice, carol, "deleted soon")
    assert relay_once(now=later()) == 2  # both queued...
    services.conversation_mark_read(user=bob, conversation_or_user_id=alice.id)
    services.message_delete(user=alice, message_id=gone.id)
    run_jobs()  # ...neither sent
    assert receiver.received("/wp/bob") == [] and receiver.received("/wp/carol") == []
    assert dict(PushDelivery.objects.values_list("user__username", "reason")) == {"bob": "read", "carol": "deleted"}
    assert counter("skipped", "webpush", "read") == 1 and counter("skipped", "webpush", "deleted") == 1


def test_read_before_the_relay_queues_nothing(client_for, alice, bob, receiver):
    subscribe(client_for(bob), receiver, "bob")
    send(alice, bob, "read at once")
    services.conversation_mark_read(user=bob, conversation_or_user_id=alice.id)
    assert relay_once(now=later()) == 0
    send(alice, bob, "not read")  # the control
    assert relay_once(now=later()) == 1


@pytest.mark.parametrize("change", ["muted", "left", "inactive", "moved", "delivered"])
def test_what_changed_after_the_relay_queued_a_push_is_checked_before_it_leaves(
    client_for, alice, bob, carol, receiver, change
):
    group = services.group_create(creator=alice, title="Trip", members=[bob.id, carol.id])
    _, subscription = subscribe(client_for(bob), receiver, "bob")
    message = services.conversation_message_send(sender=alice, conversation=group.id, content="hi").message
    assert relay_once(now=later()) == 1
    if change == "muted":
        services.conversation_mute(user=bob, conversation_id=group.id, muted=True)
    elif change == "left":
        services.group_leave(user=bob, conversation_id=group.id)
    elif change == "inactive":
        bob.is_active = False
        bob.save(update_fields=["is_active"])
    elif change == "moved":  # the same browser, now carol's
        client_for(carol).post(
            "/push/targets", {"kind": "webpush", "subscription": subscription.as_json()}, format="json"
        )
    else:
        services.messages_delivered_many({bob.id: [message.id]})
    run_jobs()
    assert receiver.received("/wp/bob") == []
    if change == "moved":
        assert PushDelivery.objects.count() == 0  # bob's pushes for that browser went with the move
    else:
        assert PushDelivery.objects.get().reason == change


def test_a_push_overtaken_by_a_newer_one_is_not_sent(client_for, alice, bob, receiver, settings):
    settings.PUSH_MIN_INTERVAL_SECONDS = 0
    subscribe(client_for(bob), receiver, "bob")
    receiver.answer("/wp/bob", 503)
    send(alice, bob, "one")
    relay_once(now=later())
    run_jobs()  # failed: waits for its retry
    receiver.answer("/wp/bob", 201)
    send(alice, bob, "two")
    relay_once(now=later(3600))  # the new burst, and the retry of the old push
    run_jobs()
    [failed, push] = receiver.received("/wp/bob")
    assert (failed.payload["count"], push.payload["count"]) == (1, 2)  # the newer says both
    assert dict(PushDelivery.objects.values_list("top_seq", "reason")) == {1: "superseded", 2: ""}


def test_a_muted_conversation_pushes_nothing(client_for, alice, bob, receiver):
    subscribe(client_for(bob), receiver, "bob")
    first = send(alice, bob, "before muting")
    response = client_for(bob).put(f"/conversations/{first.conversation_id}/mute", {"muted": True}, format="json")
    assert response.status_code == 200 and response.json()["muted"] is True
    send(alice, bob, "while muted")
    assert relay_once(now=later()) == 0
    client_for(bob).put(f"/conversations/{first.conversation_id}/mute", {"muted": False}, format="json")
    send(alice, bob, "unmuted")
    assert relay_once(now=later()) == 1


def test_mute_errors(client_for, alice, bob):
    conversation = send(alice, bob, "x").conversation_id
    assert client_for(bob).put(f"/conversations/{conversation}/mute", {}, format="json").json()["field"] == "muted"
    assert client_for(bob).put(f"/conversations/{uuid.uuid4()}/mute", {"muted": True}, format="json").status_code == 404


# ---- bursts and storms ----------------------------------------------------------------


def test_a_group_is_one_outbox_row_and_one_push_per_member(client_for, alice, bob, carol, receiver):
    group = services.group_create(creator=alice, title="Trip", members=[bob.id, carol.id])
    subscribe(client_for(carol), receiver, "carol")
    for n in range(4):
        services.conversation_message_send(sender=alice if n % 2 else bob, conversation=group.id, content=f"m{n}")
    assert list(PushOutbox.objects.values_list("conversation_id", flat=True)) == [group.id]
    assert relay_once(now=later()) == 1  # carol only: bob has no target, the senders' own messages are not news
    run_jobs()
    [push] = receiver.received("/wp/carol")
    assert push.payload["conversation"] == {"id": str(group.id), "kind": "group", "title": "Trip"}
    assert (push.payload["count"], push.payload["sender"]["username"]) == (4, "alice")


def test_a_steady_conversation_is_pushed_at_most_once_per_interval(client_for, alice, bob, receiver, settings):
    settings.PUSH_MIN_INTERVAL_SECONDS = 60
    subscribe(client_for(bob), receiver, "bob")
    send(alice, bob, "one")
    first_pass = later()
    assert relay_once(now=first_pass) == 1
    run_jobs()
    send(alice, bob, "two")
    send(alice, bob, "three")
    assert relay_once(now=later()) == 0  # too soon after the last push: it waits
    outbox = PushOutbox.objects.get()
    assert outbox.due_at >= first_pass + timedelta(seconds=59)
    assert relay_once(now=outbox.due_at) == 1
    run_jobs()
    assert [push.payload["count"] for push in receiver.received("/wp/bob")] == [1, 2]


def test_a_message_marked_while_the_relay_works_is_pushed_in_a_later_pass(client_for, alice, bob, receiver, settings):
    """The relay takes a conversation, queues its pushes, then settles the row:
    a message marked in between (here: stored after the plan read the
    conversation) keeps the row, so it is pushed next time instead of lost."""
    settings.PUSH_MIN_INTERVAL_SECONDS = 0
    subscribe(client_for(bob), receiver, "bob")
    send(alice, bob, "first")
    now = later()
    claimed = push_outbox_claim(now, now + timedelta(seconds=60), 200)
    members, deferred = relay._plan(list(claimed), now)
    second = send(alice, bob, "second, just after the plan")
    with transaction.atomic():
        relay._store(members, now)
        push_outbox_settle(claimed, deferred, now + timedelta(seconds=settings.PUSH_GRACE_SECONDS))
    with transaction.atomic():
        assert relay._hand_out(now) == 1
    assert len(members) == 1 and PushOutbox.objects.count() == 1  # kept: something newer was marked
    assert relay_once(now=later(30)) == 1
    run_jobs()
    # The second is pushed (with the first, whose own push it overtook before it left).
    [push] = receiver.received("/wp/bob")
    assert (push.payload["count"], push.payload["message_id"]) == (2, str(second.id))
    assert PushOutbox.objects.count() == 0


def test_a_relay_that_dies_mid_pass_leaves_the_conversation_to_be_taken_again(client_for, alice, bob, receiver):
    subscribe(client_for(bob), receiver, "bob")
    send(alice, bob, "hello")
    now = later()
    assert push_outbox_claim(now, now + timedelta(seconds=60), 200)  # taken, then the relay died
    assert relay_once(now=now + timedelta(seconds=1)) == 0  # leased: not taken twice
    assert relay_once(now=now + timedelta(seconds=61)) == 1


def test_a_conversation_put_off_for_one_member_does_not_put_off_new_messages(
    client_for, alice, bob, receiver, settings
):
    settings.PUSH_MIN_INTERVAL_SECONDS = 60
    subscribe(client_for(bob), receiver, "bob")
    send(alice, bob, "one")
    relay_once(now=later())
    send(alice, bob, "two")
    relay_once(now=later())  # bob was pushed a moment ago: the row waits a minute
    assert PushOutbox.objects.get().due_at > later(40)
    send(alice, bob, "three")  # new messages bring it back to their own grace period
    assert PushOutbox.objects.get().due_at < later()


def test_pruning_keeps_where_the_next_push_starts(client_for, alice, bob, receiver, settings):
    from messaging.push.management.commands.push_worker import prune_finished

    settings.PUSH_MIN_INTERVAL_SECONDS = 0
    settings.PUSH_WHEN = "unread"
    subscribe(client_for(bob), receiver, "bob")
    for n in range(2):
        send(alice, bob, f"burst {n}")
        relay_once(now=later())
        run_jobs()
    PushDelivery.objects.update(created_at=timezone.now() - timedelta(days=settings.EVENT_LOG_RETENTION_DAYS + 1))
    assert prune_finished() == 1
    assert list(PushDelivery.objects.values_list("top_seq", flat=True)) == [2]
    send(alice, bob, "after the prune")
    relay_once(now=later())
    run_jobs()
    assert [push.payload["count"] for push in receiver.received("/wp/bob")] == [1, 1, 1]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time: nothing to overlap")
@pytest.mark.django_db(transaction=True)
def test_the_relay_never_takes_a_conversation_whose_new_message_is_not_committed(client_for, alice, bob, receiver):
    """A writer's mark holds the row until its transaction commits; the relay
    skips it meanwhile, and pushes the message once it is committed."""
    subscribe(client_for(bob), receiver, "bob")
    first = send(alice, bob, "committed")
    marked, release, done = threading.Event(), threading.Event(), threading.Event()

    def writer() -> None:  # another connection, as the message writer's
        try:
            with transaction.atomic():
                push_outbox_touch({first.conversation_id: first.seq + 1}, timezone.now())
                marked.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert marked.wait(10)
    try:
        assert relay_once(now=later()) == 0  # the row is held: not taken
        assert PushOutbox.objects.count() == 1
    finally:
        release.set()
        thread.join(10)
    assert relay_once(now=later()) == 1


def test_the_relays_reads_do_not_grow_with_the_members(alice, make_user, receiver):
    """Its reads are a fixed number of queries; it writes one job row per push
    (one job a push, so a slow target holds up no other)."""

    def plan_for(members: int) -> int:
        users = [make_user() for _ in range(members)]
        for user in users:
            PushTarget.objects.create(
                user=user, kind="webhook", endpoint=receiver.webhook_url(user.username), secret="whsec_eA=="
            )
        group = services.group_create(creator=alice, title="Big", members=[u.id for u in users])
        services.conversation_message_send(sender=alice, conversation=group.id, content="hello all")
        return members

    counts = []
    for size in (3, 30):
        plan_for(size)
        with CaptureQueriesContext(connection) as captured:
            assert relay_once(now=later()) == size
        counts.append(
            sum(1 for query in captured.captured_queries if query["sql"].lstrip().upper().startswith("SELECT"))
        )
        OrmQ.objects.all().delete()
    assert counts[0] == counts[1]


# ---- what push services answer --------------------------------------------------------


def test_a_gone_subscription_removes_the_target(client_for, alice, bob, receiver):
    target, _ = subscribe(client_for(bob), receiver, "bob")
    receiver.answer("/wp/bob", 410)
    send(alice, bob, "to a dead phone")
    relay_once(now=later())
    run_jobs()
    assert not PushTarget.objects.filter(pk=target["id"]).exists()
    assert PushDelivery.objects.count() == 0  # its pushes went with it
    assert counter("targets_dropped", "webpush") == 1


def test_a_failing_push_service_is_retried_with_backoff(client_for, alice, bob, receiver, settings):
    subscribe(client_for(bob), receiver, "bob")
    receiver.answer("/wp/bob", 503)
    send(alice, bob, "try again")
    relay_once(now=later())
    run_jobs()
    delivery = PushDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 1, 503)
    assert delivery.next_attempt_at > timezone.now()
    assert relay_once(now=timezone.now()) == 0  # not yet
    receiver.answer("/wp/bob", 201)
    assert relay_once(now=delivery.next_attempt_at + timedelta(seconds=1)) == 1
    run_jobs()
    delivery.refresh_from_db()
    assert (delivery.status, len(receiver.received("/wp/bob"))) == ("sent", 2)
    assert counter("retried", "webpush") == 1 and counter("sent", "webpush") == 1


def test_every_attempt_failing_gives_up(client_for, alice, bob, receiver, settings):
    settings.PUSH_MAX_ATTEMPTS = 2
    subscribe(client_for(bob), receiver, "bob")
    receiver.answer("/wp/bob", 500)
    send(alice, bob, "never")
    relay_once(now=later())
    run_jobs()
    relay_once(now=later(7200))
    run_jobs()
    delivery = PushDelivery.objects.get()
    assert (delivery.status, delivery.reason, delivery.attempts) == ("failed", "gave_up", 2)
    assert counter("failed", "webpush", "gave_up") == 1


def test_a_webhook_is_signed_and_carries_the_push_id(client_for, alice, bob, receiver):
    target = hook(client_for(bob), receiver, "bob")
    assert target["secret"].startswith("whsec_")
    assert "secret" not in client_for(bob).get("/push/targets").json()[0]  # shown once
    send(alice, bob, "to the gateway")
    relay_once(now=later())
    run_jobs()
    [push] = receiver.received("/hook/bob")
    assert push.headers["webhook-id"] == push.payload["id"] == str(PushDelivery.objects.get().id)
    assert push.payload["count"] == 1


def test_a_webhook_with_the_wrong_secret_is_refused_by_the_receiver(client_for, alice, bob, receiver):
    hook(client_for(bob), receiver, "bob")
    receiver.set_secret("bob", "whsec_" + "QUJD" * 8)  # the gateway knows another secret
    send(alice, bob, "forged?")
    relay_once(now=later())
    run_jobs()
    assert receiver.received("/hook/bob") == [] and receiver.rejected("/hook/bob")
    delivery = PushDelivery.objects.get()
    assert (delivery.status, delivery.reason) == ("failed", "http_400")


def test_private_addresses_are_refused_outside_tests(client_for, alice, bob, receiver, settings):
    target = hook(client_for(bob), receiver, "bob")
    settings.PUSH_ALLOW_PRIVATE_TARGETS = False
    refused = client_for(bob).post(
        "/push/targets", {"kind": "webhook", "url": "http://example.com/hook"}, format="json"
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_push_target")
    PushTarget.objects.filter(pk=target["id"]).update(
        endpoint=f"https://127.0.0.1:{receiver.server.server_port}/hook/bob"
    )
    send(alice, bob, "to loopback")
    relay_once(now=later())
    run_jobs()
    delivery = PushDelivery.objects.get()
    assert (delivery.status, delivery.reason) == ("failed", "refused")  # the worker never called it


# ---- registration over REST -----------------------------------------------------------


def test_targets_are_listed_renamed_and_removed_by_their_owner_only(client_for, alice, bob, receiver):
    target, subscription = subscribe(client_for(bob), receiver, "bob")
    assert [t["id"] for t in client_for(bob).get("/push/targets").json()] == [target["id"]]
    assert client_for(alice).get("/push/targets").json() == []
    assert client_for(alice).patch(f"/push/targets/{target['id']}", {"name": "x"}, format="json").status_code == 404
    assert client_for(alice).delete(f"/push/targets/{target['id']}").status_code == 404
    renamed = client_for(bob).patch(f"/push/targets/{target['id']}", {"name": "Work laptop"}, format="json")
    assert renamed.json()["name"] == "Work laptop"
    # The same browser subscribing again is the same target (200), and moves to whoever subscribed.
    again = client_for(alice).post(
        "/push/targets", {"kind": "webpush", "subscription": subscription.as_json()}, format="json"
    )
    assert (again.status_code, again.json()["id"]) == (200, target["id"])
    assert PushTarget.objects.get().user == alice
    assert client_for(alice).delete(f"/push/targets/{target['id']}").status_code == 204
    assert PushTarget.objects.count() == 0


@pytest.mark.parametrize("fault", ["p256dh", "auth", "endpoint"])
def test_bad_subscriptions_are_refused_with_the_field(client_for, bob, receiver, fault):
    subscription = receiver.subscription("bob").as_json()
    if fault == "p256dh":
        subscription["keys"]["p256dh"] = "bm90LWEta2V5"  # base64url, but not a P-256 point
    elif fault == "auth":
        subscription["keys"]["auth"] = "c2hvcnQ"  # 5 bytes, not 16
    else:
        subscription["endpoint"] = "ftp://push.example.com/x"
    response = client_for(bob).post("/push/targets", {"kind": "webpush", "subscription": subscription}, format="json")
    assert response.status_code == 400
    assert fault in response.json()["field"]
    assert PushTarget.objects.count() == 0


def test_the_number_of_targets_is_limited(client_for, bob, receiver, settings):
    settings.PUSH_TARGETS_PER_USER = 2
    for name in ("a", "b"):
        hook(client_for(bob), receiver, name)
    response = client_for(bob).post(
        "/push/targets", {"kind": "webhook", "url": receiver.webhook_url("c")}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (409, "too_many_push_targets")


def test_the_vapid_key_is_made_once_and_kept_unless_one_is_configured(client_for, alice, bob, receiver, settings):
    settings.WEBPUSH_VAPID_PRIVATE_KEY = ""
    made = client_for(bob).get("/push/vapid-public-key").json()["public_key"]
    assert len(made) == 87  # a P-256 point, base64url
    assert client_for(alice).get("/push/vapid-public-key").json()["public_key"] == made  # kept, the same for all
    assert VapidKey.objects.count() == 1
    subscribe(client_for(bob), receiver, "bob")
    send(alice, bob, "signed with the kept key")
    relay_once(now=later())
    run_jobs()
    [push] = receiver.received("/wp/bob")
    assert made in push.headers["authorization"]  # "vapid t=<jwt>, k=<this public key>"; the receiver checked t

    settings.WEBPUSH_VAPID_PRIVATE_KEY = new_vapid_private_key()
    configured = client_for(bob).get("/push/vapid-public-key").json()["public_key"]
    assert configured != made


@pytest.mark.parametrize("forget", [True, False])
def test_a_password_change_forgets_devices_when_asked(client_for, bob, receiver, forget):
    subscribe(client_for(bob), receiver, "bob")
    response = client_for(bob).post(
        "/users/me/password",
        {
            "current_password": "correct-horse-battery-staple",
            "new_password": "a-new-long-passphrase",
            "forget_devices": forget,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert PushTarget.objects.filter(user=bob).exists() is not forget


def test_metrics_report_push_totals_and_queue_age(client_for, alice, bob, receiver, settings):
    settings.METRICS_TOKEN = "t" * 32
    subscribe(client_for(bob), receiver, "bob")
    send(alice, bob, "counted")
    relay_once(now=later())
    metrics = Client().get("/metrics", headers={"Authorization": "Bearer " + "t" * 32}).content.decode()
    assert 'chat_push_queued_total{kind="webpush"} 1.0' in metrics
    assert 'chat_push_queue_age_seconds{stage="delivery"}' in metrics
    run_jobs()
    metrics = Client().get("/metrics", headers={"Authorization": "Bearer " + "t" * 32}).content.decode()
    assert 'chat_push_sent_total{kind="webpush"} 1.0' in metrics
    assert 'chat_push_queue_age_seconds{stage="delivery"} 0.0' in metrics
