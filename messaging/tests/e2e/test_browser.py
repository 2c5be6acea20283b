"""The browser client in real Chromium: two people chat through a real server."""

import os
import re
import uuid

import pytest

from messaging.tests.e2e.conftest import CHROMIUM

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it", allow_module_level=True)

from playwright.sync_api import expect


def sign_up(page, server, username: str) -> None:
    page.goto(server.http + "/")
    page.get_by_label("Username").fill(username)
    page.locator("#register-email").fill(f"{username}@example.com")
    page.locator("#register-password").fill("a-long-browser-passphrase")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#whoami")).to_have_text(f"Signed in as {username}")
    expect(page.locator("#connection")).to_have_text("Online")


def message(page, text: str):
    return page.locator("#messages li", has_text=text)


def test_two_people_chat_edit_delete_and_recover_from_a_cut(browser, stack, tmp_path):
    server = stack.servers[0]
    suffix = uuid.uuid4().hex[:6]
    alice_name, bob_name = f"alice{suffix}", f"bob{suffix}"
    alice = browser.new_context().new_page()
    bob = browser.new_context(viewport={"width": 390, "height": 800}).new_page()  # a phone
    errors = []
    for page in (alice, bob):
        page.on("dialog", lambda dialog: dialog.accept())
        page.on("pageerror", lambda error: errors.append(str(error)))
    sign_up(alice, server, alice_name)
    sign_up(bob, server, bob_name)

    # Alice finds Bob and writes.
    alice.get_by_label("Find a user").fill(bob_name)
    alice.get_by_role("button", name=f"Chat with {bob_name}").click()
    expect(alice.locator("#peer-presence")).to_have_text("online")
    alice.get_by_label("Message", exact=True).fill("Hello Bob")
    alice.keyboard.press("Enter")
    expect(message(alice, "Hello Bob")).to_be_visible()

    # Bob sees the conversation with an unread count, opens it, answers.
    conversation = bob.get_by_role("button", name=re.compile(f"^{alice_name}.*1 unread"))
    expect(conversation).to_be_visible()
    conversation.click()
    expect(message(bob, "Hello Bob")).to_be_visible()
    bob.get_by_label("Message", exact=True).fill("Hi Alice")
    bob.get_by_role("button", name="Send").click()
    expect(message(alice, "Hi Alice")).to_be_visible()
    expect(message(alice, "Hello Bob")).to_contain_text("read")  # Bob's device read it

    # Alice edits, then deletes; Bob sees both live.
    alice.get_by_role("button", name="Edit message: Hello Bob").click()
    alice.get_by_label("Message", exact=True).fill("Hello, Bob!")
    alice.keyboard.press("Enter")
    expect(message(bob, "Hello, Bob!")).to_contain_text("edited")
    alice.get_by_role("button", name="Delete message: Hello, Bob!").click()
    expect(bob.locator("#messages li.deleted")).to_have_text(re.compile("Message deleted"))

    # Typing shows on the other side.
    bob.get_by_label("Message", exact=True).press_sequentially("typing…")
    expect(alice.locator("#typing")).to_have_text(f"{bob_name} is typing…")
    bob.get_by_label("Message", exact=True).fill("")

    # Bob's connection drops; Alice writes meanwhile; Bob recovers and sees it once.
    bob.evaluate("window.chat.socket.cut()")
    expect(bob.locator("#connection")).to_have_text(re.compile("retrying|Connecting"))
    alice.get_by_label("Message", exact=True).fill("While you were cut off")
    alice.keyboard.press("Enter")
    expect(bob.locator("#connection")).to_have_text("Online", timeout=15000)
    expect(message(bob, "While you were cut off")).to_have_count(1)
    bob.wait_for_timeout(500)
    expect(message(bob, "While you were cut off")).to_have_count(1)

    alice.screenshot(path=str(tmp_path / "chat.png"))
    assert errors == []


def test_the_page_loads_nothing_from_the_internet(browser, stack):
    page = browser.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(stack.servers[0].http + "/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert requested and all(url.startswith(stack.servers[0].http) for url in requested)
