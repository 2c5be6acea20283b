"""Input checks shared by the messaging services."""

import uuid
from typing import Any

from chatserver.errors import InvalidInput


def is_storable_text(value: str) -> bool:
    """False for NUL (PostgreSQL refuses it) and lone surrogates (not encodable)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_uuid(value: Any, field: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(f"{field} must be a UUID.", field=field) from None
