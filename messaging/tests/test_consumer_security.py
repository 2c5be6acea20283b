"""WebSocket abuse protection: rate limits, flooding, frame size, credentials, origins."""

import json

import pytest
from channels.db import database_sync_to_async

from accounts import services as account_services
from chatserver.websocket import CLOSE_CREDENTIALS_INVALID, CLOSE_RATE_LIMITED
from messaging.models import Message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def dm(to, n=0):
    return {"type": "direct_message", "to": str(to.id), "content": f"m{n}", "client_id": f"c{n}"}


def assert_refused(device, close_code: int, error_code: str) -> None:
    """The handshake completed only to say why: one error frame, then this close code."""
    assert device.refusal["type"] == "error"
    assert (device.refusal["code"], device.close_code) == (error_code, close_code)
    assert device.refusal["detail"]


async def closed_with(device) -> int:
    output = await device.ws.receive_output(timeout=3)
    while output["type"] != "websocket.close":
        output = await device.ws.receive_output(timeout=3)
    return output.get("code")


async def test_ten_frames_a_second_per_user_across_devices(connect, alice, bob, clock):
    _, phone = await connect(alice)
    _, laptop = await connect(alice)
    for n in range(10):
        await (phone if n % 2 else laptop).send(dm(bob, n))
        await (phone if n % 2 else laptop).recv_type("ack")

    await phone.send(dm(bob, 10))
    error = await phone.recv_type("error")
    assert error["code"] == "rate_limited"
    assert error["retry_after"] == pytest.approx(0.1)
    assert error["client_id"] == "c10"
    await laptop.send(dm(bob, 11))
    assert (await laptop.recv_type("error"))["code"] == "rate_limited"
    assert await Message.objects.acount() == 10

    clock.advance(0.1)  # one token back
    await phone.send(dm(bob, 12))
    assert (await phone.recv_type("ack"))["client_id"] == "c12"
    assert await Message.objects.acount() == 11


async def test_limit_is_per_user(connect, alice, bob, clock):
    _, alice_phone = await connect(alice)
    _, bob_phone = await connect(bob)
    for _ in range(11):
        await alice_phone.send({"type": "ping"})
    assert (await alice_phone.recv_type("error"))["code"] == "rate_limited"
    await bob_phone.send({"type": "ping"})
    assert await bob_phone.recv() == {"type": "pong"}


async def test_flooding_after_warnings_closes_with_4429(connect, alice, settings, clock):
    settings.WS_FLOOD_CLOSE_AFTER = 3
    _, device = await connect(alice)
    for _ in range(10 + 4):
        await device.send({"type": "ping"})
    for _ in range(10):
        assert await device.recv() == {"type": "pong"}
    for _ in range(3):
        assert (await device.recv())["code"] == "rate_limited"
    assert await closed_with(device) == CLOSE_RATE_LIMITED


async def test_oversized_frame_gets_an_error_and_the_socket_lives_on(connect, alice, bob, settings):
    settings.WS_MAX_FRAME_BYTES = 1024
    _, device = await connect(alice)
    await device.ws.send_to(
        text_data=json.dumps({"type": "direct_message", "to": str(bob.id), "content": "x" * 2000, "client_id": "c"})
    )
    error = await device.recv()
    assert error["code"] == "frame_too_large"
    assert "client_id" not in error  # never parsed
    assert await Message.objects.acount() == 0
    await device.send({"type": "ping"})
    assert await device.recv() == {"type": "pong"}


async def test_frame_just_under_the_limit_is_handled(connect, alice, settings):
    settings.WS_MAX_FRAME_BYTES = 1024
    _, device = await connect(alice)
    await device.ws.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * 990}))
    assert await device.recv() == {"type": "pong"}


async def test_multibyte_characters_count_as_bytes(connect, alice, settings):
    settings.WS_MAX_FRAME_BYTES = 1024
    _, device = await connect(alice)
    await device.ws.send_to(text_data=json.dumps({"type": "ping", "pad": "é" * 600}, ensure_ascii=False))
    assert (await device.recv())["code"] == "frame_too_large"


# ---- credentials ------------------------------------------------------------


