"""messaging.rules: the shared predicates, on their own and against real rows."""

import uuid
from datetime import UTC, datetime

import pytest

from chatserver.errors import InvalidInput
from messaging import rules, services
from messaging.exceptions import InvalidCursor, InvalidRecipient
from messaging.models import Membership, Message

# ---- input ------------------------------------------------------------------------


def test_parse_uuid_takes_strings_and_uuids() -> None:
    pk = uuid.uuid4()
    assert rules.parse_uuid(str(pk), "id") == pk
    assert rules.parse_uuid(pk, "id") is pk


@pytest.mark.parametrize("value", ["nope", "", 5, None, ["a"], {"id": 1}])
def test_parse_uuid_names_the_field_of_anything_else(value) -> None:
    with pytest.raises(InvalidInput) as caught:
        rules.parse_uuid(value, "conversation")
    assert caught.value.field == "conversation"


def test_parse_uuid_raises_the_error_asked_for_in_its_own_words() -> None:
    with pytest.raises(InvalidRecipient) as caught:
        rules.parse_uuid("nope", "to", InvalidRecipient)
    assert (caught.value.detail, caught.value.field) == (InvalidRecipient.default_detail, "to")
    with pytest.raises(InvalidInput) as caught:
        rules.parse_uuid("nope", "up_to")
    assert caught.value.detail == "up_to must be a UUID."


@pytest.mark.parametrize(("value", "storable"), [("hi", True), ("a\x00b", False), ("\ud800", False), ("é🙂", True)])
def test_storable_text(value: str, storable: bool) -> None:
    assert rules.is_storable_text(value) is storable


# ---- pages ------------------------------------------------------------------------


@pytest.mark.parametrize(("asked", "given"), [(None, 20), (1, 1), (50, 50), (100, 100), (101, 100), (10**9, 100)])
def test_clamp_limit(asked, given) -> None:
    assert rules.clamp_limit(asked) == given


def test_a_cursor_reads_back_its_parts_by_type() -> None:
    at, pk = datetime(2024, 1, 15, 10, 0, 0, 123456, tzinfo=UTC), uuid.uuid4()
    cursor = rules.cursor_encode(at.isoformat(), pk)
    assert "|" not in cursor and "=" not in cursor  # opaque and URL-safe
    assert rules.cursor_decode(cursor, rules.aware_datetime, uuid.UUID) == (at, pk)
    assert rules.cursor_decode(rules.cursor_encode(40), int) == (40,)


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",  # not base64
        rules.cursor_encode("a", "b"),  # a part of the wrong type
        rules.cursor_encode(datetime(2024, 1, 1).isoformat(), uuid.uuid4()),  # no offset: ambiguous
        rules.cursor_encode(datetime(2024, 1, 1, tzinfo=UTC).isoformat()),  # too few parts
        rules.cursor_encode(datetime(2024, 1, 1, tzinfo=UTC).isoformat(), uuid.uuid4(), 1),  # too many
    ],
)
def test_a_cursor_this_server_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        rules.cursor_decode(cursor, rules.aware_datetime, uuid.UUID)


def test_page_of_gives_a_cursor_only_when_a_row_is_left() -> None:
    assert rules.page_of([1, 2, 3], 3, str) == ([1, 2, 3], None)
    assert rules.page_of([1, 2, 3, 4], 3, str) == ([1, 2, 3], "3")
    assert rules.page_of([], 3, str) == ([], None)


# ---- membership window, on real rows ----------------------------------------------


@pytest.fixture
def group_story(make_user):
    """alice, bob and carol in a group; carol leaves after message 2, dave joins after it."""
    alice, bob, carol, dave = (make_user(name) for name in ("alice", "bob", "carol", "dave"))
    group = services.group_create(creator=alice, title="g", members=[bob.id, carol.id])
    said = [services.conversation_message_send(sender=alice, conversation=str(group.id), content="1").message]
    said.append(services.conversation_message_send(sender=bob, conversation=str(group.id), content="2").message)
    services.group_leave(user=carol, conversation_id=group.id)
    services.group_add_members(user=alice, conversation_id=group.id, user_ids=[dave.id])
    said.append(services.conversation_message_send(sender=alice, conversation=str(group.id), content="3").message)
    return group, {u.username: u for u in (alice, bob, carol, dave)}, said


def seen_by(user) -> list[str]:
    return list(Message.objects.filter(rules.visible_to(user.id)).order_by("seq").values_list("content", flat=True))


@pytest.mark.django_db
def test_visible_to_is_the_window_of_each_member(group_story, make_user) -> None:
    _, users, _ = group_story
    assert seen_by(users["alice"]) == ["1", "2", "3"]
    assert seen_by(users["carol"]) == ["1", "2"]  # up to leaving
    assert seen_by(users["dave"]) == ["3"]  # from joining
    assert seen_by(make_user("eve")) == []  # never a member


@pytest.mark.django_db
def test_member_sees_seq_picks_the_memberships_whose_window_holds_it(group_story) -> None:
    group, _, said = group_story
    members = Membership.objects.filter(conversation=group)

    def who(message: Message) -> set[str]:
        return set(members.filter(rules.member_sees_seq(message.seq)).values_list("user__username", flat=True))

    assert who(said[0]) == {"alice", "bob", "carol"}
    assert who(said[2]) == {"alice", "bob", "dave"}


@pytest.mark.django_db
def test_seq_window_and_window_top_follow_a_member_who_left(group_story) -> None:
    group, users, said = group_story
    carol = Membership.objects.get(conversation=group, user=users["carol"])
    dave = Membership.objects.get(conversation=group, user=users["dave"])
    in_window = group.messages.filter(rules.seq_window(carol.joined_seq, carol.left_seq))
    assert sorted(in_window.values_list("content", flat=True)) == ["1", "2"]
    assert list(
        group.messages.filter(rules.seq_window(dave.joined_seq, dave.left_seq)).values_list("content", flat=True)
    ) == ["3"]
    group.refresh_from_db()
    assert rules.window_top(carol.left_seq, group.last_seq) == said[1].seq
    assert rules.window_top(dave.left_seq, group.last_seq) == said[2].seq
    assert not rules.is_current(carol) and rules.is_current(dave)
    current = Membership.objects.filter(rules.CURRENT_MEMBER, conversation=group)
    assert set(current.values_list("user__username", flat=True)) == {"alice", "bob", "dave"}
