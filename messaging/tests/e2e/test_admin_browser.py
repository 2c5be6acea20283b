"""The admin as a moderator uses it, in real Chromium against a real server:
search, filter, delete for everyone reaching a connected client, and
deactivating a user closing their socket."""

import os
import subprocess
import sys
import uuid

import pytest
from websockets.exceptions import ConnectionClosed

from messaging.tests.e2e.conftest import CHROMIUM, ROOT, recv_type, server_env

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it", allow_module_level=True)

from playwright.sync_api import expect

ADMIN_PASSWORD = "a-long-admin-passphrase"


@pytest.fixture(scope="module")
def admin_email(database_url, stack) -> str:
    email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
    env = {**server_env(database_url, "admin"), "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD}
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput", "--email", email, "--username", email[:12]],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return email


def log_in(page, server, email: str) -> None:
    page.goto(server.http + "/admin/login/")
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_be_visible()


def run_action(page, label: str) -> None:
    page.locator("select[name=action]").select_option(label=label)
    page.get_by_role("button", name="Go").click()


def test_a_moderator_finds_and_deletes_a_message_and_deactivates_its_sender(browser, stack, admin_email, tmp_path):
    server = stack.servers[0]
    spammer, reader = stack.account(), stack.account()
    phrase = f"buy cheap watches {uuid.uuid4().hex[:6]}"
    sender_socket, reader_socket = spammer.connect(server), reader.connect(server)
    for text in (phrase, "a normal message"):
        sender_socket.send(f'{{"type": "direct_message", "to": "{reader.id}", "content": "{text}"}}')
        recv_type(reader_socket, "direct_message")

    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, server, admin_email)

    # Search by content, then narrow with a filter: the list reads sender → recipient.
    page.goto(server.http + "/admin/messaging/message/")
    page.locator("#searchbar").fill(phrase)
    page.locator("#changelist-search input[type=submit]").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"{spammer.username} → {reader.username}")
    page.get_by_role("link", name="No", exact=True).first.click()  # is deleted: No
    expect(rows).to_have_count(1)
    page.screenshot(path=str(tmp_path / "admin.png"))

    # Delete for everyone: the connected client hears it.
    rows.first.locator("input.action-select").check()
    run_action(page, "Delete for everyone (every device is told)")
    expect(page.locator("ul.messagelist")).to_contain_text("Deleted 1 message(s) for everyone.")
    deleted = recv_type(reader_socket, "message_deleted")
    assert deleted["type"] == "message_deleted"
    page.goto(server.http + "/admin/messaging/message/?q=" + phrase.replace(" ", "+"))
    expect(page.locator("#result_list tbody tr").first).to_contain_text("(deleted: content hidden)")

    # Deactivate the sender: their socket closes, their token stops working.
    page.goto(server.http + "/admin/accounts/user/")
    page.locator("#searchbar").fill(spammer.username)
    page.locator("#changelist-search input[type=submit]").click()
    page.locator("#result_list tbody tr").first.locator("input.action-select").check()
    run_action(page, "Deactivate (revokes their tokens, closes their sockets)")
    expect(page.locator("ul.messagelist")).to_contain_text("Deactivated 1 user(s)")
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            sender_socket.recv(timeout=5)
    assert closed.value.rcvd.code == 4401
    assert server.request("GET", "/users/me", token=spammer.token)[0] == 401
    assert errors == []
