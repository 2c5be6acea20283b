# ruff: noqa: S608 - only table names from model metadata are formatted in; values are parameters
"""The hot-path statements, written as SQL where the ORM costs more CPU to
build them than the database takes to run them: the counters (each taken in
one statement), the message and event-log rows, and the delivery receipts.

Every message takes the conversation's next seq and every recipient's next
event seq, under row locks held until commit (seq order is commit order).
With the ORM that is a SELECT ... FOR UPDATE and an UPDATE per counter, plus
the lookups in front of them; ``UPDATE``/``INSERT ... RETURNING``, which the
ORM cannot express, take each counter in one round trip. Both PostgreSQL and
SQLite (3.35+) run these statements as written.
"""

import uuid
from datetime import datetime

from django.db import connection, transaction

from accounts.models import User
from messaging.models import Conversation, EventStream, Membership, Message, PushOutbox, UserEvent


def _db_uuid(value: uuid.UUID):
    """A UUID as the backend stores it (PostgreSQL: uuid; SQLite: 32 hex characters)."""
    return Conversation._meta.pk.get_db_prep_value(value, connection)


def _python_uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def conversation_next_seq(conversation_id: uuid.UUID, now: datetime) -> int:
    """Take the next seq of a conversation known to exist."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(Conversation)} SET last_seq = last_seq + 1, last_message_at = %s"
            " WHERE id = %s RETURNING last_seq",
            [connection.ops.adapt_datetimefield_value(now), _db_uuid(conversation_id)],
        )
        return cursor.fetchone()[0]


def direct_conversations_advance(
    pairs: dict[tuple[uuid.UUID, uuid.UUID], int], now: datetime
) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, int]]:
    """Take ``pairs[(user_a, user_b)]`` seqs of each pair's direct conversation
    in one statement: (user_a, user_b) -> (conversation id, its new last seq).

    A pair is left out when it has no conversation yet or either user is not
    active; the caller sends those down the slow path, which says why or
    creates the conversation. On PostgreSQL the rows are locked first, in id
    order, the order every batch uses, so two processes' batches never deadlock.
    """
    if not pairs:
        return {}
    postgres = connection.vendor == "postgresql"
    row = "(%s::uuid, %s::uuid, %s::bigint)" if postgres else "(%s, %s, %s)"
    params: list = []
    for (user_a, user_b), count in pairs.items():
        params += [_db_uuid(user_a), _db_uuid(user_b), count]
    conversation, user = _table(Conversation), _table(User)
    active = (
        f"EXISTS (SELECT 1 FROM {user} u WHERE u.id = v.a AND u.is_active)"
        f" AND EXISTS (SELECT 1 FROM {user} u WHERE u.id = v.b AND u.is_active)"
    )
    locked = ""
    if postgres:
        locked = (
            f", locked AS MATERIALIZED (SELECT c.id FROM {conversation} c JOIN v"
            " ON c.user_a_id = v.a AND c.user_b_id = v.b WHERE c.kind = %s ORDER BY c.id FOR UPDATE OF c)"
        )
        params.append(Conversation.Kind.DIRECT)
    sql = (
        f"WITH v(a, b, n) AS (VALUES {', '.join([row] * len(pairs))}){locked}"
        f" UPDATE {conversation} SET last_seq = {conversation}.last_seq + v.n, last_message_at = %s FROM v"
        f" WHERE {conversation}.kind = %s AND {conversation}.user_a_id = v.a AND {conversation}.user_b_id = v.b"
        f" AND {active}"
        + (f" AND {conversation}.id IN (SELECT id FROM locked)" if postgres else "")
        + f" RETURNING {conversation}.id, {conversation}.user_a_id, {conversation}.user_b_id, {conversation}.last_seq"
    )
    params += [connection.ops.adapt_datetimefield_value(now), Conversation.Kind.DIRECT]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {
            (_python_uuid(user_a), _python_uuid(user_b)): (_python_uuid(pk), last_seq)
            for pk, user_a, user_b, last_seq in cursor.fetchall()
        }


def event_streams_advance(counts: dict[uuid.UUID, int], delivered: dict[uuid.UUID, int] | None = None) -> dict:
    """Advance each user's event stream by ``counts[user]`` (creating it on the
    first event) and return each new head; the user's new events take the seqs
    ``head - count + 1 .. head``. ``delivered[user]`` moves the user's
    delivered cursor forward (never back) in the same statement.

    The rows are locked in user-id order, the order every caller uses, so two
    transactions publishing to overlapping users never deadlock.
    """
    delivered = delivered or {}
    user_ids = sorted(set(counts) | set(delivered), key=lambda pk: pk.hex)
    if not user_ids:
        return {}
    rows = ", ".join(["(%s, %s, 0, %s)"] * len(user_ids))
    table = _table(EventStream)
    greatest = _greatest()
    params: list = []
    for user_id in user_ids:
        params += [_db_uuid(user_id), counts.get(user_id, 0), delivered.get(user_id, 0)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, last_seq, pruned_through, delivered_seq) VALUES {rows}"
            f" ON CONFLICT (user_id) DO UPDATE SET last_seq = {table}.last_seq + excluded.last_seq,"
            f" delivered_seq = {greatest}({table}.delivered_seq, excluded.delivered_seq)"
            " RETURNING user_id, last_seq",
            params,
        )
        return {_python_uuid(user_id): head for user_id, head in cursor.fetchall()}


def user_events_insert(events: list[tuple[uuid.UUID, int, str]], now: datetime) -> None:
    """Store (user, seq, frame as JSON text) rows of the event log in one multi-row INSERT.

    ``bulk_create`` on PostgreSQL sends the rows as one typed array per
    column (``INSERT ... SELECT * FROM UNNEST``), and building a ``jsonb[]``
    array client-side cost more CPU than the rest of a message's statements;
    here each frame goes as the JSON text the devices are sent, parsed by the server.
    """
    if not events:
        return
    frame = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    rows = ", ".join([f"(%s, %s, {frame}, %s)"] * len(events))
    created_at = connection.ops.adapt_datetimefield_value(now)
    params: list = []
    for user_id, seq, text in events:
        params += [_db_uuid(user_id), seq, text, created_at]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {_table(UserEvent)} (user_id, seq, frame, created_at) VALUES {rows}", params)


def push_outbox_touch(seqs: dict[uuid.UUID, int], due_at: datetime) -> None:
    """Mark conversations as having new messages (up to these seqs) for the push
    relay, in the messages' transaction: one row a conversation, one statement a batch.

    An existing row keeps the earlier time (a burst is pushed once, from its
    first message; a row put off for a member pushed a moment ago does not
    put off the others' new messages) and takes the newer seq. The row stays locked until this
    transaction commits, and the relay skips locked rows, so it never takes a
    conversation whose newest messages are not committed yet. Rows in id
    order, like every other lock here, so two writers never deadlock."""
    if not seqs:
        return
    ids = sorted(seqs, key=lambda pk: pk.hex)
    table = _table(PushOutbox)
    due = connection.ops.adapt_datetimefield_value(due_at)
    params: list = []
    for conversation_id in ids:
        params += [_db_uuid(conversation_id), due, seqs[conversation_id]]
    rows = ", ".join(["(%s, %s, %s)"] * len(ids))
    newest = f"{_greatest()}({table}.through_seq, excluded.through_seq)"
    earliest = f"{_least()}({table}.due_at, excluded.due_at)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (conversation_id, due_at, through_seq) VALUES {rows}"
            f" ON CONFLICT (conversation_id) DO UPDATE SET through_seq = {newest}, due_at = {earliest}",
            params,
        )


def _greatest() -> str:
    return "GREATEST" if connection.vendor == "postgresql" else "MAX"


def _least() -> str:
    return "LEAST" if connection.vendor == "postgresql" else "MIN"


def skip_locked_supported() -> bool:
    """SQLite has one writer at a time: nothing to skip, and no FOR UPDATE."""
    return connection.features.has_select_for_update_skip_locked


def push_outbox_claim(now: datetime, lease_until: datetime, limit: int) -> dict[uuid.UUID, int]:
    """Take up to ``limit`` due conversations, oldest first: {conversation: its
    marked seq}. Taking one only moves its time to ``lease_until`` (this
    statement commits on its own, so a writer marking the same conversation
    never waits for the relay's work); the row goes in ``push_outbox_settle``.
    A relay that dies meanwhile leaves it to be taken again after the lease.
    Rows a writer holds (its messages not committed yet) are skipped."""
    table = _table(PushOutbox)
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked_supported() else ""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET due_at = %s WHERE conversation_id IN (SELECT conversation_id FROM {table}"
            f" WHERE due_at <= %s ORDER BY due_at LIMIT %s{lock}) RETURNING conversation_id, through_seq",
            [
                connection.ops.adapt_datetimefield_value(lease_until),
                connection.ops.adapt_datetimefield_value(now),
                limit,
            ],
        )
        return {_python_uuid(row[0]): row[1] for row in cursor.fetchall()}


def push_outbox_settle(claimed: dict[uuid.UUID, int], later: dict[uuid.UUID, datetime], due_at: datetime) -> None:
    """After the relay queued a claim's pushes (in its transaction): remove the
    rows nothing newer was marked in since; a row marked since is due again at
    ``due_at`` (its new messages' grace); one with members to push only later
    (PUSH_MIN_INTERVAL_SECONDS) is due then."""
    if not claimed:
        return
    table = _table(PushOutbox)
    with connection.cursor() as cursor:
        settled = [conversation_id for conversation_id in claimed if conversation_id not in later]
        if settled:
            cursor.execute(
                f"DELETE FROM {table} WHERE "
                + " OR ".join(["(conversation_id = %s AND through_seq <= %s)"] * len(settled)),
                [value for pk in settled for value in (_db_uuid(pk), claimed[pk])],
            )
        for when, conversation_ids in _grouped({**dict.fromkeys(settled, due_at), **later}).items():
            placeholders = ", ".join(["%s"] * len(conversation_ids))
            cursor.execute(
                f"UPDATE {table} SET due_at = %s WHERE conversation_id IN ({placeholders})",
                [connection.ops.adapt_datetimefield_value(when), *[_db_uuid(pk) for pk in conversation_ids]],
            )


def _grouped(due: dict[uuid.UUID, datetime]) -> dict[datetime, list[uuid.UUID]]:
    by_time: dict[datetime, list[uuid.UUID]] = {}
    for conversation_id, when in due.items():
        by_time.setdefault(when, []).append(conversation_id)
    return by_time


def messages_insert(messages: list[Message]) -> None:
    """INSERT new message rows as ``save(force_insert=True)`` would (the same
    columns and prepared values, from the model), in one statement, without
    the ORM's per-save work (signals, SQL compilation) on the hottest path.
    A duplicate client_id still raises IntegrityError."""
    if not messages:
        return
    fields = Message._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [
        field.get_db_prep_save(getattr(message, field.attname), connection) for message in messages for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {_table(Message)} ({columns}) VALUES {', '.join([row] * len(messages))}", params)
    for message in messages:
        message._state.adding = False
        message._state.db = connection.alias


# ---- delivery receipts: the statements of messages_delivered_many ----------------
# Every delivered message costs a receipt transaction; built by the ORM, its
# OR-ed filters and CASE update cost more CPU to compile than the send itself.


def messages_brief(ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[uuid.UUID, int, uuid.UUID]]:
    """id -> (conversation id, seq, sender id) of these messages."""
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, conversation_id, seq, sender_id FROM {_table(Message)} WHERE id IN ({marks})",
            [_db_uuid(pk) for pk in ids],
        )
        return {
            _python_uuid(pk): (_python_uuid(conversation_id), seq, _python_uuid(sender_id))
            for pk, conversation_id, seq, sender_id in cursor.fetchall()
        }


def memberships_lock(pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> list[tuple[int, uuid.UUID, uuid.UUID, int]]:
    """Lock the memberships of these (user, conversation) pairs, in one order for
    every caller: (id, user id, conversation id, delivered seq) each."""
    rows = " OR ".join(["(user_id = %s AND conversation_id = %s)"] * len(pairs))
    params = [_db_uuid(pk) for pair in pairs for pk in pair]
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""  # SQLite: BEGIN IMMEDIATE locks
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, user_id, conversation_id, delivered_seq FROM {_table(Membership)} WHERE {rows}"
            f" ORDER BY conversation_id, user_id{lock}",
            params,
        )
        return [(pk, _python_uuid(u), _python_uuid(c), seq) for pk, u, c, seq in cursor.fetchall()]


def memberships_set_delivered(tops: dict[int, int]) -> None:
    """Membership id -> new delivered seq, in one UPDATE."""
    cases = " ".join(["WHEN %s THEN %s"] * len(tops))
    marks = ", ".join(["%s"] * len(tops))
    params: list = [value for pair in tops.items() for value in pair] + list(tops)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(Membership)} SET delivered_seq = CASE id {cases} END WHERE id IN ({marks})", params
        )


def messages_in_ranges(
    ranges: list[tuple[uuid.UUID, int, int]],
) -> list[tuple[uuid.UUID, int, uuid.UUID, uuid.UUID]]:
    """(conversation id, seq, sender id, id) of the messages not deleted with
    after < seq <= top in each (conversation, after, top), in seq order."""
    within = " OR ".join(["(conversation_id = %s AND seq > %s AND seq <= %s)"] * len(ranges))
    params: list = [False]
    for conversation_id, after, top in ranges:
        params += [_db_uuid(conversation_id), after, top]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT conversation_id, seq, sender_id, id FROM {_table(Message)}"
            f" WHERE is_deleted = %s AND ({within}) ORDER BY conversation_id, seq",
            params,
        )
        return [(_python_uuid(c), seq, _python_uuid(s), _python_uuid(pk)) for c, seq, s, pk in cursor.fetchall()]
