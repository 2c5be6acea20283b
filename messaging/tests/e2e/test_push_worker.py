"""Push notifications end to end: a real server, a real ``manage.py
push_worker`` (relay, job queue in the database, job workers), and local
receivers that decrypt Web Push payloads and verify webhook signatures."""

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from urllib.parse import urlparse

import psycopg
import pytest
from py_vapid import Vapid

from messaging.tests.e2e.conftest import CHROMIUM, ROOT, is_postgres, recv_type, server_env
from messaging.tests.push_receivers import PushReceiver, b64url

PUSH_ENV = {
    # Long enough for a burst of three sends to be one, on a busy machine.
    "PUSH_GRACE_SECONDS": "3",
    "PUSH_POLL_SECONDS": "0.2",
    "PUSH_MIN_INTERVAL_SECONDS": "0",
    "PUSH_ALLOW_PRIVATE_TARGETS": "true",
    "PUSH_HTTP_TIMEOUT_SECONDS": "2",
    # A job whose worker died is taken up again after this long (here: soon).
    "PUSH_QUEUE_RETRY_SECONDS": "10",
}


@pytest.fixture(scope="module")
def vapid_key() -> str:
    vapid = Vapid()
    vapid.generate_keys()
    return b64url(vapid.private_key.private_numbers().private_value.to_bytes(32, "big"))


@pytest.fixture(scope="module")
def server(server_factory, vapid_key):
    return server_factory(**PUSH_ENV, WEBPUSH_VAPID_PRIVATE_KEY=vapid_key)


@pytest.fixture(scope="module")
def stack(server):
    from messaging.tests.e2e.conftest import Stack

    stack = Stack([server])
    with stack.sockets:
        yield stack


