"""Group conversations over REST and WebSocket."""

import pytest
from channels.db import database_sync_to_async

from messaging import services
from messaging.models import GROUP_MAX_MEMBERS, Membership, Message, UserEvent

db_sync = database_sync_to_async


@pytest.fixture
def carol(make_user):
    return make_user("carol")


@pytest.fixture
def group(alice, bob, carol):
    return services.group_create(creator=alice, title="Trip", members=[bob.id, carol.id])


def frames_of(user, kind):
    return [
        f
        for f in UserEvent.objects.filter(user=user).order_by("seq").values_list("frame", flat=True)
        if f["type"] == kind
    ]


# ---- REST ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_group_over_rest(client_for, alice, bob, carol):
    response = client_for(alice).post(
        "/conversations", {"title": " Trip ", "members": [str(bob.id), str(carol.id), str(bob.id)]}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["title"], body["role"], body["with"]) == ("group", "Trip", "admin", None)
    members = client_for(bob).get(f"/conversations/{body['id']}/members").json()
    assert [(m["username"], m["role"]) for m in members] == [("alice", "admin"), ("bob", "member"), ("carol", "member")]
    for user in (alice, bob, carol):
        created = frames_of(user, "conversation_created")
        assert len(created) == 1 and {m["username"] for m in created[0]["members"]} == {"alice", "bob", "carol"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"title": "", "members": []}, "blank"),
        ({"title": "x" * 121, "members": []}, "max_length"),
        ({"title": "ok", "members": ["nope"]}, "invalid"),
        ({"title": "ok", "members": ["00000000-0000-0000-0000-000000000000"]}, "recipient_not_found"),
        ({"title": "ok"}, "required"),
    ],
)
def test_create_group_errors(client_for, alice, body, code):
    response = client_for(alice).post("/conversations", body, format="json")
    assert response.status_code in (400, 404)
    assert response.json()["code"] == code


@pytest.mark.django_db
def test_group_size_limit(alice, make_user, monkeypatch):
    import messaging.groups.services as groups
    from messaging.exceptions import GroupFull

    assert GROUP_MAX_MEMBERS == 256  # the documented limit; lowered here to keep the test small
    monkeypatch.setattr(groups, "GROUP_MAX_MEMBERS", 3)
    users = [make_user(f"u{n}") for n in range(3)]
    with pytest.raises(GroupFull):
        services.group_create(creator=alice, title="Big", members=[u.id for u in users])
    group = services.group_create(creator=alice, title="Fits", members=[u.id for u in users[:2]])
    with pytest.raises(GroupFull):
        services.group_add_members(user=alice, conversation_id=group.id, user_ids=[users[2].id])


@pytest.mark.django_db
def test_rename_by_admins_only(client_for, group, alice, bob, carol):
    assert client_for(bob).patch(f"/conversations/{group.id}", {"title": "Mine"}, format="json").status_code == 403
    response = client_for(alice).patch(f"/conversations/{group.id}", {"title": "Ski trip"}, format="json")
    assert response.status_code == 200 and response.json()["title"] == "Ski trip"
    assert frames_of(carol, "conversation_renamed")[0]["title"] == "Ski trip"


@pytest.mark.django_db
def test_add_and_remove_members(client_for, group, alice, bob, carol, make_user):
    dave = make_user("dave")
    assert (
        client_for(bob)
        .post(f"/conversations/{group.id}/members", {"user_ids": [str(dave.id)]}, format="json")
        .status_code
        == 403
    )
    added = client_for(alice).post(f"/conversations/{group.id}/members", {"user_ids": [str(dave.id)]}, format="json")
    assert added.status_code == 200 and "dave" in [m["username"] for m in added.json()]
    assert [m["username"] for m in frames_of(dave, "member_joined")[0]["members"]] == ["dave"]

    assert client_for(bob).delete(f"/conversations/{group.id}/members/{carol.id}").status_code == 403
    assert client_for(alice).delete(f"/conversations/{group.id}/members/{carol.id}").status_code == 204
    left = frames_of(carol, "member_left")[-1]
    assert (left["user_id"], left["reason"]) == (str(carol.id), "removed")
    assert [m["username"] for m in client_for(alice).get(f"/conversations/{group.id}/members").json()] == [
        "alice",
        "bob",
        "dave",
    ]


