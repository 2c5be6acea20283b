"""messaging.messages: sending, editing, deleting, history, offline delivery reads."""

import threading
import time
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from messaging import services
from messaging.exceptions import (
    CannotMessageSelf,
    ClientIdConflict,
    ContentTooLong,
    EmptyContent,
    InvalidClientId,
    InvalidContent,
    InvalidRecipient,
    MessageNotFound,
    NotSender,
    RecipientNotFound,
)
from messaging.messages.selectors import message_history
from messaging.models import MESSAGE_MAX_LENGTH, Conversation, Membership, Message, MessageEdit, UserEvent
from messaging.tests.helpers import undelivered

pytestmark = pytest.mark.django_db


def send(sender, to, content="hi", **kwargs):
    return services.message_send(sender=sender, to=str(to.id), content=content, **kwargs)


def _hold_write_lock_on(message_id, locked: threading.Event, release: threading.Event) -> None:
    """Keep the message's row locked (SQLite: the database's write lock) until released."""
    try:
        with transaction.atomic():
            Message.objects.select_for_update().filter(pk=message_id).update(client_id=None)
            locked.set()
            release.wait(10)
    finally:
        connection.close()


def _in_thread(function, *args, **kwargs) -> threading.Thread:
    def run() -> None:
        try:
            function(*args, **kwargs)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_first_message_creates_one_direct_conversation_with_two_members(alice, bob):
    send(alice, bob)
    send(bob, alice)
    conversation = Conversation.objects.get()
    assert conversation.kind == Conversation.Kind.DIRECT
    assert set(Membership.objects.values_list("user_id", flat=True)) == {alice.id, bob.id}
    assert conversation.last_seq == 2


def test_messages_get_consecutive_seq_and_microsecond_timestamps(alice, bob):
    first = send(alice, bob).message
    second = send(bob, alice).message
    assert (first.seq, second.seq) == (1, 2)
    assert second.created_at >= first.created_at
    stored = Message.objects.get(pk=first.pk)
    assert stored.created_at == first.created_at  # microseconds survive the round trip


def test_client_id_is_idempotent_per_sender(alice, bob):
    first = send(alice, bob, client_id="abc")
    again = send(alice, bob, client_id="abc")
    other_sender = send(bob, alice, client_id="abc")
    assert first.created and not again.created and other_sender.created
    assert again.message.id == first.message.id
    assert Message.objects.count() == 2


def test_reusing_a_client_id_for_a_different_message_is_refused(alice, bob, make_user):
    send(alice, bob, "hello", client_id="abc")
    with pytest.raises(ClientIdConflict):
        send(alice, bob, "a different message", client_id="abc")
    with pytest.raises(ClientIdConflict):
        send(alice, make_user("carol"), "hello", client_id="abc")
    assert Message.objects.count() == 1


@pytest.mark.parametrize("content", ["nul\x00byte", "lone \ud800 surrogate"])
def test_unstorable_text_is_invalid_content(alice, bob, content):
    with pytest.raises(InvalidContent):
        send(alice, bob, content)
    with pytest.raises(InvalidClientId):
        send(alice, bob, "fine", client_id=content)
    assert not Message.objects.exists()


def test_a_send_to_an_existing_conversation_is_five_statements(alice, bob, django_assert_num_queries):
    """Take the seq (checking the recipient), insert the message, take the event
    seqs, insert the events, mark the conversation in the push outbox; plus the
    (save)point around them."""
    send(alice, bob, "first")
    with django_assert_num_queries(7):
        result = send(bob, alice, "second", client_id="c-2")
    assert result.created and result.message.seq == 2


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"content": ""}, EmptyContent),
        ({"content": " \t\n"}, EmptyContent),
        ({"content": "x" * (MESSAGE_MAX_LENGTH + 1)}, ContentTooLong),
        ({"to": "nope"}, InvalidRecipient),
        ({"to": None}, InvalidRecipient),
        ({"to": str(uuid.uuid4())}, RecipientNotFound),
    ],
)
def test_send_rules(alice, bob, kwargs, error):
    arguments = {"sender": alice, "to": str(bob.id), "content": "hi", **kwargs}
    with pytest.raises(error):
        services.message_send(**arguments)
    assert not Message.objects.exists()


def test_cannot_message_self(alice):
    with pytest.raises(CannotMessageSelf):
        send(alice, alice)


@pytest.mark.parametrize("talked_before", [False, True])
def test_inactive_recipient_is_not_found(alice, bob, talked_before):
    if talked_before:  # the one-statement path for an existing conversation checks it too
        send(alice, bob, "before")
    bob.is_active = False
    bob.save()
    with pytest.raises(RecipientNotFound):
        send(alice, bob)
    assert Message.objects.count() == int(talked_before)
    assert Conversation.objects.filter(last_seq=int(talked_before)).count() == int(talked_before)


