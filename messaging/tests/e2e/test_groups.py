"""End to end: a three-person group with a file, across two processes when Redis is configured."""

import json
import urllib.request
import uuid

from messaging.tests.e2e.conftest import recv_json


def upload(server, token: str, name: str, data: bytes) -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(f"{server.http}/attachments", data=body, method="POST")
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def download(server, token: str, path: str) -> tuple[int, bytes, str]:
    request = urllib.request.Request(f"{server.http}{path}")
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, b"", ""


def next_of(socket_, kind: str) -> dict:
    while True:
        frame = recv_json(socket_)
        if frame["type"] == kind:
            return frame


def test_three_person_group_with_a_file(stack):
    servers = stack.servers
    alice, bob, carol = stack.account(servers[0]), stack.account(servers[-1]), stack.account(servers[0])
    sockets = {
        "alice": alice.connect(servers[0]),
        "bob": bob.connect(servers[-1]),
        "carol": carol.connect(servers[-1]),
        "carol-2": carol.connect(servers[0]),
    }
    status, group = servers[0].request(
        "POST", "/conversations", {"title": "Weekend", "members": [bob.id, carol.id]}, token=alice.token
    )
    assert status == 201 and group["kind"] == "group"
    for socket_ in sockets.values():
        assert next_of(socket_, "conversation_created")["conversation"] == group["id"]

    data = b"%PDF-1.4 a tiny itinerary"
    status, attachment = upload(servers[-1], alice.token, "itinerary.pdf", data)
    assert status == 201 and attachment["content_type"] == "application/pdf"
    sockets["alice"].send(
        json.dumps(
            {
                "type": "group_message",
                "conversation": group["id"],
                "content": "Plan attached",
                "attachments": [attachment["id"]],
                "client_id": "weekend-1",
            }
        )
    )
    ack = next_of(sockets["alice"], "ack")
    for name, socket_ in sockets.items():
        frame = next_of(socket_, "group_message")
        assert frame["id"] == ack["id"], name
        assert frame["attachments"][0]["id"] == attachment["id"]

    for account, server in ((bob, servers[0]), (carol, servers[-1]), (alice, servers[0])):
        status, body, content_type = download(server, account.token, attachment["url"])
        assert (status, body, content_type) == (200, data, "application/pdf")

    # Carol leaves: she keeps the file she had, and is told; the others see her go.
    assert servers[-1].request("POST", f"/conversations/{group['id']}/leave", token=carol.token)[0] == 204
    for name in ("alice", "bob", "carol"):
        assert next_of(sockets[name], "member_left")["user_id"] == carol.id
    sockets["bob"].send(json.dumps({"type": "group_message", "conversation": group["id"], "content": "bye carol"}))
    assert next_of(sockets["alice"], "group_message")["content"] == "bye carol"
    status, history = servers[0].request("GET", f"/conversations/{group['id']}/messages", token=carol.token)
    assert status == 200 and [m["content"] for m in history] == ["Plan attached"]
    assert download(servers[0], carol.token, attachment["url"])[0] == 200

    # Search finds the message for members, and only for them.
    status, found = servers[-1].request("GET", "/messages/search?q=plan", token=bob.token)
    assert status == 200 and [m["id"] for m in found] == [ack["id"]]
    outsider = stack.account(servers[0])
    assert servers[0].request("GET", "/messages/search?q=plan", token=outsider.token)[1] == []
    assert download(servers[0], outsider.token, attachment["url"])[0] == 404
