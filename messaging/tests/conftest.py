import asyncio
import contextlib

import pytest
from channels.testing import WebsocketCommunicator

import chatserver.db
from chatserver.asgi import application
from messaging.frames import shape_problems


class Device:
    """A connected WebSocket client of one user (a communicator plus helpers)."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.ws = communicator

    async def send(self, frame: dict) -> None:
        await self.ws.send_json_to(frame)

    async def recv(self, timeout: float = 3) -> dict:
        """The next frame, which must be one of messaging.frames' shapes."""
        frame = await self.ws.receive_json_from(timeout=timeout)
        assert shape_problems(frame) == [], frame
        return frame

    async def recv_type(self, frame_type: str, timeout: float = 3) -> dict:
        """Next frame of this type, skipping others (e.g. the echo of one's own message)."""
        while True:
            frame = await self.recv(timeout)
            if frame["type"] == frame_type:
                return frame

    async def drain(self, quiet: float = 0.3) -> list[dict]:
        """Every frame until none comes for ``quiet`` seconds: for tests that must
        also show that nothing else (a duplicate, a stray event) was sent."""
        frames = []
        while not await self.ws.receive_nothing(timeout=quiet):
            frames.append(await self.recv())
        return frames

    async def drain_types(self, quiet: float = 0.3) -> list[str]:
        """The types of :meth:`drain`'s frames, sorted (their order across event kinds may vary)."""
        return sorted(frame["type"] for frame in await self.drain(quiet))

    async def assert_silent(self, timeout: float = 0.3) -> None:
        assert await self.ws.receive_nothing(timeout=timeout), "expected no frame"

    async def close(self) -> None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.ws.disconnect()


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
async def connect(token_for):
    """``await connect(user)`` opens an authenticated socket; all are closed at teardown."""
    opened: list[Device] = []

    async def open_device(user=None, *, path: str | None = None, headers=None) -> tuple[bool, Device]:
        if path is None:
            path = f"/ws?token={token_for(user)}"
        communicator = WebsocketCommunicator(application, path, headers=headers or [])
        accepted, close_code = await communicator.connect(timeout=5)
        device = Device(communicator)
        opened.append(device)
        device.refusal, device.close_code = None, None if accepted else close_code
        if not accepted:  # refused before the handshake (a foreign origin)
            return False, device
        first = await device.recv()
        if first["type"] != "hello":
            # Refused after the handshake, so the client learns why: one error frame, then a close.
            assert first["type"] == "error", first
            device.refusal = first
            device.close_code = (await communicator.receive_output(timeout=3))["code"]
            return False, device
        device.hello = first
        device.online_users = await device.recv()  # always right after hello
        assert device.online_users["type"] == "online_users", device.online_users
        return True, device

    yield open_device
    for device in opened:
        await device.close()
    # Calls the sockets left running on the database threads finish while the
    # test may still use the database.
    await asyncio.to_thread(chatserver.db.shutdown)
