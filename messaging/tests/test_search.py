"""Message search, on whichever database the suite runs against."""

import pytest
from django.db import connection

from messaging import services
from messaging.search.selectors import highlight, search_terms

pytestmark = pytest.mark.django_db


@pytest.fixture
def chats(alice, bob, make_user):
    carol, eve = make_user("carol"), make_user("eve")
    sent = {}
    sent["lunch"] = services.message_send(sender=alice, to=str(bob.id), content="Lunch at noon tomorrow?").message
    sent["reply"] = services.message_send(sender=bob, to=str(alice.id), content="Yes, lunch sounds great").message
    sent["other"] = services.message_send(sender=alice, to=str(carol.id), content="The report is done").message
    sent["gone"] = services.message_send(sender=alice, to=str(bob.id), content="lunch secret, deleted").message
    services.message_delete(user=alice, message_id=sent["gone"].id)
    sent["private"] = services.message_send(sender=carol, to=str(eve.id), content="lunch without alice").message
    return sent


def search(client, **params):
    response = client.get("/messages/search", params)
    assert response.status_code == 200, response.content
    return response


def test_finds_only_my_conversations_newest_first_without_deleted(client_for, alice, chats):
    body = search(client_for(alice), q="lunch").json()
    assert [m["id"] for m in body] == [str(chats["reply"].id), str(chats["lunch"].id)]
    first = body[0]
    assert first["conversation"] == str(chats["reply"].conversation_id)
    assert first["content"] == "Yes, lunch sounds great"
    assert (first["from"], first["sender_username"]) == (str(chats["reply"].sender_id), "bob")
    assert first["highlights"] == [[5, 10]]


def test_every_word_must_match(client_for, alice, chats):
    assert [m["content"] for m in search(client_for(alice), q="lunch noon").json()] == ["Lunch at noon tomorrow?"]
    assert search(client_for(alice), q="lunch report").json() == []


def test_a_non_member_finds_nothing(client_for, make_user, chats):
    assert search(client_for(make_user("mallory")), q="lunch").json() == []


def test_removed_group_member_searches_only_up_to_removal(client_for, alice, bob, chats):
    group = services.group_create(creator=alice, title="Team", members=[bob.id])
    services.conversation_message_send(sender=alice, conversation=group.id, content="budget before")
    services.group_remove_member(user=alice, conversation_id=group.id, member_id=bob.id)
    services.conversation_message_send(sender=alice, conversation=group.id, content="budget after")
    assert [m["content"] for m in search(client_for(bob), q="budget").json()] == ["budget before"]


def test_pages(client_for, alice, bob):
    for n in range(5):
        services.message_send(sender=alice, to=str(bob.id), content=f"ping number {n}")
    client, seen, url = client_for(alice), [], "/messages/search?q=ping&limit=2"
    while url:
        response = client.get(url)
        seen += [m["content"] for m in response.json()]
        url = response.get("Link", "")[1:].split(">")[0].replace("http://testserver", "") or None
    assert seen == [f"ping number {n}" for n in reversed(range(5))]


def test_best_match_order(client_for, alice, bob):
    services.message_send(sender=alice, to=str(bob.id), content="cats")
    services.message_send(sender=alice, to=str(bob.id), content="cats cats cats and more cats")
    services.message_send(sender=alice, to=str(bob.id), content="dogs, and one cats")
    body = search(client_for(alice), q="cats", order="best").json()
    assert len(body) == 3
    if connection.vendor == "postgresql":
        assert body[0]["content"] == "cats cats cats and more cats"  # ranked by ts_rank


@pytest.mark.parametrize(
    "params", [{}, {"q": ""}, {"q": "x" * 201}, {"q": "a", "order": "random"}, {"q": "a", "cursor": "bogus"}]
)
def test_bad_queries(client_for, alice, params):
    response = client_for(alice).get("/messages/search", params)
    assert response.status_code == 400
    assert "detail" in response.json()


def test_requires_auth(api_client):
    assert api_client.get("/messages/search", {"q": "x"}).status_code == 401


def test_terms_and_highlights():
    assert search_terms('lunch -dinner "at noon" or') == ["lunch", "at", "noon"]
    assert highlight("Lunch, LUNCH lunchbox", ["lunch"]) == [(0, 5), (7, 12), (13, 18)]
    assert highlight("abc", []) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the GIN index exists on PostgreSQL only")
def test_search_uses_the_gin_index_on_postgres(alice, chats):
    from django.contrib.postgres.search import SearchQuery, SearchVector

    from messaging.models import Message

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'messaging_message_search'")
        assert "gin" in cursor.fetchone()[0].lower()
        cursor.execute("SET enable_seqscan = off")  # a tiny table would be scanned; ask what it would use
    plan = (
        Message.objects.annotate(document=SearchVector("content", config="simple"))
        .filter(document=SearchQuery("lunch", config="simple", search_type="websearch"))
        .explain()
    )
    assert "messaging_message_search" in plan
