"""messaging.messages over REST: direct history, edit and delete."""

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from messaging import services
from messaging.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(user):
    return user  # auth_client is logged in as this user


def send(sender, to, content="hi"):
    return services.message_send(sender=sender, to=str(to.id), content=content).message


# ---- GET /chats/{userId} ------------------------------------------------------


def test_history_seed_shape_newest_first(auth_client, alice, bob):
    first = send(alice, bob, "Hello, how are you?")
    second = send(bob, alice, "Fine!")
    response = auth_client.get(f"/chats/{bob.id}")
    assert response.status_code == 200
    body = response.json()
    assert [m["id"] for m in body] == [str(second.id), str(first.id)]
    assert body[1] == {
        "id": str(first.id),
        "from": str(alice.id),
        "to": str(bob.id),
        "content": "Hello, how are you?",
        "timestamp": body[1]["timestamp"],
        "edited_at": None,
        "is_read": False,
        "read_at": None,
    }
    assert body[0]["from"] == str(bob.id) and body[0]["to"] == str(alice.id)
    assert body[1]["timestamp"].endswith("Z") and "." in body[1]["timestamp"]
    assert "Link" not in response and "X-Next-Cursor" not in response


def test_history_with_nobody_yet_is_empty(auth_client, bob):
    assert auth_client.get(f"/chats/{bob.id}").json() == []


def test_history_limit_default_clamp_and_validation(auth_client, alice, bob):
    for n in range(120):
        send(alice, bob, f"m{n}")
    assert len(auth_client.get(f"/chats/{bob.id}").json()) == 20
    assert len(auth_client.get(f"/chats/{bob.id}?limit=5").json()) == 5
    assert len(auth_client.get(f"/chats/{bob.id}?limit=1000").json()) == 100
    for bad in ("abc", "0", "-3", "1.5"):
        response = auth_client.get(f"/chats/{bob.id}?limit={bad}")
        assert response.status_code == 400, bad
        assert response.json()["field"] == "limit"


def test_history_before_unix_seconds_fraction_and_iso(auth_client, alice, bob):
    old = send(alice, bob, "old")
    Message.objects.filter(pk=old.pk).update(created_at=old.created_at - timedelta(hours=1))
    new = send(alice, bob, "new")
    cut = new.created_at - timedelta(minutes=30)
    for before in (str(int(cut.timestamp())), f"{cut.timestamp():.6f}", cut.isoformat().replace("+00:00", "Z")):
        body = auth_client.get(f"/chats/{bob.id}", {"before": before}).json()
        assert [m["content"] for m in body] == ["old"], before
    assert auth_client.get(f"/chats/{bob.id}", {"before": "yesterday"}).status_code == 400
    assert auth_client.get(f"/chats/{bob.id}", {"before": "nan"}).status_code == 400
    assert auth_client.get(f"/chats/{bob.id}", {"before": "1e30"}).status_code == 400
    for extreme in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        assert auth_client.get(f"/chats/{bob.id}", {"before": extreme}).status_code == 400, extreme


def test_history_cursor_headers_walk_every_page_once(auth_client, alice, bob):
    ids = {str(send(alice, bob, f"m{n}").id) for n in range(45)}
    seen, url = [], f"/chats/{bob.id}?limit=20"
    while url:
        response = auth_client.get(url)
        seen.extend(m["id"] for m in response.json())
        link = response.get("Link")
        if not link:
            assert "X-Next-Cursor" not in response
            break
        next_url = link[1 : link.index(">")]
        assert link.endswith('rel="next"')
        query = parse_qs(urlparse(next_url).query)
        assert query["cursor"] == [response["X-Next-Cursor"]]
        url = f"{urlparse(next_url).path}?{urlparse(next_url).query}"
    assert len(seen) == 45 and set(seen) == ids