@pytest.mark.django_db
def test_removed_member_keeps_history_until_removal_and_gets_nothing_after(client_for, group, alice, bob, carol):
    before = services.conversation_message_send(sender=alice, conversation=group.id, content="before").message
    services.group_remove_member(user=alice, conversation_id=group.id, member_id=carol.id)
    after = services.conversation_message_send(sender=bob, conversation=group.id, content="after").message

    history = client_for(carol).get(f"/conversations/{group.id}/messages").json()
    assert [m["content"] for m in history] == ["before"]
    assert [f["id"] for f in frames_of(carol, "group_message")] == [str(before.id)]
    item = client_for(carol).get(f"/conversations/{group.id}").json()
    assert item["active"] is False and item["last_message"]["id"] == str(before.id)
    # Carol can no longer post, edit history, or read beyond her removal.
    from messaging.exceptions import ConversationNotFound

    with pytest.raises(ConversationNotFound):
        services.conversation_message_send(sender=carol, conversation=group.id, content="let me in")
    assert client_for(carol).get(f"/messages/{after.id}/edits").status_code == 404
    # The others see both.
    assert [m["content"] for m in client_for(bob).get(f"/conversations/{group.id}/messages").json()] == [
        "after",
        "before",
    ]


@pytest.mark.django_db
def test_leave_and_last_admin_hands_over(client_for, group, alice, bob, carol):
    assert client_for(alice).post(f"/conversations/{group.id}/leave").status_code == 204
    members = client_for(bob).get(f"/conversations/{group.id}/members").json()
    assert [(m["username"], m["role"]) for m in members] == [("bob", "admin"), ("carol", "member")]
    assert frames_of(bob, "member_left")[-1]["reason"] == "left"


@pytest.mark.django_db
def test_non_member_cannot_read_post_or_manage(client_for, group, make_user):
    eve = make_user("eve")
    client = client_for(eve)
    assert client.get(f"/conversations/{group.id}").status_code == 404
    assert client.get(f"/conversations/{group.id}/messages").status_code == 404
    assert client.get(f"/conversations/{group.id}/members").status_code == 404
    assert client.post(f"/conversations/{group.id}/read", {}, format="json").status_code == 404
    assert client.post(f"/conversations/{group.id}/leave").status_code == 404
    assert client.patch(f"/conversations/{group.id}", {"title": "mine"}, format="json").status_code == 404


