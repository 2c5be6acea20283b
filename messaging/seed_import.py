"""Import a Go chat server's PostgreSQL database (``manage.py import_seed_database``).

The Go server keeps two tables: ``users`` (bcrypt hashes) and ``messages``
(one row per direct message, with ``is_read``/``read_at``, soft deletes and
``edited_at``). This builds what this server keeps beside them: one direct
conversation per pair with both memberships, each message's seq in its
conversation (in the order the Go server stored them: ``created_at``, then
id), and each member's read and delivery positions.

Decisions, each reported in the summary:

- Users keep their ids, emails, usernames, created times and password hashes
  (``bcrypt$<hash>``: Django verifies Go's ``$2a$`` hashes and upgrades them
  to this server's hasher on the next login). Usernames this server would
  refuse at registration are kept as they are, except that one differing
  from an earlier one only by case gets a ``-2`` (``-3``...) suffix, as
  usernames are unique regardless of case here, and one longer than 32
  characters is cut. Two emails equal regardless
  of case (or an email already used by another user here) stop the import:
  login is by email, so which account keeps it is the operator's call.
- Messages keep their ids, contents (empty ones too), timestamps with
  their microseconds, ``edited_at``, deletes and read times (a message read
  without a time gets its creation time). Messages to oneself, and messages
  whose sender or receiver is not a user, are not imported: this server has
  no conversation for them.
- Imported messages count as delivered: they are history, not pushed to a
  device on its next connect. Unread counts follow the Go server's
  ``is_read`` (a member's read position is their latest read message).
- The whole import is one transaction: a failure leaves nothing behind.
  Running it again imports only users and messages not imported before
  (changes to messages already imported are not carried over).
"""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone
from psycopg import sql

from accounts.models import USERNAME_MAX_LENGTH, User, normalize_email
from messaging.models import Conversation, Membership, Message

USER_COLUMNS = ("id", "username", "email", "password_hash", "created_at", "updated_at")
MESSAGE_COLUMNS = (
    "id",
    "sender_id",
    "receiver_id",
    "content",
    "is_deleted",
    "edited_at",
    "is_read",
    "read_at",
    "created_at",
)
BATCH = 2000


class NotASeedDatabase(Exception):
    """The source is not a database the Go server made (or cannot be read)."""


class ImportConflict(Exception):
    """Data the import cannot place without an operator's decision."""


@dataclass
class ImportReport:
    users_imported: int = 0
    users_present: int = 0
    usernames_renamed: list[tuple[str, str]] = field(default_factory=list)
    messages_imported: int = 0
    messages_present: int = 0
    messages_to_self: int = 0
    messages_without_user: int = 0
    messages_empty: int = 0
    messages_without_time: int = 0
    conversations_created: int = 0


def import_seed_database(source_url: str, progress: Callable[[str], None] = lambda line: None) -> ImportReport:
    """Import users and messages from the Go server's database at ``source_url``."""
    try:
        with psycopg.connect(source_url, autocommit=False) as source:
            _check_schema(source)
            with transaction.atomic():
                report = ImportReport()
                _import_users(source, report, progress)
                _import_messages(source, report, progress)
                return report
    except psycopg.Error as error:
        raise NotASeedDatabase(f"Cannot read the source database: {error}".strip()) from None


def _check_schema(source: psycopg.Connection) -> None:
    rows = source.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name IN ('users', 'messages')"
    ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    missing = [
        f"{table}.{column}"
        for table, columns in (("users", USER_COLUMNS), ("messages", MESSAGE_COLUMNS))
        for column in columns
        if column not in found.get(table, set())
    ]
    if missing:
        raise NotASeedDatabase(
            "This is not a Go chat server database (public.users and public.messages as in its schema); "
            f"missing: {', '.join(missing)}."
        )


def _select(columns: tuple[str, ...], table: str) -> sql.Composed:
    """The table's rows in the order the Go server stored them."""
    return sql.SQL("SELECT {} FROM {} ORDER BY created_at NULLS LAST, id").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier("public", table)
    )


def _rows(source: psycopg.Connection, query: sql.Composed) -> Iterator[tuple]:
    """Rows of a large table in batches, through a server-side cursor."""
    with source.cursor(name=f"seed_import_{uuid.uuid4().hex}") as cursor:
        cursor.itersize = BATCH
        cursor.execute(query)
        yield from cursor


def _import_users(source: psycopg.Connection, report: ImportReport, progress: Callable[[str], None]) -> None:
    present = set(User.objects.values_list("id", flat=True))
    emails = {email: pk for pk, email in User.objects.values_list("id", "email")}
    usernames = {name for name in User.objects.annotate(low=Lower("username")).values_list("low", flat=True)}
    new: list[User] = []
    times: dict[uuid.UUID, tuple[datetime, datetime]] = {}
    clashes: list[str] = []
    now = timezone.now()
    query = _select(USER_COLUMNS, "users")
    for pk, username, email, password_hash, created_at, updated_at in _rows(source, query):
        pk = uuid.UUID(str(pk))
        if pk in present:
            report.users_present += 1
            continue
        email = normalize_email(email)
        if email in emails:
            clashes.append(email)
            continue
        emails[email] = pk
        name = _free_username(username, usernames)
        if name != username:
            report.usernames_renamed.append((username, name))
        new.append(User(id=pk, username=name, email=email, password=f"bcrypt${password_hash}"))
        times[pk] = (created_at or now, updated_at or created_at or now)
    if clashes:
        raise ImportConflict(
            "These emails belong to another user here, or to two Go users differing only by case "
            f"(login is by email): {', '.join(sorted(set(clashes)))}. Resolve them in one database and run again."
        )
    User.objects.bulk_create(new, batch_size=BATCH)
    # auto_now_add/auto_now set the times on insert: put the Go server's back.
    for user in new:
        user.created, user.updated = times[user.pk]
    User.objects.bulk_update(new, ["created", "updated"], batch_size=BATCH)
    report.users_imported = len(new)
    progress(f"users: {len(new)} imported, {report.users_present} already here")


