# ruff: noqa: S608 - only table names from model metadata are formatted in; values are parameters
"""The event log's statements (chatserver.sql says why SQL): each user's
next event seqs, their delivered cursor, and the log rows."""

import uuid
from datetime import datetime

from django.db import connection

from chatserver.sql import db_uuid, python_uuid, quoted_table, sql_greatest
from messaging.models import EventStream, UserEvent


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
    table = quoted_table(EventStream)
    greatest = sql_greatest()
    params: list = []
    for user_id in user_ids:
        params += [db_uuid(user_id), counts.get(user_id, 0), delivered.get(user_id, 0)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, last_seq, pruned_through, delivered_seq) VALUES {rows}"
            f" ON CONFLICT (user_id) DO UPDATE SET last_seq = {table}.last_seq + excluded.last_seq,"
            f" delivered_seq = {greatest}({table}.delivered_seq, excluded.delivered_seq)"
            " RETURNING user_id, last_seq",
            params,
        )
        return {python_uuid(user_id): head for user_id, head in cursor.fetchall()}


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
        params += [db_uuid(user_id), seq, text, created_at]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {quoted_table(UserEvent)} (user_id, seq, frame, created_at) VALUES {rows}", params)