async def test_ticket_opens_one_socket_once(connect, alice):
    ticket = await database_sync_to_async(account_services.ws_ticket_issue)(alice)
    connected, device = await connect(path=f"/ws?ticket={ticket}")
    assert connected
    await device.send({"type": "ping"})
    assert await device.recv() == {"type": "pong"}
    again, refused = await connect(path=f"/ws?ticket={ticket}")
    assert not again
    assert_refused(refused, CLOSE_CREDENTIALS_INVALID, "invalid_token")


@pytest.mark.parametrize("ticket", ["", "made-up", "x" * 43])
async def test_unknown_ticket_is_refused(connect, ticket):
    connected, device = await connect(path=f"/ws?ticket={ticket}")
    assert not connected
    assert_refused(device, CLOSE_CREDENTIALS_INVALID, "invalid_token")


async def test_ticket_dies_with_a_password_change(connect, alice):
    ticket = await database_sync_to_async(account_services.ws_ticket_issue)(alice)
    await database_sync_to_async(account_services.user_change_password)(
        alice, current_password="correct-horse-battery-staple", new_password="another-long-passphrase"
    )
    connected, device = await connect(path=f"/ws?ticket={ticket}")
    assert not connected
    assert_refused(device, CLOSE_CREDENTIALS_INVALID, "invalid_token")


async def test_ticket_expires(connect, alice, settings):
    import time

    settings.WS_TICKET_TTL_SECONDS = 1
    ticket = await database_sync_to_async(account_services.ws_ticket_issue)(alice)
    time.sleep(1.2)  # the cache's own TTL; nothing here measures speed
    connected, _ = await connect(path=f"/ws?ticket={ticket}")
    assert not connected


async def test_bearer_subprotocol_authenticates_and_is_echoed(alice, token_for):
    from channels.testing import WebsocketCommunicator

    from chatserver.asgi import application

    communicator = WebsocketCommunicator(application, "/ws", subprotocols=["bearer", token_for(alice)])
    connected, subprotocol = await communicator.connect()
    try:
        assert connected
        assert subprotocol == "bearer"  # never the token
    finally:
        await communicator.disconnect()


async def test_bearer_subprotocol_with_bad_token_is_refused(connect):
    from channels.testing import WebsocketCommunicator

    from chatserver.asgi import application

    communicator = WebsocketCommunicator(application, "/ws", subprotocols=["bearer", "nope"])
    await communicator.connect()
    try:
        assert (await communicator.receive_json_from())["code"] == "invalid_token"
        assert (await communicator.receive_output())["code"] == CLOSE_CREDENTIALS_INVALID
    finally:
        await communicator.disconnect()


async def test_password_change_closes_open_sockets_with_4401(connect, alice, token_for):
    _, phone = await connect(alice)
    _, laptop = await connect(alice)
    new_token = await database_sync_to_async(account_services.user_change_password)(
        alice, current_password="correct-horse-battery-staple", new_password="another-long-passphrase"
    )
    assert await closed_with(phone) == CLOSE_CREDENTIALS_INVALID
    assert await closed_with(laptop) == CLOSE_CREDENTIALS_INVALID
    connected, device = await connect(path=f"/ws?token={new_token}")
    assert connected
    await device.assert_silent()  # the new socket is not closed by the revocation


async def test_old_token_cannot_reconnect_after_password_change(connect, alice, token_for):
    old = token_for(alice)
    await database_sync_to_async(account_services.user_change_password)(
        alice, current_password="correct-horse-battery-staple", new_password="another-long-passphrase"
    )
    connected, device = await connect(path=f"/ws?token={old}")
    assert not connected
    assert_refused(device, CLOSE_CREDENTIALS_INVALID, "invalid_token")
    assert "revoked" in device.refusal["detail"]


# ---- origins ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (b"https://chat.example.com", True),
        (b"https://app.chat.example.com", True),
        (b"https://evil.example.com", False),
        (b"null", False),
    ],
)
async def test_allowed_origins_are_configurable(connect, alice, token_for, settings, origin, allowed):
    settings.WS_ALLOWED_ORIGINS = ["https://chat.example.com", ".chat.example.com"]
    connected, _ = await connect(path=f"/ws?token={token_for(alice)}", headers=[(b"origin", origin)])
    assert connected is allowed