def _free_username(username: str, taken: set[str]) -> str:
    """The username, or the nearest free one: cut to this server's length, with
    ``-2``, ``-3``... when it differs from a taken one only by case."""
    name, suffix = username[:USERNAME_MAX_LENGTH], 1
    while name.lower() in taken:
        suffix += 1
        name = f"{username[: USERNAME_MAX_LENGTH - len(str(suffix)) - 1]}-{suffix}"
    taken.add(name.lower())
    return name


@dataclass
class _Thread:
    """One direct conversation being filled."""

    conversation: Conversation
    created: bool
    last_seq: int
    last_at: datetime | None
    read_seq: dict[uuid.UUID, int]


def _import_messages(source: psycopg.Connection, report: ImportReport, progress: Callable[[str], None]) -> None:
    users = set(User.objects.values_list("id", flat=True))
    present = set(Message.objects.values_list("id", flat=True))
    total = source.execute("SELECT count(*) FROM public.messages").fetchone()[0]
    threads: dict[tuple[uuid.UUID, uuid.UUID], _Thread] = {}
    batch: list[Message] = []
    now = timezone.now()
    query = _select(MESSAGE_COLUMNS, "messages")
    for done, row in enumerate(_rows(source, query), start=1):
        pk, sender_id, receiver_id, content, is_deleted, edited_at, is_read, read_at, created_at = row
        pk = uuid.UUID(str(pk))
        if pk in present:
            report.messages_present += 1
            continue
        try:
            sender, receiver = uuid.UUID(sender_id), uuid.UUID(receiver_id)
        except (TypeError, ValueError):
            sender = receiver = None
        if sender is None or sender not in users or receiver not in users:
            report.messages_without_user += 1
            continue
        if sender == receiver:
            report.messages_to_self += 1
            continue
        if created_at is None:
            report.messages_without_time += 1
            created_at = now
        if not content:
            report.messages_empty += 1
        pair = Conversation.direct_pair(sender, receiver)
        thread = threads.get(pair) or _open_thread(threads, sender, receiver, report)
        thread.last_seq += 1
        thread.last_at = created_at
        if is_read:
            read_at = read_at or created_at
            thread.read_seq[receiver] = thread.last_seq
        batch.append(
            Message(
                id=pk,
                conversation=thread.conversation,
                sender_id=sender,
                seq=thread.last_seq,
                content=content or "",
                created_at=created_at,
                edited_at=edited_at,
                is_deleted=bool(is_deleted),
                read_at=read_at if is_read else None,
            )
        )
        if len(batch) >= BATCH:
            _flush(batch, report)
            progress(f"messages: {done}/{total}")
    _flush(batch, report)
    _finish_threads(threads)
    progress(f"messages: {report.messages_imported} imported, {report.messages_present} already here")


def _open_thread(
    threads: dict[tuple[uuid.UUID, uuid.UUID], _Thread], sender: uuid.UUID, receiver: uuid.UUID, report: ImportReport
) -> _Thread:
    user_a, user_b = Conversation.direct_pair(sender, receiver)
    conversation = Conversation.objects.filter(
        kind=Conversation.Kind.DIRECT, user_a_id=user_a, user_b_id=user_b
    ).first()
    created = conversation is None
    if created:
        conversation = Conversation.objects.create(kind=Conversation.Kind.DIRECT, user_a_id=user_a, user_b_id=user_b)
        Membership.objects.bulk_create(
            [
                Membership(conversation=conversation, user_id=user_a),
                Membership(conversation=conversation, user_id=user_b),
            ]
        )
        report.conversations_created += 1
    read_seq = dict(Membership.objects.filter(conversation=conversation).values_list("user_id", "read_seq"))
    thread = _Thread(conversation, created, conversation.last_seq, conversation.last_message_at, read_seq)
    threads[user_a, user_b] = thread
    return thread


def _flush(batch: list[Message], report: ImportReport) -> None:
    Message.objects.bulk_create(batch)
    report.messages_imported += len(batch)
    batch.clear()


def _finish_threads(threads: dict[tuple[uuid.UUID, uuid.UUID], _Thread]) -> None:
    """Each conversation's counter and each member's read and delivery positions."""
    for thread in threads.values():
        conversation = thread.conversation
        first = Message.objects.filter(conversation=conversation).order_by("seq").values_list("created_at", flat=True)
        changes = {"last_seq": thread.last_seq, "last_message_at": thread.last_at}
        if thread.created and (started := first.first()) is not None:
            changes["created_at"] = started
        Conversation.objects.filter(pk=conversation.pk).update(**changes)
        for user_id, read_seq in thread.read_seq.items():
            Membership.objects.filter(conversation=conversation, user_id=user_id).update(read_seq=read_seq)
        # Everything imported counts as delivered (history, not pushed on connect).
        Membership.objects.filter(conversation=conversation).update(delivered_seq=thread.last_seq)