class Worker:
    def __init__(self, env: dict[str, str], log) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "push_worker"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: it can be killed outright, workers and all
        )

    def kill_outright(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None:
            return
        stopped = True
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # as systemd stops a service
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                stopped = False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # nothing of it outlives the tests
        assert stopped, "push_worker did not stop on SIGTERM"


@pytest.fixture(scope="module")
def worker(database_url, vapid_key, tmp_path_factory):
    env = {**server_env(database_url, "push"), **PUSH_ENV, "WEBPUSH_VAPID_PRIVATE_KEY": vapid_key}
    worker = Worker(env, tmp_path_factory.mktemp("worker") / "push_worker.log")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def receiver():
    receiver = PushReceiver()
    yield receiver
    receiver.close()


def query(database_url: str, sql: str) -> list[tuple]:
    if is_postgres(database_url):
        with psycopg.connect(database_url) as connection:
            return connection.execute(sql).fetchall()
    with sqlite3.connect(urlparse(database_url).path) as connection:
        return connection.execute(sql).fetchall()


def send(socket_, to, text: str) -> dict:
    """``to``: an account, or a user id."""
    to_id = to if isinstance(to, str) else to.id
    socket_.send(json.dumps({"type": "direct_message", "to": to_id, "content": text}))
    return recv_type(socket_, "ack")


def test_an_offline_user_gets_one_push_per_burst_and_an_online_user_none(stack, server, worker, receiver):
    alice, bob = stack.account(), stack.account()
    subscription = receiver.subscription("bob")
    status, _ = server.request(
        "POST", "/push/targets", {"kind": "webpush", "subscription": subscription.as_json()}, token=bob.token
    )
    assert status == 201
    status, target = server.request(
        "POST", "/push/targets", {"kind": "webhook", "url": receiver.webhook_url("bob")}, token=bob.token
    )
    assert status == 201
    receiver.set_secret("bob", target["secret"])

    alice_socket = alice.connect(server)
    acks = [send(alice_socket, bob, f"while you are away {n}") for n in range(3)]
    for path in ("/wp/bob", "/hook/bob"):
        [push] = receiver.wait_for(path, 1)
        assert (push.payload["count"], push.payload["message_id"]) == (3, acks[-1]["id"])
        assert push.payload["sender"]["username"] == alice.username and push.payload["excerpt"] is None
    assert receiver.received("/hook/bob")[0].headers["webhook-id"] == receiver.received("/hook/bob")[0].payload["id"]

    # Bob is online now: his device gets the next message, and no push follows it.
    bob_socket = bob.connect(server)
    send(alice_socket, bob, "you are here")
    while recv_type(bob_socket, "direct_message")["content"] != "you are here":
        pass  # the burst first (offline delivery), then the new message
    time.sleep(3)  # well past the grace period and a few relay passes
    assert len(receiver.received("/wp/bob")) == 1 and len(receiver.received("/hook/bob")) == 1
    assert receiver.rejected("/wp/bob") == [] and receiver.rejected("/hook/bob") == []


def test_a_worker_killed_mid_queue_loses_nothing_and_repeats_only_what_was_in_flight(
    stack, server, worker, receiver, database_url
):
    alice = stack.account()
    readers = [stack.account() for _ in range(6)]
    for n, reader in enumerate(readers):
        status, target = server.request(
            "POST", "/push/targets", {"kind": "webhook", "url": receiver.webhook_url(f"r{n}")}, token=reader.token
        )
        assert status == 201
        receiver.set_secret(f"r{n}", target["secret"])
    receiver.open.clear()  # pushes reach the receiver and wait there, unanswered
    alice_socket = alice.connect(server)
    for reader in readers:
        send(alice_socket, reader, f"hello {reader.username}")

    deadline = time.monotonic() + 30
    while not receiver.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert receiver.in_flight, "no push was on its way"
    worker.kill_outright()  # the relay, the job queue's workers, everything, with no chance to clean up
    with receiver.lock:
        in_flight_at_kill = set(receiver.in_flight)  # every push begun before the kill waits in here
    receiver.open.set()
    worker.start()

    pushes = {f"/hook/r{n}": receiver.wait_for(f"/hook/r{n}", 1, timeout=60) for n in range(len(readers))}
    assert all(pushes.values()), {path: len(got) for path, got in pushes.items()}
    ids = [push.headers["webhook-id"] for path in pushes for push in receiver.received(path)]
    repeated = {push_id for push_id in ids if ids.count(push_id) > 1}
    assert len(set(ids)) == len(readers)  # one push per reader, none lost
    assert repeated <= in_flight_at_kill  # a repeat, with the same id, only of what was being answered
    deadline = time.monotonic() + 30
    while query(database_url, "SELECT COUNT(*) FROM push_pushdelivery WHERE status = 'pending'")[0][0]:
        assert time.monotonic() < deadline, "pushes left pending"
        time.sleep(0.2)
    rows = dict(query(database_url, "SELECT status, COUNT(*) FROM push_pushdelivery GROUP BY status"))
    assert rows.get("sent", 0) >= len(readers)


@pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"), reason="Chromium is not installed; CI installs it"
)
def test_the_browser_client_turns_push_on_and_its_service_worker_shows_the_push(
    stack, server, worker, receiver, browser
):
    """The browser's side of Web Push, in Chromium. Playwright's Chromium cannot
    subscribe (no push service here, and its contexts are incognito), so the one
    thing stood in for is PushManager.subscribe(): it answers a subscription
    whose keys this test holds and whose endpoint is the local receiver. The
    client, the REST registration, the server's encrypted push and the service
    worker's notification are all the real ones."""
    from playwright.sync_api import expect

    alice = stack.account()
    subscription = receiver.subscription("browser")
    context = browser.new_context()
    context.grant_permissions(["notifications"], origin=server.http)
    context.add_init_script(
        "(() => { const json = " + json.dumps(subscription.as_json()) + ";"
        " let current = null;"
        " const fake = { endpoint: json.endpoint, toJSON: () => json,"
        "   unsubscribe: async () => { current = null; return true; } };"
        " PushManager.prototype.subscribe = async function () { current = fake; return fake; };"
        " PushManager.prototype.getSubscription = async function () { return current; }; })();"
    )
    page = context.new_page()
    name = f"b{uuid.uuid4().hex[:8]}"
    page.goto(server.http + "/")
    page.locator("#register-username").fill(name)
    page.locator("#register-email").fill(f"{name}@example.com")
    page.locator("#register-password").fill("a-long-browser-passphrase")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#connection")).to_have_text("Online")
    token = page.evaluate("sessionStorage.getItem('chat.token')")

    # Turn it on (the permission prompt is answered "allow"), with the message text.
    page.get_by_role("button", name="Notifications").click()
    dialog = page.get_by_role("dialog", name="Notifications")
    dialog.get_by_label("Push notifications on this device").check()
    expect(dialog.locator("#push-status")).to_have_text(re.compile("^On: "))
    dialog.get_by_label("Show the message text in notifications").check()
    status, targets = server.request("GET", "/push/targets", token=token)
    assert status == 200 and [(t["kind"], t["endpoint"]) for t in targets] == [("webpush", subscription.endpoint)]
    assert server.request("GET", "/users/me", token=token)[1]["push_show_content"] is True
    dialog.get_by_role("button", name="Done").click()

    # The page closes (no socket): Alice's two messages come as one push, with the text.
    page.close()
    status, me = server.request("GET", "/users/me", token=token)
    status, conversation = server.request("POST", "/conversations", {"user_id": me["id"]}, token=alice.token)
    deadline = time.monotonic() + 10
    while conversation["with"]["presence"]["online"] and time.monotonic() < deadline:  # the server saw the tab go
        time.sleep(0.1)
        conversation = server.request("GET", f"/conversations/{conversation['id']}", token=alice.token)[1]
    assert not conversation["with"]["presence"]["online"]
    alice_socket = alice.connect(server)
    send(alice_socket, me["id"], "are you there?")
    send(alice_socket, me["id"], "see you at 8")
    [push] = receiver.wait_for("/wp/browser", 1)
    assert (push.payload["count"], push.payload["excerpt"]) == (2, "see you at 8")

    # The service worker turns that very payload into a notification.
    page = context.new_page()  # a new tab: the session (its token) was the closed tab's
    page.goto(server.http + "/")
    page.locator("#login-email").fill(f"{name}@example.com")
    page.locator("#login-password").fill("a-long-browser-passphrase")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#connection")).to_have_text("Online")
    token = page.evaluate("sessionStorage.getItem('chat.token')")
    cdp = context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    page.wait_for_timeout(300)
    [registration] = [r for r in registrations if r["scopeURL"] == server.http + "/" and not r["isDeleted"]]
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": server.http, "registrationId": registration["registrationId"], "data": json.dumps(push.payload)},
    )
    shown = (
        "navigator.serviceWorker.ready.then((r) => r.getNotifications())"
        ".then((all) => all.map((n) => [n.title, n.body, n.tag]))"
    )
    deadline = time.monotonic() + 5
    while not page.evaluate(shown) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert page.evaluate(shown) == [[alice.username, "see you at 8 (+1 more)", push.payload["conversation"]["id"]]]

    # Logging out forgets this device.
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert server.request("GET", "/push/targets", token=token)[1] == []
    context.close()