async def test_no_origin_header_is_allowed(connect, alice, token_for, settings):
    settings.WS_ALLOWED_ORIGINS = ["https://chat.example.com"]
    connected, _ = await connect(path=f"/ws?token={token_for(alice)}")
    assert connected


async def test_socket_closes_when_its_token_expires(connect, alice):
    import time as time_module

    import jwt
    from django.conf import settings

    now = int(time_module.time())
    # exp is whole seconds: 2 leaves between 1 and 2 s, time enough for the hello.
    token = jwt.encode(
        {"token_type": "access", "exp": now + 2, "iat": now, "jti": "x", "user_id": str(alice.id), "ver": 0},
        settings.JWT_SECRET,
        algorithm="HS256",
    )
    connected, device = await connect(path=f"/ws?token={token}")
    assert connected
    assert await closed_with(device) == CLOSE_CREDENTIALS_INVALID


async def test_admin_deactivation_closes_sockets(connect, alice, client, make_user):
    _, device = await connect(alice)

    def deactivate_in_admin():
        admin = make_user("root")
        admin.is_staff = admin.is_superuser = True
        admin.save()
        client.force_login(admin)
        form = {"username": alice.username, "email": alice.email, "is_active": "", "date_joined": ""}
        return client.post(f"/admin/accounts/user/{alice.id}/change/", form)

    response = await database_sync_to_async(deactivate_in_admin)()
    assert response.status_code == 302
    assert await closed_with(device) == CLOSE_CREDENTIALS_INVALID


async def test_admin_password_reset_revokes_tokens(connect, alice, client, make_user, token_for):
    old_token = token_for(alice)
    _, device = await connect(alice)

    def reset_in_admin():
        admin = make_user("root")
        admin.is_staff = admin.is_superuser = True
        admin.save()
        client.force_login(admin)
        form = {"password1": "an-admin-chosen-pass-9", "password2": "an-admin-chosen-pass-9", "usable_password": "true"}
        return client.post(f"/admin/accounts/user/{alice.id}/password/", form)

    response = await database_sync_to_async(reset_in_admin)()
    assert response.status_code == 302
    assert await closed_with(device) == CLOSE_CREDENTIALS_INVALID
    connected, device = await connect(path=f"/ws?token={old_token}")
    assert not connected
    assert_refused(device, CLOSE_CREDENTIALS_INVALID, "invalid_token")


# ---- bounds on sockets and handshakes -----------------------------------------------


async def test_handshakes_per_client_address_are_limited(connect, alice, token_for, settings, clock):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "ws_connect": (3, 1.0)}
    settings.TRUSTED_PROXY_COUNT = 1
    from_address = [(b"x-forwarded-for", b"203.0.113.7")]
    for _ in range(3):
        connected, device = await connect(path=f"/ws?token={token_for(alice)}", headers=from_address)
        assert connected
        await device.close()
    connected, refused = await connect(path=f"/ws?token={token_for(alice)}", headers=from_address)
    assert not connected
    assert_refused(refused, CLOSE_RATE_LIMITED, "rate_limited")
    assert refused.refusal["retry_after"] == pytest.approx(1.0)
    # Counted before the credentials: a flood of bad tokens spends the same budget.
    connected, refused = await connect(path="/ws?token=garbage", headers=from_address)
    assert_refused(refused, CLOSE_RATE_LIMITED, "rate_limited")
    other = [(b"x-forwarded-for", b"198.51.100.1")]
    assert (await connect(path=f"/ws?token={token_for(alice)}", headers=other))[0]
    clock.advance(1.0)
    assert (await connect(path=f"/ws?token={token_for(alice)}", headers=from_address))[0]


async def test_sockets_per_user_are_bounded(connect, alice, bob, settings):
    settings.WS_MAX_SOCKETS_PER_USER = 2
    await connect(alice)
    _, second = await connect(alice)
    connected, third = await connect(alice)
    assert not connected
    assert_refused(third, 4409, "too_many_sockets")
    assert (await connect(bob))[0]  # per user
    await second.close()
    connected, again = await connect(alice)
    assert connected  # a closed socket frees its place
    await again.send({"type": "ping"})
    assert await again.recv() == {"type": "pong"}
