"""The predicates the messaging slices share, each written once: what a
member sees, how an id or a page is read from a client, how a page ends.

Each is a plain function or a Q fragment, so every slice's selectors and
services, and the push relay, apply the same rule rather than a copy of it.
"""

import base64
import binascii
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce

from chatserver.errors import InvalidInput
from messaging.exceptions import InvalidCursor

T = TypeVar("T")

# ---- input ------------------------------------------------------------------------


def parse_uuid(value: Any, field: str, error: type[InvalidInput] = InvalidInput) -> uuid.UUID:
    """A UUID from a client (a string, or one already parsed), or ``error``
    naming the field (a specific error class says it in its own words)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        if not isinstance(value, str):
            raise ValueError
        return uuid.UUID(value)
    except ValueError:
        raise error(f"{field} must be a UUID." if error is InvalidInput else None, field=field) from None


def is_storable_text(value: str) -> bool:
    """False for NUL (PostgreSQL refuses it) and lone surrogates (not encodable)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ---- pages ------------------------------------------------------------------------

PAGE_DEFAULT = 20
PAGE_MAX = 100


def clamp_limit(limit: int | None) -> int:
    """A page size a client asked for: the default when unset, at most ``PAGE_MAX``."""
    return PAGE_DEFAULT if limit is None else max(1, min(limit, PAGE_MAX))


def cursor_encode(*parts: object) -> str:
    """An opaque cursor: the position after a page's last row (its sort keys)."""
    raw = "|".join(str(part) for part in parts).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str, *types: Callable[[str], Any]) -> tuple:
    """The parts of a ``cursor_encode`` cursor, each read by its type; a
    cursor this server did not make is ``InvalidCursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        parts = raw.split("|")
        if len(parts) != len(types):
            raise ValueError("parts")
        return tuple(read(part) for read, part in zip(types, parts, strict=True))
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
        raise InvalidCursor(field="cursor") from None


def aware_datetime(value: str) -> datetime:
    """A cursor's timestamp part: ISO 8601 with an offset, as UTC."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("naive datetime")
    return parsed.astimezone(UTC)


def time_id_cursor(at: datetime, pk: uuid.UUID) -> str:
    """The keyset cursor of lists ordered by (a time, an id), newest first."""
    return cursor_encode(at.isoformat(), pk)


def time_id_from_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    return cursor_decode(cursor, aware_datetime, uuid.UUID)


def page_of(rows: Iterable[T], limit: int, cursor_after: Callable[[T], str]) -> tuple[list[T], str | None]:
    """A page from the ``limit + 1`` rows read (one query): the first
    ``limit``, and the cursor after the last of them when there was one more."""
    page = list(rows)
    if len(page) <= limit:
        return page, None
    del page[limit:]
    return page, cursor_after(page[-1])


# ---- membership window ------------------------------------------------------------
# A member sees a conversation's messages with joined_seq < seq, up to left_seq
# once they left (messaging.models.Membership).

CURRENT_MEMBER = Q(left_seq__isnull=True)
NO_END = 2**62  # above any seq: the top of a window that has not ended


def is_current(membership: Any) -> bool:
    """Still a member (not left, not removed)."""
    return membership.left_seq is None


def seq_window(after: int | F, left_seq: int | F | None) -> Q:
    """Messages of one conversation with ``after < seq``, up to ``left_seq``
    when the member left; ``after`` is joined_seq, or a later marker (read)
    inside the window. Either may be an outer reference in a subquery."""
    if left_seq is None:
        return Q(seq__gt=after)
    if isinstance(left_seq, int):
        return Q(seq__gt=after, seq__lte=left_seq)
    return Q(seq__gt=after, seq__lte=Coalesce(left_seq, Value(NO_END)))


def member_sees_seq(seq: int | F, prefix: str = "") -> Q:
    """Memberships (``prefix`` reaching them from the queried model) whose
    window holds ``seq``. Inside one ``filter()`` call every condition applies
    to the same membership row."""
    return Q(**{f"{prefix}joined_seq__lt": seq}) & (
        Q(**{f"{prefix}left_seq__isnull": True}) | Q(**{f"{prefix}left_seq__gte": seq})
    )


def visible_to(user_id: uuid.UUID) -> Q:
    """Messages the user sees: in a conversation of theirs, inside their window."""
    prefix = "conversation__memberships__"
    return Q(**{f"{prefix}user_id": user_id}) & member_sees_seq(F("seq"), prefix)


def window_top(left_seq: int | None, last_seq: int) -> int:
    """The highest seq a member sees: the conversation's last, or where they left."""
    return last_seq if left_seq is None else left_seq