def test_edit_rules(alice, bob, make_user):
    message = send(alice, bob).message
    with pytest.raises(NotSender):
        services.message_edit(user=bob, message_id=message.id, content="hijack")
    with pytest.raises(MessageNotFound):
        services.message_edit(user=make_user("eve"), message_id=message.id, content="hijack")
    with pytest.raises(EmptyContent):
        services.message_edit(user=alice, message_id=message.id, content="")
    edited = services.message_edit(user=alice, message_id=message.id, content="fixed")
    assert edited.edited_at is not None
    assert Message.objects.get(pk=message.id).content == "fixed"


@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_keep_every_version_in_the_history(alice, bob):
    """Two edits waiting on the same row: the one that commits second records
    the content the first one wrote, not the one both saw before waiting."""
    message = send(alice, bob, "v0").message
    locked, release = threading.Event(), threading.Event()
    holder = _in_thread(_hold_write_lock_on, message.id, locked, release)
    assert locked.wait(10)
    editors = [
        _in_thread(services.message_edit, user=alice, message_id=message.id, content=content)
        for content in ("vA", "vB")
    ]
    time.sleep(0.5)  # both editors are past their permission checks, waiting on the lock
    release.set()
    for thread in (holder, *editors):
        thread.join(20)
    final = Message.objects.get(pk=message.id).content
    previous = sorted(MessageEdit.objects.filter(message_id=message.id).values_list("previous_content", flat=True))
    assert final in ("vA", "vB")
    assert previous == sorted(["v0", {"vA": "vB", "vB": "vA"}[final]])


def test_delete_is_soft_and_final(alice, bob):
    message = send(alice, bob, "bye").message
    with pytest.raises(NotSender):
        services.message_delete(user=bob, message_id=message.id)
    deleted = services.message_delete(user=alice, message_id=message.id)
    assert deleted.is_deleted and deleted.deleted_at
    stored = Message.objects.get(pk=message.id)
    assert stored.is_deleted and stored.content == "bye"
    # A retried delete answers like the first and tells nobody again.
    again = services.message_delete(user=alice, message_id=message.id)
    assert (again.pk, again.is_deleted) == (message.pk, True)
    assert UserEvent.objects.filter(user=bob, frame__type="message_deleted").count() == 1
    with pytest.raises(NotSender):
        services.message_delete(user=bob, message_id=message.id)
    with pytest.raises(MessageNotFound):
        services.message_edit(user=alice, message_id=message.id, content="zombie")


def test_history_pages_250_messages_in_one_second_exactly_once(alice, bob):
    sent = [send(alice if n % 2 else bob, bob if n % 2 else alice, f"m{n}").message.id for n in range(250)]
    # Squeeze them into one second, several sharing the very same microsecond.
    first = Message.objects.order_by("seq").first().created_at
    for n, message in enumerate(Message.objects.order_by("seq")):
        Message.objects.filter(pk=message.pk).update(created_at=first.replace(microsecond=(n // 3) * 1000))

    seen, cursor = [], None
    while True:
        page = message_history(user=alice, other_id=bob.id, limit=20, cursor=cursor)
        seen.extend(m.id for m in page.messages)
        assert len(page.messages) <= 20
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 250
    assert set(seen) == set(sent)
    assert seen == [m.id for m in Message.objects.order_by("-created_at", "-id")]  # newest first, ties by id


def test_history_costs_three_queries_per_page(alice, bob):
    for n in range(30):
        send(alice, bob, f"m{n}")
    with CaptureQueriesContext(connection) as queries:
        page = message_history(user=alice, other_id=bob.id, limit=20)
        [(m.conversation.other_user_id(m.sender_id), m.content) for m in page.messages]
    assert len(queries) == 3  # the conversation, the page, the page's attachments


def test_history_excludes_deleted_and_other_conversations(alice, bob, make_user):
    carol = make_user("carol")
    kept = send(alice, bob, "kept").message
    gone = send(alice, bob, "gone").message
    services.message_delete(user=alice, message_id=gone.id)
    send(alice, carol, "not yours")
    page = message_history(user=bob, other_id=alice.id)
    assert [m.id for m in page.messages] == [kept.id]


def test_delivering_one_message_leaves_the_others_undelivered(alice, bob, make_user):
    carol = make_user("carol")
    send(alice, bob, "to bob")
    send(carol, bob, "from carol")
    send(bob, alice, "from bob")
    waiting = undelivered(bob)
    assert [m.content for m in waiting] == ["to bob", "from carol"]
    services.messages_delivered(bob, [waiting[0].id])
    assert [m.content for m in undelivered(bob)] == ["from carol"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_get_distinct_consecutive_seqs(alice, bob):
    """Both users send at once from several threads: seq stays unique and gap-free."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import close_old_connections

    def burst(sender, receiver, count: int) -> None:
        try:
            for n in range(count):
                send(sender, receiver, f"{sender.username}-{n}")
        finally:
            close_old_connections()

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(burst, *pair, 15) for pair in [(alice, bob), (bob, alice)] * 2]
        for future in futures:
            future.result()
    seqs = sorted(Message.objects.values_list("seq", flat=True))
    assert seqs == list(range(1, 61))
    assert Conversation.objects.count() == 1
    assert Conversation.objects.get().last_seq == 60
