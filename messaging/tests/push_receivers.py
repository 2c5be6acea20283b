"""Local push receivers for the tests, doing what the real ones do.

``PushReceiver`` is one HTTP server playing both parts: a Web Push service
(checks the VAPID signature, decrypts the payload with the subscription's
private key and auth secret, RFC 8291) and a team's webhook gateway (checks
the Standard Webhooks signature with the target's secret). Each path can be
told what status to answer, and to hold requests (to kill a worker mid-push).
"""

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from standardwebhooks.webhooks import Webhook


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Subscription:
    """A browser's push subscription: its key pair and auth secret."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def as_json(self) -> dict:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": self.endpoint, "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}

    def decrypt(self, body: bytes) -> dict:
        return json.loads(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    payload: dict  # decrypted (Web Push) or verified (webhook)


@dataclass
class _Route:
    status: int = 201
    subscription: Subscription | None = None
    secret: str | None = None
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # why a request did not verify


class PushReceiver:
    def __init__(self) -> None:
        self.routes: dict[str, _Route] = {}
        self.hold_seconds = 0.0
        self.open = threading.Event()  # cleared: requests wait (in flight) until it is set again
        self.open.set()
        self.in_flight: set[str] = set()  # push ids being answered right now
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver._handle(self, body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def subscription(self, name: str) -> Subscription:
        subscription = Subscription(f"{self.base}/wp/{name}")
        self.routes[f"/wp/{name}"] = _Route(subscription=subscription)
        return subscription

    def webhook_url(self, name: str) -> str:
        self.routes[f"/hook/{name}"] = _Route(status=200)
        return f"{self.base}/hook/{name}"

    def set_secret(self, name: str, secret: str) -> None:
        self.routes[f"/hook/{name}"].secret = secret

    def answer(self, path: str, status: int) -> None:
        self.routes[path].status = status

    def received(self, path: str) -> list[Received]:
        return list(self.routes[path].received)

    def rejected(self, path: str) -> list[str]:
        return list(self.routes[path].rejected)

    def wait_for(self, path: str, count: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.routes[path].received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        route = self.routes.get(handler.path)
        headers = {key.lower(): value for key, value in handler.headers.items()}
        if route is None:
            return self._reply(handler, 404)
        try:
            payload = self._verify(route, headers, body)
        except Exception as error:  # a receiver refuses what it cannot verify, and says why
            route.rejected.append(f"{type(error).__name__}: {error}")
            return self._reply(handler, 400)
        push_id = payload.get("id", "")
        with self.lock:
            self.in_flight.add(push_id)
        try:
            self.open.wait(60)
            if self.hold_seconds:
                time.sleep(self.hold_seconds)
            route.received.append(Received(handler.path, headers, payload))
            self._reply(handler, route.status)
        finally:
            with self.lock:
                self.in_flight.discard(push_id)

    def _verify(self, route: _Route, headers: dict[str, str], body: bytes) -> dict:
        if route.subscription is not None:
            authorization = headers["authorization"]  # "vapid t=<jwt>,k=<public key>"
            if not Vapid02.verify(authorization):
                raise ValueError("bad VAPID signature")
            if headers.get("content-encoding") != "aes128gcm":
                raise ValueError("not aes128gcm")
            return route.subscription.decrypt(body)
        Webhook(route.secret).verify(body, headers)  # raises on a bad signature or an old timestamp
        return json.loads(body)

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int) -> None:
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
