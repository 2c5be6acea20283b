"""What the hand-written SQL of the apps shares: UUIDs and table names as the
backend takes them, and the SQL functions whose names differ by backend.

The apps write a statement as SQL where the ORM costs more CPU to build it
than the database takes to run it, or cannot express it (a counter taken in
one ``UPDATE``/``INSERT ... RETURNING`` round trip); messaging's are in its
slices' ``sql.py`` and ``messaging/push/outbox.py``. Both PostgreSQL and
SQLite (3.35+) run them as written.
"""

import uuid

from django.db import connection, models

_UUID = models.UUIDField()


def db_uuid(value: uuid.UUID):
    """A UUID as the backend stores it (PostgreSQL: uuid; SQLite: 32 hex characters)."""
    return _UUID.get_db_prep_value(value, connection)


def python_uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def quoted_table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def sql_greatest() -> str:
    return "GREATEST" if connection.vendor == "postgresql" else "MAX"


def sql_least() -> str:
    return "LEAST" if connection.vendor == "postgresql" else "MIN"


def skip_locked_supported() -> bool:
    """SQLite has one writer at a time: nothing to skip, and no FOR UPDATE."""
    return connection.features.has_select_for_update_skip_locked
