# ruff: noqa: S608 - only table names from model metadata are formatted in; values are parameters
"""The delivery receipts' statements (chatserver.sql says why SQL).

Every delivered message costs a receipt transaction (messages_delivered_many);
built by the ORM, its OR-ed filters and CASE update cost more CPU to compile
than the send itself. ``messages_in_ranges`` also serves marking read."""

import uuid

from django.db import connection

from chatserver.sql import db_uuid, python_uuid, quoted_table
from messaging.models import Membership, Message


def messages_brief(ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[uuid.UUID, int, uuid.UUID]]:
    """id -> (conversation id, seq, sender id) of these messages."""
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, conversation_id, seq, sender_id FROM {quoted_table(Message)} WHERE id IN ({marks})",
            [db_uuid(pk) for pk in ids],
        )
        return {
            python_uuid(pk): (python_uuid(conversation_id), seq, python_uuid(sender_id))
            for pk, conversation_id, seq, sender_id in cursor.fetchall()
        }


def memberships_lock(pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> list[tuple[int, uuid.UUID, uuid.UUID, int]]:
    """Lock the memberships of these (user, conversation) pairs, in one order for
    every caller: (id, user id, conversation id, delivered seq) each."""
    rows = " OR ".join(["(user_id = %s AND conversation_id = %s)"] * len(pairs))
    params = [db_uuid(pk) for pair in pairs for pk in pair]
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""  # SQLite: BEGIN IMMEDIATE locks
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, user_id, conversation_id, delivered_seq FROM {quoted_table(Membership)} WHERE {rows}"
            f" ORDER BY conversation_id, user_id{lock}",
            params,
        )
        return [(pk, python_uuid(u), python_uuid(c), seq) for pk, u, c, seq in cursor.fetchall()]


def memberships_set_delivered(tops: dict[int, int]) -> None:
    """Membership id -> new delivered seq, in one UPDATE."""
    cases = " ".join(["WHEN %s THEN %s"] * len(tops))
    marks = ", ".join(["%s"] * len(tops))
    params: list = [value for pair in tops.items() for value in pair] + list(tops)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quoted_table(Membership)} SET delivered_seq = CASE id {cases} END WHERE id IN ({marks})", params
        )


def messages_in_ranges(
    ranges: list[tuple[uuid.UUID, int, int]],
) -> list[tuple[uuid.UUID, int, uuid.UUID, uuid.UUID]]:
    """(conversation id, seq, sender id, id) of the messages not deleted with
    after < seq <= top in each (conversation, after, top), in seq order."""
    within = " OR ".join(["(conversation_id = %s AND seq > %s AND seq <= %s)"] * len(ranges))
    params: list = [False]
    for conversation_id, after, top in ranges:
        params += [db_uuid(conversation_id), after, top]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT conversation_id, seq, sender_id, id FROM {quoted_table(Message)}"
            f" WHERE is_deleted = %s AND ({within}) ORDER BY conversation_id, seq",
            params,
        )
        return [(python_uuid(c), seq, python_uuid(s), python_uuid(pk)) for c, seq, s, pk in cursor.fetchall()]
