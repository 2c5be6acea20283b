"""The browser client in real Chromium, against a real server: people sign up,
find each other, chat one to one and in a group, with files, and recover from
a cut connection."""

import io
import json
import os
import re
import time
import uuid

import pytest
from PIL import Image
from websockets.sync.client import connect as ws_connect

from messaging.tests.e2e.conftest import CHROMIUM, recv_type

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it", allow_module_level=True)

from playwright.sync_api import expect

PASSWORD = "a-long-browser-passphrase"


# Every page reports Content-Security-Policy violations where the test can read them.
CSP_WATCH = (
    "window.__csp = []; document.addEventListener('securitypolicyviolation',"
    " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)


class Person:
    """One person's browser page, with what the tests do to it."""

    def __init__(self, browser, server, name: str, *, sign_up: bool = True, **context) -> None:
        self.name = name
        self.server = server
        self.context = browser.new_context(**context)
        self.context.add_init_script(CSP_WATCH)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.console: list[str] = []  # console errors other than failed loads (checked below)
        self.sent: list[dict] = []  # frames the page sent on its sockets
        self.dialogs: list[str] = []  # native alert/confirm: the client must use none
        self.failed: list[str] = []  # responses >= 400 for the page's own loads
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        self.page.on(
            "response",
            lambda response: (
                self.failed.append(f"{response.status} {response.url}")
                if response.status >= 400 and response.request.resource_type != "fetch"
                else None
            ),
        )
        self.page.on(
            "console",
            lambda message: (
                self.console.append(message.text)
                if message.type == "error" and not message.text.startswith(("Failed to load resource", "WebSocket"))
                else None
            ),
        )
        self.page.on("websocket", lambda ws: ws.on("framesent", lambda payload: self.sent.append(json.loads(payload))))
        self.page.goto(server.http + "/")
        if not sign_up:
            return
        self.page.locator("#register-username").fill(name)
        self.page.locator("#register-email").fill(f"{name}@example.com")
        self.page.locator("#register-password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign up").click()
        expect(self.page.locator("#whoami")).to_have_text(name)
        expect(self.page.locator("#connection")).to_have_text("Online")

    def log_in(self) -> None:
        self.page.goto(self.server.http + "/")
        self.page.locator("#login-email").fill(f"{self.name}@example.com")
        self.page.locator("#login-password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.locator("#connection")).to_have_text("Online")

    def composer(self):
        return self.page.get_by_label("Message", exact=True)

    def say(self, text: str) -> None:
        self.composer().fill(text)
        self.composer().press("Enter")
        expect(self.message(text)).to_be_visible()

    def message(self, text: str):
        return self.page.locator("#messages li.message", has_text=text)

    def conversation(self, name: str):
        return self.page.locator("#conversations button.conversation", has_text=name)

    def open(self, name: str) -> None:
        self.conversation(name).click()
        expect(self.page.locator("#chat-title")).to_have_text(name)

    def find(self, name: str) -> None:
        self.page.get_by_label("Search people and messages").fill(name)
        self.page.get_by_role("button", name=f"Chat with {name}").click()
        expect(self.page.locator("#chat-title")).to_have_text(name)

    def clean(self) -> None:
        assert self.errors == []
        assert self.console == []
        assert self.page.evaluate("window.__csp") == []
        assert self.dialogs == []
        assert self.failed == []


def token_of(server, name: str) -> str:
    status, body = server.request("POST", "/auth/login", {"email": f"{name}@example.com", "password": PASSWORD})
    assert status == 200
    return body["token"]


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), (90, 140, 220))
    for x in range(width):
        image.putpixel((x, height // 2), (250, 200, 60))
    image.save(buffer, "PNG")
    return buffer.getvalue()


def names(count: int) -> list[str]:
    suffix = uuid.uuid4().hex[:6]
    return [f"{name}{suffix}" for name in ("alice", "bob", "carol", "dave")[:count]]


def test_two_people_chat_edit_delete_type_search_and_recover_from_a_cut(browser, stack):
    server = stack.servers[0]
    alice_name, bob_name = names(2)
    alice = Person(browser, server, alice_name, viewport={"width": 1400, "height": 900})
    bob = Person(browser, server, bob_name, viewport={"width": 390, "height": 800}, has_touch=True)  # a phone

    # A new user is told what to do.
    expect(alice.page.locator("#empty")).to_be_visible()
    expect(alice.page.locator("#empty-title")).to_have_text("Start your first conversation")
    expect(alice.page.get_by_role("button", name="Find someone")).to_be_visible()

    # Alice finds Bob and writes twice: one run of two messages under one day separator.
    alice.find(bob_name)
    expect(alice.page.locator("#peer-presence")).to_have_text("online")
    alice.say("Hello Bob")
    alice.say("Lunch on Saturday?")
    expect(alice.page.locator("#messages li.day")).to_have_text("Today")
    expect(alice.message("Hello Bob")).to_have_class(re.compile(r"\bfirst\b"))
    expect(alice.message("Lunch on Saturday?")).not_to_have_class(re.compile(r"\bfirst\b"))
    expect(alice.message("Lunch on Saturday?")).to_have_class(re.compile(r"\blast\b"))

    # Bob's list shows the conversation with a preview, an unread badge and a relative time.
    item = bob.conversation(alice_name)
    expect(item).to_have_attribute("aria-label", re.compile(f"^{alice_name}, online, 2 unread"))
    expect(item.locator(".conversation-preview")).to_have_text("Lunch on Saturday?")
    expect(item.locator(".badge")).to_have_text("2")
    expect(item.locator("time")).to_have_text("now")
    bob.open(alice_name)
    expect(bob.message("Hello Bob")).to_be_visible()
    expect(bob.conversation(alice_name).locator(".badge")).to_have_count(0)
    bob.say("Hi Alice")
    expect(alice.message("Hi Alice")).to_be_visible()
    expect(alice.message("Hello Bob").locator(".status")).to_have_attribute("title", "Read")
    expect(alice.conversation(bob_name).locator(".conversation-preview")).to_have_text("Hi Alice")

    # Typing shows on the other side, and ends as soon as the box is cleared
    # (the server's own expiry would take 5 s: this waits 2).
    bob.composer().press_sequentially("typing")
    expect(alice.page.locator("#typing")).to_have_text(f"{bob_name} is typing…")
    expect(alice.conversation(bob_name).locator(".typing-text")).to_be_visible()
    bob.composer().fill("")
    expect(alice.page.locator("#typing")).to_have_text("", timeout=2000)
    # ...and when Bob stops typing without sending: his client says so itself,
    # after 4 s (before the server's own 5 s expiry would).
    bob.composer().press_sequentially("hmm")
    expect(alice.page.locator("#typing")).to_have_text(f"{bob_name} is typing…")
    stopped_at = time.monotonic()
    sent_before = len(bob.sent)
    expect(alice.page.locator("#typing")).to_have_text("", timeout=7000)
    said_stop = [f for f in bob.sent[sent_before:] if f.get("type") == "typing" and f.get("typing") is False]
    assert said_stop, "bob's client never said it stopped typing"
    assert time.monotonic() - stopped_at < 6.5
    bob.composer().fill("")

    # Alice edits; Bob sees it live.
    alice.message("Hello Bob").hover()
    alice.page.get_by_role("button", name="Edit message: Hello Bob").click()
    alice.composer().fill("Hello, Bob!")
    alice.composer().press("Enter")
    expect(bob.message("Hello, Bob!")).to_contain_text("edited")

    # Deleting asks in the page; Cancel keeps the message, confirming deletes it for both.
    alice.message("Hello, Bob!").hover()
    alice.page.get_by_role("button", name="Delete message: Hello, Bob!").click()
    dialog = alice.page.get_by_role("dialog", name="Delete this message?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(alice.message("Hello, Bob!")).to_be_visible()
    alice.message("Hello, Bob!").hover()
    alice.page.get_by_role("button", name="Delete message: Hello, Bob!").click()
    dialog.get_by_role("button", name="Delete for everyone").click()
    expect(bob.page.locator("#messages li.deleted")).to_have_text(re.compile("Message deleted"))
    expect(alice.page.locator("#messages li.deleted")).to_have_count(1)

    # Message search finds the words and opens the conversation at the message,
    # loading older pages until it is there (35 newer messages: more than a page).
    with ws_connect(f"{server.ws}/ws?token={token_of(server, bob_name)}", open_timeout=10) as socket_:
        alice_id = alice.page.evaluate("window.chat.state.me.id")
        for n in range(35):
            socket_.send(
                json.dumps({"type": "direct_message", "to": alice_id, "content": f"filler {n}", "client_id": f"f{n}"})
            )
            recv_type(socket_, "ack")
    expect(alice.message("filler 34")).to_be_visible()
    expect(alice.message("Lunch on Saturday?")).to_have_count(1)
    alice.open(bob_name)  # reopened: only the newest page is loaded
    expect(alice.message("Lunch on Saturday?")).to_have_count(0)
    alice.page.get_by_label("Search people and messages").fill("Saturday")
    hit = alice.page.locator("#message-results button.hit", has_text="Lunch on Saturday?")
    expect(hit.locator("mark")).to_have_text("Saturday")
    hit.click()
    expect(alice.page.locator("#chat-title")).to_have_text(bob_name)
    expect(alice.message("Lunch on Saturday?")).to_be_in_viewport()
    expect(alice.message("Lunch on Saturday?")).to_have_class(re.compile(r"\bflash\b"))
    expect(alice.message("filler 0")).to_have_count(1)

    # Bob's connection drops and stays down (his tickets are refused): the state
    # and a banner say so, with Retry now. Alice writes meanwhile; once it is
    # stored, Bob comes back, is told what he missed, and sees it exactly once.
    bob.page.route("**/ws/ticket", lambda route: route.abort())
    bob.page.evaluate("window.chat.socket.cut()")
    expect(bob.page.locator("#connection")).to_have_text(re.compile("retrying"))
    expect(bob.page.locator("#banner")).to_contain_text("Connection lost")
    expect(bob.page.get_by_role("button", name="Retry now")).to_be_visible()
    alice.say("While you were cut off")
    expect(alice.message("While you were cut off").locator(".status")).to_have_attribute(
        "title", re.compile("Sent|Delivered")
    )
    bob.page.unroute("**/ws/ticket")
    bob.page.get_by_role("button", name="Retry now").click()
    expect(bob.page.locator("#connection")).to_have_text("Online", timeout=15000)
    expect(bob.page.locator("#toasts")).to_contain_text("Back online · 1 new message while you were away")
    expect(bob.page.locator("#banner")).to_be_hidden()
    expect(bob.message("While you were cut off")).to_have_count(1)
    bob.page.wait_for_timeout(500)
    expect(bob.message("While you were cut off")).to_have_count(1)

    # On the phone the conversation covers the list, and the list comes back.
    expect(bob.page.locator("#conversations")).to_be_hidden()
    bob.page.get_by_role("button", name="Back to conversations").click()
    expect(bob.conversation(alice_name)).to_be_visible()
    header = bob.page.locator(".sidebar-header").bounding_box()
    assert header["height"] < 80  # the header's buttons stay on one row on a phone

    alice.clean()
    bob.clean()


def test_a_group_of_three_with_an_image_a_dropped_file_typing_adding_and_leaving(browser, stack):
    server = stack.servers[0]
    alice_name, bob_name, carol_name, dave_name = names(4)
    alice = Person(browser, server, alice_name, viewport={"width": 1280, "height": 860})
    bob = Person(browser, server, bob_name, viewport={"width": 1280, "height": 860})
    carol = Person(browser, server, carol_name, viewport={"width": 1280, "height": 860}, color_scheme="dark")
    dave = Person(browser, server, dave_name, viewport={"width": 1280, "height": 860})

    # Alice creates the group with Bob and Carol from the "New group" dialog.
    alice.page.get_by_role("button", name="New group").first.click()
    create = alice.page.get_by_role("dialog", name="New group")
    create.get_by_label("Name").fill("Weekend trip")
    for name in (bob_name, carol_name):
        create.get_by_label("Add people").fill(name)
        create.get_by_role("button", name=f"Add {name}").click()
    expect(create.locator("#group-chosen li")).to_have_count(2)
    create.get_by_role("button", name="Create group").click()
    expect(alice.page.locator("#chat-title")).to_have_text("Weekend trip")
    expect(alice.page.locator("#peer-presence")).to_have_text("3 members")

    # An image with a caption, through the file picker: both others see the picture.
    alice.page.locator("#file-input").set_input_files(
        files=[{"name": "map.png", "mimeType": "image/png", "buffer": png(640, 400)}]
    )
    expect(alice.page.locator("#pending-files li.ready")).to_have_count(1)
    alice.say("Here is the map")
    for person in (bob, carol):
        expect(person.conversation("Weekend trip").locator(".conversation-preview")).to_have_text(
            f"{alice_name}: Here is the map"
        )
        person.open("Weekend trip")
        picture = person.message("Here is the map").locator("img[alt='map.png']")
        expect(picture).to_be_visible()
        expect(picture).to_have_js_property("naturalWidth", 640)  # the real bytes, fetched with the token
        expect(person.message("Here is the map").locator(".author")).to_have_text(alice_name)
    bob.page.get_by_role("button", name="Open image map.png").click()
    expect(bob.page.locator("#image-full")).to_have_js_property("naturalWidth", 640)
    bob.page.get_by_role("button", name="Close").click()

    # Carol drops a PDF on the conversation: Bob gets a file chip.
    carol.page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["%PDF-1.4\\n% plan\\n"], "plan.pdf", {type: "application/pdf"}));
            const chat = document.getElementById("chat");
            for (const type of ["dragenter", "dragover", "drop"]) {
                chat.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
            }
        }"""
    )
    expect(carol.page.locator("#pending-files li.ready")).to_have_count(1)
    carol.composer().press("Enter")
    expect(bob.page.get_by_role("button", name=re.compile(r"^Download plan\.pdf"))).to_be_visible()
    expect(bob.message("plan.pdf").locator(".author")).to_have_text(carol_name)

    # Typing in a group names who types, and ends when the box is cleared.
    carol.composer().press_sequentially("I will")
    expect(alice.page.locator("#typing")).to_have_text(f"{carol_name} is typing…")
    expect(bob.page.locator("#typing")).to_have_text(f"{carol_name} is typing…")
    carol.composer().fill("")
    expect(alice.page.locator("#typing")).to_have_text("", timeout=2000)

    # Alice adds Dave from the members dialog; Dave sees the group and its new messages.
    alice.page.get_by_role("button", name="Members").click()
    members = alice.page.get_by_role("dialog", name="Weekend trip")
    members.get_by_label("Add people").fill(dave_name)
    members.get_by_role("button", name=f"Add {dave_name}").click()
    expect(members.locator("#members-list li")).to_have_count(4)
    members.get_by_role("button", name="Close").click()
    expect(alice.page.locator("#peer-presence")).to_have_text("4 members")
    dave.open("Weekend trip")
    alice.say("Welcome Dave")
    expect(dave.message("Welcome Dave")).to_be_visible()

    # Bob leaves, after confirming in the page: his composer closes, the others see three members.
    bob.page.get_by_role("button", name="Members").click()
    bob.page.get_by_role("button", name="Leave group").click()
    bob.page.get_by_role("dialog", name="Leave Weekend trip?").get_by_role("button", name="Leave group").click()
    expect(bob.page.locator("#inactive")).to_be_visible()
    expect(bob.composer()).to_be_disabled()
    expect(alice.page.locator("#peer-presence")).to_have_text("3 members")  # the header follows at once
    alice.page.get_by_role("button", name="Members").click()
    expect(members.locator("#members-list li")).to_have_count(3)
    members.get_by_role("button", name="Close").click()

    # Carol's page follows the system's dark theme.
    background = carol.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert sum(int(part) for part in re.findall(r"\d+", background)[:3]) < 150, background

    for person in (alice, bob, carol, dave):
        person.clean()


def test_the_page_loads_nothing_from_the_internet(browser, stack):
    page = browser.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(stack.servers[0].http + "/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert requested and all(url.startswith(stack.servers[0].http) for url in requested)


def register(server, name: str) -> None:
    status, _ = server.request(
        "POST", "/auth/register", {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    )
    assert status == 201


def test_what_came_while_away_is_counted_once_and_a_slow_page_cannot_show_another_conversation(browser, stack):
    server = stack.servers[0]
    alice_name, bob_name, carol_name = names(3)
    alice = Person(browser, server, alice_name)
    carol = Person(browser, server, carol_name)
    register(server, bob_name)
    alice.find(bob_name)
    for n in range(3):
        alice.say(f"from alice {n}")
    carol.find(bob_name)
    carol.say("from carol")

    # Bob logs in afterwards: three unread from Alice, once (not again for the replay).
    bob = Person(browser, server, bob_name, sign_up=False, viewport={"width": 1280, "height": 860})
    bob.log_in()
    expect(bob.conversation(alice_name).locator(".badge")).to_have_text("3")
    expect(bob.page).to_have_title("(4) Chat")
    bob.page.reload()
    expect(bob.page.locator("#connection")).to_have_text("Online")
    expect(bob.conversation(alice_name).locator(".badge")).to_have_text("3")

    # Alice's page of history is held back while Bob moves on to Carol's: when it
    # finally arrives it must not land in Carol's conversation.
    held = []
    alices = bob.page.evaluate(
        f"[...window.chat.state.conversations.values()].find((c) => c.with && c.with.username === '{alice_name}').id"
    )
    bob.page.route(f"**/conversations/{alices}/messages*", lambda route: held.append(route))
    bob.conversation(alice_name).click()
    bob.page.wait_for_timeout(300)
    assert held, "the page request was not made"
    bob.open(carol_name)
    expect(bob.message("from carol")).to_be_visible()
    held[0].continue_()
    bob.page.wait_for_timeout(700)
    expect(bob.page.locator("#chat-title")).to_have_text(carol_name)
    expect(bob.page.locator("#messages li.message")).to_have_count(1)
    bob.page.unroute(f"**/conversations/{alices}/messages*")
    bob.open(alice_name)
    expect(bob.page.locator("#messages li.message")).to_have_count(3)

    for person in (alice, bob, carol):
        person.clean()
