"""The Go server's clients work here unchanged: its client's conversation
replayed (two users connect, send, edit, read, delete, reconnect), checking
every field and frame that client reads, its tokens, and its REST shapes."""

import time

import jwt
import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings

from messaging import services
from messaging.models import Message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def go_server_settings(settings):
    settings.PRESENCE_GRACE_SECONDS = 0.2
    settings.SHARE_PEER_EMAILS = True


def call(client, method: str, path: str, body=None):
    """A REST call from the async test, as the Go client makes it."""

    def run():
        response = (
            getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)
        )
        return response.status_code, response.json()

    return database_sync_to_async(run)()


def go_token(user, lifetime: float = 3600) -> str:
    """A token as the Go server signs it: only user_id and exp."""
    payload = {"user_id": str(user.id), "exp": int(time.time() + lifetime)}
    return jwt.encode(payload, django_settings.JWT_SECRET, algorithm="HS256")


async def test_the_go_clients_conversation(connect, alice, bob, client_for, go_server_settings):
    alice_rest, bob_rest = client_for(alice), client_for(bob)
    _, bob_phone = await connect(bob)
    assert bob_phone.online_users == {"type": "online_users", "user_ids": []}  # no contacts yet
    _, alice_phone = await connect(alice)

    # Send, as the Go client does: no client_id.
    await alice_phone.send({"type": "direct_message", "to": str(bob.id), "content": "Hello!"})
    received = await bob_phone.recv_type("direct_message")
    assert received["from"] == str(alice.id) and received["to"] == str(bob.id)
    assert received["sender_username"] == "alice" and received["content"] == "Hello!"
    assert isinstance(received["timestamp"], int) and received["id"]
    message_id = received["id"]
    await alice_phone.drain()

    # Now contacts: a reconnect lists who is online, and presence_change comes and goes.
    await bob_phone.close()
    offline = await alice_phone.recv_type("presence_change", timeout=3)
    assert offline == {"type": "presence_change", "user_id": str(bob.id), "online": False}
    _, bob_phone = await connect(bob)
    assert bob_phone.online_users == {"type": "online_users", "user_ids": [str(alice.id)]}
    online = await alice_phone.recv_type("presence_change")
    assert online == {"type": "presence_change", "user_id": str(bob.id), "online": True}
    await bob_phone.drain()

    # Edit by PUT: the response has both the README's and the running Go server's fields.
    status, edited = await call(alice_rest, "put", f"/messages/{message_id}", {"content": "Hello, Bob!"})
    assert status == 200
    assert edited["sender_id"] == edited["from"] == str(alice.id)
    assert edited["receiver_id"] == edited["to"] == str(bob.id)
    assert edited["created_at"] == edited["timestamp"] and edited["edited_at"]
    assert (edited["content"], edited["is_deleted"], edited["is_read"], edited["read_at"]) == (
        "Hello, Bob!",
        False,
        False,
        None,
    )
    assert (await bob_phone.recv_type("message_edited"))["content"] == "Hello, Bob!"

    # Read one message: both users hear conversation_read; history shows the read state.
    status, read = await call(bob_rest, "post", f"/messages/{message_id}/read")
    assert status == 200 and read["is_read"] is True and read["read_at"]
    for phone in (alice_phone, bob_phone):
        frame = await phone.recv_type("conversation_read")
        assert (frame["reader_id"], frame["user_id"], frame["read_at"]) == (str(bob.id), str(alice.id), read["read_at"])
    status, history = await call(alice_rest, "get", f"/chats/{bob.id}")
    assert status == 200
    assert [(item["id"], item["is_read"], item["read_at"]) for item in history] == [(message_id, True, read["read_at"])]

    # Conversations as the Go client lists them; search without q answers [].
    status, conversations = await call(alice_rest, "get", "/conversations")
    assert status == 200
    assert conversations[0]["other_user"] == {"id": str(bob.id), "username": "bob", "email": bob.email}
    assert conversations[0]["last_message"]["id"] == message_id
    assert await call(alice_rest, "get", "/users/search") == (200, [])

    # Delete by POST, twice: the retry answers the same, and nobody hears it twice.
    await alice_phone.drain()
    await bob_phone.drain()
    first = await call(alice_rest, "post", f"/messages/{message_id}/delete")
    again = await call(alice_rest, "post", f"/messages/{message_id}/delete")
    assert first[0] == again[0] == 200 and first[1]["is_deleted"] is True
    assert first[1] == again[1]
    assert [f["type"] for f in await bob_phone.drain()] == ["message_deleted"]
    assert [f["type"] for f in await alice_phone.drain()] == ["message_deleted"]


async def test_emails_of_partners_only_when_shared(alice, bob, client_for, settings):
    settings.SHARE_PEER_EMAILS = False
    status, _ = await call(client_for(alice), "post", "/conversations", {"user_id": str(bob.id)})
    assert status == 201
    status, conversations = await call(client_for(alice), "get", "/conversations")
    assert conversations[0]["other_user"] == {"id": str(bob.id), "username": "bob"}


async def test_go_tokens_only_when_accepted_and_until_credentials_change(
    alice, api_client, connect, settings, make_user
):
    token = go_token(alice)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (await call(api_client, "get", "/users/me"))[0] == 401  # off by default

    settings.JWT_ACCEPT_SEED_TOKENS = True
    assert (await call(api_client, "get", "/users/me"))[1]["id"] == str(alice.id)
    ok, phone = await connect(path=f"/ws?token={token}")
    assert ok and phone.hello["user_id"] == str(alice.id)

    # Expired, or signed with another key, or carrying other claims: refused.
    for forged in (
        go_token(alice, lifetime=-10),
        jwt.encode({"user_id": str(alice.id), "exp": int(time.time()) + 60}, "another-secret-" * 3, algorithm="HS256"),
        jwt.encode(
            {"user_id": str(alice.id), "exp": int(time.time()) + 60, "admin": True},
            django_settings.JWT_SECRET,
            algorithm="HS256",
        ),
    ):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
        assert (await call(api_client, "get", "/users/me"))[0] == 401

    # A password change revokes it, as it revokes this server's own tokens.
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    status, _ = await call(
        api_client,
        "post",
        "/users/me/password",
        {"current_password": "correct-horse-battery-staple", "new_password": "another-long-passphrase"},
    )
    assert status in (200, 204)
    assert (await call(api_client, "get", "/users/me"))[0] == 401


async def test_marking_a_message_read_that_is_not_mine_to_see(alice, bob, make_user, client_for):
    stranger = await database_sync_to_async(make_user)("stranger")
    await database_sync_to_async(services.message_send)(sender=alice, to=str(bob.id), content="private")
    message = await Message.objects.aget(content="private")
    status, body = await call(client_for(stranger), "post", f"/messages/{message.id}/read")
    assert status == 404 and body["detail"]
    status, body = await call(client_for(bob), "post", f"/messages/{message.id}/read")
    assert status == 200 and body["is_read"] is True
