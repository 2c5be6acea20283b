# ruff: noqa: S608 - only table names from model metadata are formatted in; values are parameters
"""The send path's statements (chatserver.sql says why SQL): a conversation's
next seqs and the message rows.

Every message takes its conversation's next seq under the conversation's row
lock, held until commit, so seq order is commit order (each recipient's event
seq is taken the same way: messaging.eventlog.sql).
"""

import uuid
from datetime import datetime

from django.db import connection

from accounts.models import User
from chatserver.sql import db_uuid, python_uuid, quoted_table
from messaging.models import Conversation, Message


def conversation_next_seq(conversation_id: uuid.UUID, now: datetime) -> int:
    """Take the next seq of a conversation known to exist."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quoted_table(Conversation)} SET last_seq = last_seq + 1, last_message_at = %s"
            " WHERE id = %s RETURNING last_seq",
            [connection.ops.adapt_datetimefield_value(now), db_uuid(conversation_id)],
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
        params += [db_uuid(user_a), db_uuid(user_b), count]
    conversation, user = quoted_table(Conversation), quoted_table(User)
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
            (python_uuid(user_a), python_uuid(user_b)): (python_uuid(pk), last_seq)
            for pk, user_a, user_b, last_seq in cursor.fetchall()
        }


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
        cursor.execute(
            f"INSERT INTO {quoted_table(Message)} ({columns}) VALUES {', '.join([row] * len(messages))}", params
        )
    for message in messages:
        message._state.adding = False
        message._state.db = connection.alias
