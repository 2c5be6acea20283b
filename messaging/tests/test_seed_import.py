"""``import_seed_database`` against a database built from the Go server's schema
and a sample it produced (``go_seed/``: three users, 27 direct messages with
edits, deletes and reads; passwords in the sample's header)."""

import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from accounts.models import User
from messaging.models import Conversation, Membership, Message

SEED = Path(__file__).parent / "go_seed"
PASSWORDS = {
    "alice@example.com": "alice-passphrase-1",
    "bob@example.com": "bob-passphrase-2",
    "carol@example.com": "carol-passphrase-3",
}
ALICE, BOB, CAROL = (
    uuid.UUID("d3034e32-c8e8-4be2-b4a2-0a5cc3ad3917"),
    uuid.UUID("7d8f0911-da95-4ee2-abd0-a096d5f45bf6"),
    uuid.UUID("080035f3-225e-4f77-b14b-be5b2449a210"),
)

pytestmark = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="the Go server's database is PostgreSQL: runs in the PostgreSQL pass (DATABASE_URL)",
)


def _server_url(database: str) -> str:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgresql://{db['USER']}{password}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{database}"


@pytest.fixture
def go_database():
    """A fresh database holding the Go server's schema and sample; its URL."""
    name = f"go_seed_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_server_url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _server_url(name)
    try:
        with psycopg.connect(url, autocommit=True) as source:
            source.execute((SEED / "seed-schema.sql").read_text())
            source.execute((SEED / "seed-sample.sql").read_text())
        yield url
    finally:
        with psycopg.connect(_server_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def go_rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as source:
        return source.execute(query, params).fetchall()


def run_import(url: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("import_seed_database", url, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_users_log_in_with_their_go_passwords(go_database, api_client, settings):
    # The suite hashes with a fast hasher; production also lists the plain bcrypt
    # one for Go's hashes (chatserver/tests/test_settings.py checks that).
    settings.PASSWORD_HASHERS = [*settings.PASSWORD_HASHERS, "django.contrib.auth.hashers.BCryptPasswordHasher"]
    output = run_import(go_database)
    assert "Users: 3 imported" in output and "Messages: 27 imported" in output
    for (pk, username, email, created), user in zip(
        go_rows(go_database, "SELECT id, username, email, created_at FROM users ORDER BY created_at"),
        User.objects.order_by("created"),
        strict=True,
    ):
        assert (user.id, user.username, user.email, user.created) == (pk, username, email, created)
        assert user.password.startswith("bcrypt$$2a$")
    for email, password in PASSWORDS.items():
        response = api_client.post("/auth/login", {"email": email, "password": password}, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["token"]
        # Upgraded to this server's hasher at the first login.
        assert User.objects.get(email=email).password.startswith("bcrypt_sha256$")
        assert api_client.post("/auth/login", {"email": email, "password": password}, format="json").status_code == 200
    assert (
        api_client.post("/auth/login", {"email": "bob@example.com", "password": "wrong"}, format="json").status_code
        == 401
    )


@pytest.mark.django_db(transaction=True)
def test_history_pages_keep_ids_times_edits_deletes_and_reads(go_database, client_for):
    run_import(go_database)
    alice = User.objects.get(pk=ALICE)
    expected = go_rows(
        go_database,
        "SELECT id, sender_id, receiver_id, content, edited_at, is_read, read_at, created_at FROM messages"
        " WHERE NOT is_deleted AND ((sender_id = %s AND receiver_id = %s) OR (sender_id = %s AND receiver_id = %s))"
        " ORDER BY created_at DESC, id DESC",
        (str(ALICE), str(BOB), str(BOB), str(ALICE)),
    )
    client = client_for(alice)
    seen, cursor = [], None
    while True:
        response = client.get(f"/chats/{BOB}", {"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200
        seen += response.json()
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            break
    assert [item["id"] for item in seen] == [str(row[0]) for row in expected]
    for item, (_, sender, receiver, content, edited_at, is_read, read_at, created_at) in zip(
        seen, expected, strict=True
    ):
        assert (item["from"], item["to"], item["content"]) == (sender, receiver, content)
        assert item["timestamp"] == created_at.isoformat().replace("+00:00", "Z")  # microseconds kept
        assert item["edited_at"] == (edited_at.isoformat().replace("+00:00", "Z") if edited_at else None)
        assert item["is_read"] is is_read
        assert item["read_at"] == (read_at.isoformat().replace("+00:00", "Z") if read_at else None)
    # Deleted ones stay deleted (kept, never shown).
    deleted = {row[0] for row in go_rows(go_database, "SELECT id FROM messages WHERE is_deleted")}
    assert deleted and set(Message.objects.filter(is_deleted=True).values_list("id", flat=True)) == deleted


@pytest.mark.django_db(transaction=True)
def test_conversations_seqs_and_unread_counts(go_database, client_for):
    with psycopg.connect(go_database, autocommit=True) as source:  # two more, not read yet
        source.execute(
            "INSERT INTO messages (sender_id, receiver_id, content, created_at)"
            " VALUES (%s, %s, 'unread one', now()), (%s, %s, 'unread two', now() + interval '1 second')",
            (str(ALICE), str(CAROL), str(ALICE), str(CAROL)),
        )
    run_import(go_database)
    assert Conversation.objects.count() == 3 and Membership.objects.count() == 6
    for conversation in Conversation.objects.all():
        messages = list(conversation.messages.order_by("seq"))
        assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
        assert [(m.created_at, m.id) for m in messages] == sorted((m.created_at, m.id) for m in messages)
        assert conversation.last_seq == len(messages)
        assert conversation.last_message_at == messages[-1].created_at
    # Unread: what others sent after the member's latest read message.
    total = 0
    for user in User.objects.all():
        for item in client_for(user).get("/conversations").json():
            conversation = Conversation.objects.get(pk=item["id"])
            received = list(conversation.messages.exclude(sender=user).order_by("seq"))
            last_read = max((m.seq for m in received if m.read_at is not None), default=0)
            expected = sum(1 for m in received if m.seq > last_read and not m.is_deleted)
            assert item["unread_count"] == expected
            total += expected
    # The sample's conversations were each read up to their last message (older
    # messages left unflagged count as read: a read position, not flags).
    assert total == 2


@pytest.mark.django_db(transaction=True)
def test_running_it_again_imports_only_what_is_new(go_database):
    run_import(go_database)
    with psycopg.connect(go_database, autocommit=True) as source:
        source.execute(
            "INSERT INTO messages (sender_id, receiver_id, content, created_at) VALUES (%s, %s, 'one more', now())",
            (str(CAROL), str(ALICE)),
        )
    output = run_import(go_database)
    assert "Users: 0 imported, 3 imported before" in output
    assert "Messages: 1 imported, 27 imported before" in output
    newest = Message.objects.get(content="one more")
    assert newest.seq == newest.conversation.last_seq == newest.conversation.messages.count()


@pytest.mark.django_db(transaction=True)
def test_a_database_it_does_not_recognise_is_refused(go_database):
    with psycopg.connect(go_database, autocommit=True) as source:
        source.execute("ALTER TABLE messages DROP COLUMN is_read")
    with pytest.raises(CommandError, match=r"not a Go chat server database.*messages\.is_read.*Nothing was imported"):
        run_import(go_database)
    assert not User.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_conflict_leaves_nothing_behind(go_database, make_user):
    make_user("someone", email="CAROL@example.com")  # registered here meanwhile, another id
    with pytest.raises(CommandError, match=r"carol@example\.com.*Nothing was imported"):
        run_import(go_database)
    assert User.objects.count() == 1 and not Message.objects.exists() and not Conversation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_odd_rows_are_reported_not_imported(go_database):
    with psycopg.connect(go_database, autocommit=True) as source:
        source.execute(
            "INSERT INTO users (username, email, password_hash, created_at)"
            " VALUES ('ALICE', 'a2@example.com', 'x', now())"
        )
        source.execute(
            "INSERT INTO messages (sender_id, receiver_id, content, created_at) VALUES"
            " (%s, %s, 'note to self', now()), (%s, 'not-a-uuid', 'lost', now()), (%s, %s, '', now())",
            (str(ALICE), str(ALICE), str(ALICE), str(BOB), str(ALICE)),
        )
    output = run_import(go_database)
    assert "username 'ALICE' is 'ALICE-2' here" in output
    assert "skipped 1 messages to oneself" in output
    assert "skipped 1 messages with a sender or receiver that is not a user" in output
    assert "1 empty messages kept" in output
    assert Message.objects.count() == 28


@pytest.mark.django_db(transaction=True)
async def test_devices_resume_after_the_import(go_database, connect, token_for):
    from asgiref.sync import sync_to_async

    await sync_to_async(run_import)(go_database)
    alice, bob = await User.objects.aget(pk=ALICE), await User.objects.aget(pk=BOB)
    ok, phone = await connect(bob)
    assert ok
    # Imported messages are history, not pushed again.
    assert [frame["type"] for frame in await phone.drain()] == []
    await phone.close()
    ok, laptop = await connect(alice)
    await laptop.send({"type": "direct_message", "to": str(BOB), "content": "after the switch", "client_id": "c1"})
    ack = await laptop.recv_type("ack")
    # Bob was offline: the message waits for his next connect (offline delivery)...
    ok, phone = await connect(bob)
    frame = await phone.recv_type("direct_message")
    assert (frame["id"], frame["content"], frame["sender_username"]) == (ack["id"], "after the switch", "alice")
    seq = frame["seq"]
    await phone.close()
    await laptop.send({"type": "direct_message", "to": str(BOB), "content": "while away", "client_id": "c2"})
    await laptop.recv_type("ack")
    # ... and a device resuming from its last seq gets what came after it.
    ok, phone = await connect(path=f"/ws?token={token_for(bob)}&since={seq}")
    resumed = await phone.recv_type("direct_message")
    assert resumed["content"] == "while away" and resumed["seq"] > seq
    conversation = await Conversation.objects.aget(pk=frame["conversation"])
    assert conversation.last_seq == await conversation.messages.acount()