# The last one decodes to "0001-01-01T00:00:00+14:00|<uuid>": out of range once in UTC.
@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "Zm9v",
        "%%%",
        "MjAyNnxub3BlCg",
        "MDAwMS0wMS0wMVQwMDowMDowMCsxNDowMHwwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA",
    ],
)
def test_history_bad_cursor_is_400(auth_client, bob, cursor):
    response = auth_client.get(f"/chats/{bob.id}", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["field"] == "cursor"


def test_history_unknown_user_404_and_malformed_400(auth_client):
    assert auth_client.get("/chats/00000000-0000-0000-0000-000000000000").json()["code"] == "user_not_found"
    response = auth_client.get("/chats/not-a-uuid")
    assert response.status_code == 400
    assert response.json()["field"] == "userId"


def test_history_of_a_deactivated_partner_is_404(auth_client, alice, bob):
    send(alice, bob, "hi")
    bob.is_active = False
    bob.save()
    response = auth_client.get(f"/chats/{bob.id}")
    assert response.status_code == 404 and response.json()["code"] == "user_not_found"


def test_a_history_page_is_four_queries(auth_client, alice, bob, django_assert_max_num_queries):
    """The token's user, the conversation with both members, the page and its files."""
    for n in range(25):
        send(alice, bob, f"m{n}")
    with django_assert_max_num_queries(4):
        assert len(auth_client.get(f"/chats/{bob.id}").json()) == 20


def test_history_only_shows_the_callers_conversation(client_for, alice, bob, make_user):
    carol = make_user("carol")
    send(alice, bob, "private")
    # Carol asking for her chat with bob sees nothing of alice's.
    assert client_for(carol).get(f"/chats/{bob.id}").json() == []


def test_history_excludes_deleted(auth_client, alice, bob):
    message = send(alice, bob, "oops")
    services.message_delete(user=alice, message_id=message.id)
    assert auth_client.get(f"/chats/{bob.id}").json() == []


def test_history_requires_auth(api_client, bob):
    assert api_client.get(f"/chats/{bob.id}").status_code == 401


# ---- PATCH/PUT /messages/{id}, DELETE/POST /messages/{id}/delete -----------


@pytest.mark.parametrize("method", ["patch", "put"])
def test_edit_returns_seed_shape(auth_client, alice, bob, method):
    message = send(alice, bob, "typo")
    response = getattr(auth_client, method)(f"/messages/{message.id}", {"content": "fixed"}, format="json")
    assert response.status_code == 200
    body = response.json()
    seed_readme = {"id", "sender_id", "receiver_id", "content", "is_deleted", "edited_at", "created_at"}
    go_server = {"from", "to", "timestamp", "is_read", "read_at"}
    assert set(body) == seed_readme | go_server
    assert body["sender_id"] == str(alice.id) and body["receiver_id"] == str(bob.id)
    assert body["content"] == "fixed" and body["is_deleted"] is False and body["edited_at"]


def test_edit_by_receiver_is_403_and_by_stranger_404(client_for, alice, bob, make_user):
    message = send(alice, bob)
    response = client_for(bob).patch(f"/messages/{message.id}", {"content": "x"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "not_sender"
    response = client_for(make_user("eve")).patch(f"/messages/{message.id}", {"content": "x"}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "message_not_found"
    assert Message.objects.get(pk=message.pk).content == "hi"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"content": ""}, "empty_content"),
        ({"content": "  "}, "empty_content"),
        ({}, "required"),
        ({"content": "x" * 5000}, "content_too_long"),
    ],
)
def test_edit_bad_content_is_400(auth_client, alice, bob, body, code):
    message = send(alice, bob)
    response = auth_client.patch(f"/messages/{message.id}", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_edit_deleted_or_unknown_message_is_404(auth_client, alice, bob):
    message = send(alice, bob)
    services.message_delete(user=alice, message_id=message.id)
    assert auth_client.patch(f"/messages/{message.id}", {"content": "x"}, format="json").status_code == 404
    unknown = "00000000-0000-0000-0000-000000000000"
    assert auth_client.patch(f"/messages/{unknown}", {"content": "x"}, format="json").status_code == 404
    assert auth_client.patch("/messages/not-a-uuid", {"content": "x"}, format="json").status_code == 404


@pytest.mark.parametrize("method", ["delete", "post"])
def test_delete_returns_seed_shape(auth_client, alice, bob, method):
    message = send(alice, bob, "Original message")
    response = getattr(auth_client, method)(f"/messages/{message.id}/delete")
    assert response.status_code == 200
    body = response.json()
    assert body["is_deleted"] is True and body["content"] == "Original message"
    assert body["receiver_id"] == str(bob.id)
    # A retried delete answers the same (see test_go_client for "no second event").
    again = auth_client.delete(f"/messages/{message.id}/delete")
    assert again.status_code == 200 and again.json() == body


def test_delete_by_receiver_is_403(client_for, alice, bob):
    message = send(alice, bob)
    assert client_for(bob).delete(f"/messages/{message.id}/delete").status_code == 403
    assert not Message.objects.get(pk=message.pk).is_deleted


def test_schema_documents_messaging_endpoints(api_client):
    paths = api_client.get("/api/schema", HTTP_ACCEPT="application/json").json()["paths"]
    assert {"get"} <= set(paths["/chats/{user_id}"])
    assert {"patch", "put"} <= set(paths["/messages/{message_id}"])
    assert {"delete", "post"} <= set(paths["/messages/{message_id}/delete"])


def test_timestamps_are_recent(auth_client, alice, bob):
    send(alice, bob)
    body = auth_client.get(f"/chats/{bob.id}").json()
    assert abs(time.time() - __import__("datetime").datetime.fromisoformat(body[0]["timestamp"]).timestamp()) < 60
