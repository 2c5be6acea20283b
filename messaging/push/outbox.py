# ruff: noqa: S608 - only table names from model metadata are formatted in; values are parameters
"""The push outbox's statements (chatserver.sql says why SQL): marked by the
writer with each batch, leased and settled by the relay (messaging.push.relay)."""

import uuid
from datetime import datetime

from django.db import connection, transaction

from chatserver.sql import db_uuid, python_uuid, quoted_table, skip_locked_supported, sql_greatest, sql_least
from messaging.models import PushOutbox


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
    table = quoted_table(PushOutbox)
    due = connection.ops.adapt_datetimefield_value(due_at)
    params: list = []
    for conversation_id in ids:
        params += [db_uuid(conversation_id), due, seqs[conversation_id]]
    rows = ", ".join(["(%s, %s, %s)"] * len(ids))
    newest = f"{sql_greatest()}({table}.through_seq, excluded.through_seq)"
    earliest = f"{sql_least()}({table}.due_at, excluded.due_at)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (conversation_id, due_at, through_seq) VALUES {rows}"
            f" ON CONFLICT (conversation_id) DO UPDATE SET through_seq = {newest}, due_at = {earliest}",
            params,
        )


def push_outbox_claim(now: datetime, lease_until: datetime, limit: int) -> dict[uuid.UUID, int]:
    """Take up to ``limit`` due conversations, oldest first: {conversation: its
    marked seq}. Taking one only moves its time to ``lease_until`` (this
    statement commits on its own, so a writer marking the same conversation
    never waits for the relay's work); the row goes in ``push_outbox_settle``.
    A relay that dies meanwhile leaves it to be taken again after the lease.
    Rows a writer holds (its messages not committed yet) are skipped."""
    table = quoted_table(PushOutbox)
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
        return {python_uuid(row[0]): row[1] for row in cursor.fetchall()}


def push_outbox_settle(claimed: dict[uuid.UUID, int], later: dict[uuid.UUID, datetime], due_at: datetime) -> None:
    """After the relay queued a claim's pushes (in its transaction): remove the
    rows nothing newer was marked in since; a row marked since is due again at
    ``due_at`` (its new messages' grace); one with members to push only later
    (PUSH_MIN_INTERVAL_SECONDS) is due then."""
    if not claimed:
        return
    table = quoted_table(PushOutbox)
    with connection.cursor() as cursor:
        settled = [conversation_id for conversation_id in claimed if conversation_id not in later]
        if settled:
            cursor.execute(
                f"DELETE FROM {table} WHERE "
                + " OR ".join(["(conversation_id = %s AND through_seq <= %s)"] * len(settled)),
                [value for pk in settled for value in (db_uuid(pk), claimed[pk])],
            )
        for when, conversation_ids in _grouped({**dict.fromkeys(settled, due_at), **later}).items():
            placeholders = ", ".join(["%s"] * len(conversation_ids))
            cursor.execute(
                f"UPDATE {table} SET due_at = %s WHERE conversation_id IN ({placeholders})",
                [connection.ops.adapt_datetimefield_value(when), *[db_uuid(pk) for pk in conversation_ids]],
            )


def _grouped(due: dict[uuid.UUID, datetime]) -> dict[datetime, list[uuid.UUID]]:
    by_time: dict[datetime, list[uuid.UUID]] = {}
    for conversation_id, when in due.items():
        by_time.setdefault(when, []).append(conversation_id)
    return by_time
