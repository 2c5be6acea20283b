"""The deployment in deploy/: app processes (``manage.py serve``) behind a real
nginx using deploy/nginx/chat-locations.conf, the chat flow through it, and a
rolling restart (SIGTERM to one process) that loses no acknowledged message."""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from messaging.tests.e2e.conftest import ROOT, Server, Stack, free_port, past_hello, recv_type, wait_until_up

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(
    not os.path.exists(NGINX), reason="nginx is not installed (apt-get install nginx); CI installs it"
)

NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream chat_app {{
        {servers}
        keepalive 8;
    }}
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        include {locations};
    }}
}}
"""


@pytest.fixture(scope="module")
def app_servers(server_factory) -> list[Server]:
    """Two production processes when Redis joins them; one otherwise."""
    count = 2 if os.environ.get("REDIS_URL") else 1
    return [server_factory(kind="uvicorn", TRUSTED_PROXY_COUNT="1") for _ in range(count)]


@pytest.fixture(scope="module")
def edge(app_servers, tmp_path_factory) -> Iterator[Server]:
    """nginx on a free port, load-balancing over the app processes."""
    directory = tmp_path_factory.mktemp("nginx")
    directory.chmod(0o755)
    port = free_port()
    config = directory / "nginx.conf"
    config.write_text(
        NGINX_CONF.format(
            dir=directory,
            port=port,
            user="user root;" if os.geteuid() == 0 else "",
            servers="\n        ".join(f"server 127.0.0.1:{server.port};" for server in app_servers),
            locations=ROOT / "deploy" / "nginx" / "chat-locations.conf",
        )
    )
    log = directory / "stdout.log"
    process = subprocess.Popen(
        [NGINX, "-c", str(config), "-p", str(directory)], stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    server = Server(port, process, log)
    wait_until_up(server)
    yield server
    process.terminate()
    process.wait(10)


@pytest.fixture
def stack(edge) -> Iterator[Stack]:
    stack = Stack([edge])
    with stack.sockets:
        yield stack


def send_dm(socket_, to: str, content: str, client_id: str) -> None:
    socket_.send(json.dumps({"type": "direct_message", "to": to, "content": content, "client_id": client_id}))


def test_chat_flow_through_nginx(stack, edge):
    alice, bob = stack.account(), stack.account()
    # Several sockets each, so with two upstreams both processes hold some.
    alice_devices = [alice.connect(edge) for _ in range(3)]
    bob_devices = [bob.connect(edge) for _ in range(3)]

    send_dm(alice_devices[0], bob.id, "through the proxy", "edge-1")
    ack = recv_type(alice_devices[0], "ack")
    for device in bob_devices:
        frame = recv_type(device, "direct_message")
        assert (frame["id"], frame["content"]) == (ack["id"], "through the proxy")
    for device in alice_devices[1:]:
        assert recv_type(device, "direct_message")["id"] == ack["id"]

    status, _ = edge.request("PUT", f"/messages/{ack['id']}", {"content": "edited"}, token=alice.token)
    assert status == 200
    for device in bob_devices:
        assert recv_type(device, "message_edited")["content"] == "edited"

    status, history = edge.request("GET", f"/chats/{alice.id}", token=bob.token)
    assert status == 200
    assert [m["content"] for m in history] == ["edited"]


def test_request_id_is_nginx_s_and_reaches_the_app(edge):
    with urllib.request.urlopen(edge.http + "/healthz", timeout=5) as response:
        request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0


def test_metrics_are_not_served_at_the_edge(edge):
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(edge.http + "/metrics", timeout=5)
    assert raised.value.code == 404


def test_body_over_the_proxy_limit_is_a_json_413(stack, edge):
    alice = stack.account()
    request = urllib.request.Request(
        edge.http + "/attachments",
        data=b"x" * (12 * 1024 * 1024),
        method="POST",
        headers={"Authorization": f"Bearer {alice.token}", "Content-Type": "application/octet-stream"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 413
    assert json.loads(raised.value.read())["code"] == "request_too_large"


def full_history(edge: Server, token: str, other: str) -> list[dict]:
    """Every message of a chat, following X-Next-Cursor."""
    messages, url = [], f"{edge.http}/chats/{other}?limit=100"
    while url:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            messages += json.loads(response.read())
            cursor = response.headers.get("X-Next-Cursor")
        url = f"{edge.http}/chats/{other}?limit=100&cursor={cursor}" if cursor else None
    return messages


class Sender:
    """Bob's client: sends numbered messages, resends an unacknowledged one with
    the same client_id after reconnecting (as a real client would)."""

    def __init__(self, edge: Server, bob, alice_id: str, first: Server) -> None:
        self.edge, self.bob, self.alice_id = edge, bob, alice_id
        self.first = first  # the first socket goes straight to this process
        self.acked: dict[str, str] = {}  # client_id -> message id
        self.reconnects = 0
        self.close_codes: list[int] = []
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            number = 0
            socket_ = self._connect(self.first)
            while not self.stop.is_set():
                client_id = f"roll-{number}"
                while client_id not in self.acked:
                    try:
                        send_dm(socket_, self.alice_id, f"message {number}", client_id)
                        frame = recv_type(socket_, "ack", timeout=5)
                        self.acked[frame["client_id"]] = frame["id"]
                    except ConnectionClosed as closed:
                        self.close_codes.append(closed.rcvd.code if closed.rcvd else 1006)
                        self.reconnects += 1
                        socket_ = self._connect()
                number += 1
                time.sleep(0.02)
            socket_.close()
        except BaseException as error:  # surfaced by the test
            self.errors.append(error)

    def _connect(self, server: Server | None = None):
        deadline = time.monotonic() + 10
        while True:
            try:
                socket_ = ws_connect(f"{(server or self.edge).ws}/ws?token={self.bob.token}", open_timeout=5)
                past_hello(socket_)
                return socket_
            except (OSError, ConnectionClosed, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def test_sigterm_closes_sockets_with_1012_and_loses_no_acknowledged_message(edge, app_servers, stack, server_factory):
    if len(app_servers) < 2:
        pytest.skip("needs REDIS_URL: a rolling restart needs a second process to move to")
    alice, bob = stack.account(), stack.account()
    victim, survivor = app_servers
    # Alice stays on the surviving process; Bob starts on the one that is stopped
    # and reconnects through nginx.
    alice_socket = alice.connect(survivor)
    sender = Sender(edge, bob, alice.id, first=victim)
    thread = threading.Thread(target=sender.run)
    thread.start()

    # Plain requests keep flowing through nginx during the restart.
    statuses: list[int] = []

    def poll() -> None:
        while thread.is_alive():
            statuses.append(edge.request("GET", "/users/me", token=alice.token)[0])
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()

    time.sleep(1)
    victim.process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal after its graceful shutdown.
    assert victim.process.wait(30) in (0, -signal.SIGTERM)
    assert "Finished server process" in victim.log.read_text()
    time.sleep(1)
    # The restarted process takes its place (same port) and traffic goes on.
    replacement = server_factory(kind="uvicorn", TRUSTED_PROXY_COUNT="1")
    time.sleep(1)
    sender.stop.set()
    thread.join(30)
    poller.join(30)
    assert not sender.errors, sender.errors

    # Every acknowledged message is stored exactly once, in order.
    stored_ids = [m["id"] for m in full_history(edge, alice.token, bob.id)]
    assert sorted(stored_ids) == sorted(sender.acked.values())
    assert len(set(stored_ids)) == len(stored_ids)
    assert len(sender.acked) > 20
    # Bob's socket on the stopped process was told to reconnect elsewhere.
    assert sender.close_codes and set(sender.close_codes) <= {1012, 1001}, sender.close_codes
    # Alice saw each message once, live, across the restart.
    received = []
    while len(received) < len(stored_ids):
        frame = recv_type(alice_socket, "direct_message")
        received.append(frame["id"])
    assert sorted(received) == sorted(stored_ids)
    assert all(status == 200 for status in statuses), sorted(set(statuses))
    assert replacement.process.poll() is None
