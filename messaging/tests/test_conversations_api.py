"""REST beyond the seed: conversations, read state, user search, edit history."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging import services
from messaging.models import UserEvent

pytestmark = pytest.mark.django_db


def send(sender, to, content="hi"):
    return services.message_send(sender=sender, to=str(to.id), content=content).message


# ---- GET/POST /conversations -----------------------------------------------------------


def test_conversations_most_recent_first_with_last_message_unread_and_presence(
    auth_client, user, make_user, presence_registry
):
    bob, carol = make_user("bob"), make_user("carol")
    send(user, bob, "to bob")
    send(carol, user, "from carol 1")
    last = send(carol, user, "from carol 2")
    send(bob, user, "from bob")  # bob's conversation is now the most recent
    presence_registry.connect(carol.id, "some-socket")

    body = auth_client.get("/conversations").json()
    assert [c["with"]["username"] for c in body] == ["bob", "carol"]
    bob_item, carol_item = body
    assert set(bob_item) == {
        "id",
        "kind",
        "title",
        "role",
        "active",
        "with",
        "other_user",
        "last_message",
        "unread_count",
        "muted",
        "last_activity_at",
    }
    assert (bob_item["kind"], bob_item["title"], bob_item["role"], bob_item["active"]) == (
        "direct",
        None,
        "member",
        True,
    )
    assert bob_item["with"] == {"id": str(bob.id), "username": "bob", "presence": {"online": False, "last_seen": None}}
    assert bob_item["other_user"] == {"id": str(bob.id), "username": "bob"}  # no email unless SHARE_PEER_EMAILS
    assert bob_item["last_message"]["content"] == "from bob"
    assert bob_item["last_message"]["sender_username"] == "bob"  # a group's preview says who wrote it
    assert bob_item["unread_count"] == 1
    assert carol_item["last_message"]["id"] == str(last.id)
    assert carol_item["last_message"]["to"] == str(user.id)
    assert carol_item["unread_count"] == 2
    assert carol_item["with"]["presence"]["online"] is True
    assert "email" not in json_text(body)


def json_text(body) -> str:
    import json

    return json.dumps(body)


def test_conversation_list_costs_the_same_queries_for_any_number(auth_client, user, make_user):
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert auth_client.get("/conversations").status_code == 200
        return len(captured)

    send(make_user("p0"), user, "m")
    few = queries_for_list()
    for n in range(1, 8):
        peer = make_user(f"p{n}")
        send(peer, user, "m")
        send(user, peer, "m")
    assert queries_for_list() == few


def test_conversation_list_pages(auth_client, user, make_user):
    peers = [make_user(f"peer{n}") for n in range(5)]
    for peer in peers:
        send(peer, user)
    seen, url = [], "/conversations?limit=2"
    while url:
        response = auth_client.get(url)
        seen.extend(c["with"]["username"] for c in response.json())
        url = response.get("Link", "")[1:].split(">")[0].replace("http://testserver", "") or None
    assert seen == [f"peer{n}" for n in reversed(range(5))]


def test_deleted_last_message_falls_back_to_the_previous(auth_client, user, make_user):
    bob = make_user("bob")
    send(user, bob, "kept")
    gone = send(user, bob, "gone")
    services.message_delete(user=user, message_id=gone.id)
    assert auth_client.get("/conversations").json()[0]["last_message"]["content"] == "kept"


def test_open_conversation(auth_client, user, make_user):
    bob = make_user("bob")
    created = auth_client.post("/conversations", {"user_id": str(bob.id)}, format="json")
    assert created.status_code == 201
    assert created.json()["with"]["id"] == str(bob.id) and created.json()["last_message"] is None
    again = auth_client.post("/conversations", {"user_id": str(bob.id)}, format="json")
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "required"),
        ({"user_id": "nope"}, 400, "invalid"),
        ({"user_id": "00000000-0000-0000-0000-000000000000"}, 404, "recipient_not_found"),
    ],
)
def test_open_conversation_errors(auth_client, body, status, code):
    response = auth_client.post("/conversations", body, format="json")
    assert response.status_code == status and response.json()["code"] == code


def test_cannot_open_a_conversation_with_oneself(auth_client, user):
    response = auth_client.post("/conversations", {"user_id": str(user.id)}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "cannot_message_self"


# ---- POST /conversations/{id}/read ---------------------------------------------------------


def test_read_all_by_user_id_and_by_conversation_id(auth_client, user, make_user):
    bob = make_user("bob")
    first = send(bob, user, "one")
    send(bob, user, "two")
    partial = auth_client.post(f"/conversations/{bob.id}/read", {"up_to": str(first.id)}, format="json")
    assert partial.status_code == 200
    assert partial.json() == {"conversation": str(first.conversation_id), "unread_count": 1}
    rest = auth_client.post(f"/conversations/{first.conversation_id}/read", {}, format="json")
    assert rest.json()["unread_count"] == 0
    assert auth_client.get("/conversations").json()[0]["unread_count"] == 0
    receipts = [
        f for f in UserEvent.objects.filter(user=bob).values_list("frame", flat=True) if f["type"] == "message_read"
    ]
    assert [r["reader"] for r in receipts] == [str(user.id)] * 2


def test_read_is_never_backwards(auth_client, user, make_user):
    bob = make_user("bob")
    first = send(bob, user, "one")
    send(bob, user, "two")
    auth_client.post(f"/conversations/{bob.id}/read", {}, format="json")
    again = auth_client.post(f"/conversations/{bob.id}/read", {"up_to": str(first.id)}, format="json")
    assert again.json()["unread_count"] == 0


def test_read_errors(auth_client, user, make_user):
    bob, carol = make_user("bob"), make_user("carol")
    send(bob, user)
    foreign = send(bob, carol, "not in this conversation")
    response = auth_client.post(f"/conversations/{bob.id}/read", {"up_to": str(foreign.id)}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "message_not_found"
    response = auth_client.post(f"/conversations/{carol.id}/read", {}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "conversation_not_found"
    response = auth_client.post(f"/conversations/{foreign.conversation_id}/read", {}, format="json")
    assert response.status_code == 404  # a conversation the caller is not in


# ---- GET /users/search ---------------------------------------------------------------------


def test_user_search_by_prefix_without_emails(auth_client, user, make_user):
    for name in ("Bobby", "bob", "bobcat", "rob"):
        make_user(name)
    inactive = make_user("bobinactive")
    inactive.is_active = False
    inactive.save()
    body = auth_client.get("/users/search", {"q": "BOB"}).json()
    assert [u["username"] for u in body] == ["bob", "Bobby", "bobcat"]  # case-insensitive order
    assert set(body[0]) == {"id", "username"}
    assert auth_client.get("/users/search", {"q": "alice"}).json() == []  # never oneself


def test_user_search_pages(auth_client, make_user):
    for n in range(5):
        make_user(f"sam{n}")
    names, url = [], "/users/search?q=sam&limit=2"
    while url:
        response = auth_client.get(url)
        names.extend(u["username"] for u in response.json())
        url = response.get("Link", "")[1:].split(">")[0].replace("http://testserver", "") or None
    assert names == [f"sam{n}" for n in range(5)]


@pytest.mark.parametrize("query", [{"q": "a b"}, {"q": "x" * 33}, {"q": "%"}])
def test_user_search_bad_query(auth_client, query):
    assert auth_client.get("/users/search", query).status_code == 400


@pytest.mark.parametrize("query", [{}, {"q": ""}])
def test_user_search_without_a_query_finds_nobody(auth_client, make_user, query):
    make_user("sam")
    response = auth_client.get("/users/search", query)
    assert response.status_code == 200 and response.json() == []


# ---- GET /messages/{id}/edits ------------------------------------------------------------


def test_edit_history_for_members_only(client_for, user, make_user):
    bob, eve = make_user("bob"), make_user("eve")
    message = send(user, bob, "v1")
    services.message_edit(user=user, message_id=message.id, content="v2")
    services.message_edit(user=user, message_id=message.id, content="v3")
    body = client_for(bob).get(f"/messages/{message.id}/edits").json()
    assert [e["previous_content"] for e in body] == ["v2", "v1"]
    assert body[0]["editor"] == str(user.id) and body[0]["edited_at"]
    assert client_for(eve).get(f"/messages/{message.id}/edits").status_code == 404
    services.message_delete(user=user, message_id=message.id)
    assert client_for(bob).get(f"/messages/{message.id}/edits").status_code == 404


def test_schema_lists_the_new_endpoints(api_client):
    paths = api_client.get("/api/schema", HTTP_ACCEPT="application/json").json()["paths"]
    for path in (
        "/conversations",
        "/conversations/{conversation_id}/read",
        "/users/search",
        "/messages/{message_id}/edits",
    ):
        assert path in paths, path