@pytest.mark.django_db
def test_group_operations_on_a_direct_conversation_are_refused(client_for, alice, bob):
    message = services.message_send(sender=alice, to=str(bob.id), content="hi").message
    response = client_for(alice).patch(f"/conversations/{message.conversation_id}", {"title": "x"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "not_a_group"


@pytest.mark.django_db
def test_group_edit_delete_receipts_and_unread_per_member(client_for, group, alice, bob, carol):
    message = services.conversation_message_send(sender=alice, conversation=group.id, content="hello all").message
    services.message_edit(user=alice, message_id=message.id, content="hello, all")
    for user in (alice, bob, carol):
        assert frames_of(user, "message_edited")[0]["content"] == "hello, all"

    assert client_for(bob).get("/conversations").json()[0]["unread_count"] == 1
    services.messages_delivered(bob, [message.id])
    assert frames_of(alice, "message_delivered")[0]["to"] == str(bob.id)
    client_for(carol).post(f"/conversations/{group.id}/read", {}, format="json")
    assert frames_of(alice, "message_read")[0]["reader"] == str(carol.id)
    assert client_for(carol).get("/conversations").json()[0]["unread_count"] == 0
    assert client_for(bob).get("/conversations").json()[0]["unread_count"] == 1

    services.message_delete(user=alice, message_id=message.id)
    for user in (alice, bob, carol):
        assert frames_of(user, "message_deleted")[0]["id"] == str(message.id)
    assert Message.objects.get(pk=message.id).is_deleted


@pytest.mark.django_db
def test_read_receipts_go_to_each_sender(client_for, group, alice, bob, carol):
    services.conversation_message_send(sender=alice, conversation=group.id, content="from alice")
    from_bob = services.conversation_message_send(sender=bob, conversation=group.id, content="from bob").message
    client_for(carol).post(f"/conversations/{group.id}/read", {}, format="json")
    assert frames_of(bob, "message_read")[0]["id"] == str(from_bob.id)
    assert len(frames_of(alice, "message_read")) == 1


# ---- WebSocket -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_group_message_reaches_every_device_of_every_member(connect, group, alice, bob, carol):
    _, alice_phone = await connect(alice)
    _, bob_phone = await connect(bob)
    _, bob_laptop = await connect(bob)
    _, carol_phone = await connect(carol)
    await alice_phone.send(
        {"type": "group_message", "conversation": str(group.id), "content": "hi all", "client_id": "g1"}
    )
    ack = await alice_phone.recv_type("ack")
    assert ack["conversation"] == str(group.id) and ack["to"] is None
    for device in (alice_phone, bob_phone, bob_laptop, carol_phone):
        frame = await device.recv_type("group_message")
        assert (frame["id"], frame["from"], frame["content"]) == (ack["id"], str(alice.id), "hi all")
        assert "to" not in frame
    assert await Message.objects.filter(conversation=group).acount() == 1  # stored once


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_removed_member_stops_receiving_at_once(connect, group, alice, bob, carol):
    _, carol_phone = await connect(carol)
    _, bob_phone = await connect(bob)
    await db_sync(services.group_remove_member)(user=alice, conversation_id=group.id, member_id=carol.id)
    assert (await carol_phone.recv_type("member_left"))["user_id"] == str(carol.id)
    await db_sync(services.conversation_message_send)(sender=bob, conversation=group.id, content="secret")
    await bob_phone.recv_type("group_message")
    frames = []
    while not await carol_phone.ws.receive_nothing(timeout=0.3):
        frames.append(await carol_phone.recv())
    assert "group_message" not in [f["type"] for f in frames]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("conversation", "code"),
    [(None, "invalid"), ("nope", "invalid"), ("00000000-0000-0000-0000-000000000000", "conversation_not_found")],
)
async def test_bad_group_message_frames(connect, alice, conversation, code):
    _, device = await connect(alice)
    await device.send({"type": "group_message", "conversation": conversation, "content": "x"})
    assert (await device.recv())["code"] == code


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_typing_in_a_group_reaches_the_other_members_and_ends_on_send(
    connect, group, alice, bob, carol, settings
):
    settings.TYPING_TIMEOUT_SECONDS = 30
    _, alice_phone = await connect(alice)
    _, bob_phone = await connect(bob)
    _, carol_phone = await connect(carol)
    await alice_phone.send({"type": "typing", "conversation": str(group.id)})
    expected = {"type": "typing", "from": str(alice.id), "conversation": str(group.id), "typing": True}
    for device in (bob_phone, carol_phone):
        assert await device.recv_type("typing") == expected
    assert "typing" not in [f["type"] for f in await alice_phone.drain()]  # not to the typist
    await alice_phone.send({"type": "group_message", "conversation": str(group.id), "content": "done"})
    for device in (bob_phone, carol_phone):
        assert (await device.recv_type("typing"))["typing"] is False

    await bob_phone.send({"type": "typing", "conversation": str(group.id)})
    assert (await carol_phone.recv_type("typing"))["from"] == str(bob.id)
    await bob_phone.send({"type": "typing", "conversation": str(group.id), "typing": False})
    assert await carol_phone.recv_type("typing") == {**expected, "from": str(bob.id), "typing": False}


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_typing_in_a_group_needs_current_membership(connect, group, alice, carol):
    await db_sync(services.group_remove_member)(user=alice, conversation_id=group.id, member_id=carol.id)
    _, carol_phone = await connect(carol)
    _, alice_phone = await connect(alice)
    await carol_phone.send({"type": "typing", "conversation": str(group.id)})
    assert (await carol_phone.recv_type("error"))["code"] == "conversation_not_found"
    await carol_phone.send({"type": "typing", "conversation": "nope"})
    assert (await carol_phone.recv_type("error"))["field"] == "conversation"
    assert "typing" not in [f["type"] for f in await alice_phone.drain()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_offline_group_member_gets_the_messages_on_connect(connect, group, alice, carol):
    await db_sync(services.conversation_message_send)(sender=alice, conversation=group.id, content="while away")
    _, carol_phone = await connect(carol)
    assert (await carol_phone.recv_type("group_message"))["content"] == "while away"


@pytest.mark.django_db
def test_membership_rows_are_kept_after_leaving(group, carol):
    services.group_leave(user=carol, conversation_id=group.id)
    membership = Membership.objects.get(conversation=group, user=carol)
    assert membership.left_seq == 0 and membership.left_at is not None


# ---- boundaries (joined_seq / left_seq) ------------------------------------------------


@pytest.mark.django_db
def test_new_members_see_what_is_said_after_they_join(client_for, group, alice, make_user):
    services.conversation_message_send(sender=alice, conversation=group.id, content="before dave")
    dave = make_user("dave")
    services.group_add_members(user=alice, conversation_id=group.id, user_ids=[dave.id])
    services.conversation_message_send(sender=alice, conversation=group.id, content="welcome dave")
    history = client_for(dave).get(f"/conversations/{group.id}/messages").json()
    assert [m["content"] for m in history] == ["welcome dave"]
    assert client_for(dave).get("/conversations").json()[0]["unread_count"] == 1
    from messaging.tests.helpers import undelivered

    assert [m.content for m in undelivered(dave)] == ["welcome dave"]


@pytest.mark.django_db
def test_a_returning_member_does_not_see_the_gap(client_for, group, alice, carol):
    services.group_remove_member(user=alice, conversation_id=group.id, member_id=carol.id)
    services.conversation_message_send(sender=alice, conversation=group.id, content="while carol was out")
    services.group_add_members(user=alice, conversation_id=group.id, user_ids=[carol.id])
    services.conversation_message_send(sender=alice, conversation=group.id, content="carol is back")
    contents = [m["content"] for m in client_for(carol).get(f"/conversations/{group.id}/messages").json()]
    assert contents == ["carol is back"]


@pytest.mark.django_db
def test_a_removed_member_cannot_see_members_read_beyond_or_change_old_messages(client_for, group, alice, bob, carol):
    from messaging.exceptions import MessageNotFound, NotMember

    mine = services.conversation_message_send(sender=carol, conversation=group.id, content="carol's").message
    services.group_remove_member(user=alice, conversation_id=group.id, member_id=carol.id)
    later = services.conversation_message_send(sender=bob, conversation=group.id, content="later").message
    assert client_for(carol).get(f"/conversations/{group.id}/members").status_code == 404
    with pytest.raises(MessageNotFound):
        services.conversation_mark_read(user=carol, conversation_or_user_id=group.id, up_to=later.id)
    services.conversation_mark_read(user=carol, conversation_or_user_id=group.id)  # all she can see
    assert frames_of(bob, "message_read") == [] and frames_of(bob, "message_delivered") == []
    with pytest.raises(NotMember):
        services.message_edit(user=carol, message_id=mine.id, content="rewritten after leaving")
    with pytest.raises(NotMember):
        services.message_delete(user=carol, message_id=mine.id)


@pytest.mark.django_db
def test_deleting_a_group_message_blanks_it_for_everyone_who_saw_it(group, alice, bob, carol):
    message = services.conversation_message_send(sender=alice, conversation=group.id, content="oops").message
    services.group_leave(user=carol, conversation_id=group.id)
    services.message_delete(user=alice, message_id=message.id)
    for user in (alice, bob, carol):
        assert all(f["content"] == "" for f in frames_of(user, "group_message")), user
        assert frames_of(user, "message_deleted")[0]["id"] == str(message.id)


@pytest.mark.django_db
def test_adding_many_members_is_one_event_per_member(group, alice, make_user):
    newcomers = [make_user(f"n{n}") for n in range(5)]
    services.group_add_members(user=alice, conversation_id=group.id, user_ids=[u.id for u in newcomers])
    joined = frames_of(alice, "member_joined")
    assert len(joined) == 1 and len(joined[0]["members"]) == 5
    assert UserEvent.objects.filter(frame__type="member_joined").count() == 8  # 3 + 5 members, one each


@pytest.mark.django_db(transaction=True)
def test_two_admins_removing_each_other_at_once_leave_one(make_user):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import close_old_connections

    from chatserver.errors import DomainError

    a, b, c = make_user("a1"), make_user("b1"), make_user("c1")
    group = services.group_create(creator=a, title="Race", members=[b.id, c.id])
    Membership.objects.filter(conversation=group, user=b).update(role="admin")

    def remove(actor, target):
        try:
            services.group_remove_member(user=actor, conversation_id=group.id, member_id=target.id)
            return "ok"
        except DomainError as error:
            return error.code
        finally:
            close_old_connections()

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = sorted(f.result() for f in [pool.submit(remove, a, b), pool.submit(remove, b, a)])
    assert results == ["conversation_not_found", "ok"]
    assert Membership.objects.filter(conversation=group, left_seq__isnull=True).count() == 2
