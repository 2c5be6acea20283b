"""Search (reads only): people by username prefix, and messages over the
caller's own conversations.

PostgreSQL: full-text search (``websearch_to_tsquery`` on the ``simple``
configuration, so it works for any language without stemming) through a GIN
index on the message text, ranked by ``ts_rank`` for ``order=best``. SQLite:
a documented simpler match: every word of the query must occur in the message
(case-insensitive substring), newest first. Matches come back as character
ranges, never as markup, so a client can highlight them without rendering
user text as HTML.
"""

import re
from dataclasses import dataclass

from django.db import connection
from django.db.models.functions import Lower

from accounts.models import User
from messaging.exceptions import InvalidCursor
from messaging.models import Message
from messaging.rules import PAGE_DEFAULT, cursor_decode, cursor_encode, page_of, visible_to

SEARCH_CONFIG = "simple"
SEARCH_QUERY_MAX_LENGTH = 200
SEARCH_TERMS_MAX = 8
SEARCH_OFFSET_MAX = 10_000  # deeper than this, refine the query
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SearchPage:
    messages: list[Message]
    highlights: dict[str, list[tuple[int, int]]]
    next_cursor: str | None


def search_terms(query: str) -> list[str]:
    """The words a message must contain (websearch's ``-word`` exclusions and ``or`` left out)."""
    words = []
    for token in query.split():
        if token.startswith("-") or token.lower() == "or":
            continue
        words += _WORD.findall(token)
    return list(dict.fromkeys(w.lower() for w in words))[:SEARCH_TERMS_MAX]


def highlight(content: str, terms: list[str]) -> list[tuple[int, int]]:
    """[start, end) character ranges of the terms in ``content``, merged and sorted."""
    spans = sorted(
        (match.start(), match.end()) for term in terms for match in re.finditer(re.escape(term), content, re.IGNORECASE)
    )
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    (offset,) = cursor_decode(cursor, int)
    if not 0 <= offset <= SEARCH_OFFSET_MAX:
        raise InvalidCursor(field="cursor")
    return offset


def message_search(
    *, user: User, query: str, order: str = "recent", limit: int = PAGE_DEFAULT, cursor: str | None = None
) -> SearchPage:
    terms = search_terms(query)
    offset = _offset(cursor)
    messages = (
        Message.objects.filter(visible_to(user.id), is_deleted=False)
        .select_related("conversation", "sender")
        .prefetch_related("attachments")
    )
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        vector = SearchVector("content", config=SEARCH_CONFIG)
        ts_query = SearchQuery(query, config=SEARCH_CONFIG, search_type="websearch")
        messages = messages.annotate(document=vector).filter(document=ts_query)
        if order == "best":
            messages = messages.annotate(rank=SearchRank(vector, ts_query)).order_by("-rank", "-created_at", "-id")
        else:
            messages = messages.order_by("-created_at", "-id")
    else:
        if not terms:
            return SearchPage([], {}, None)
        for term in terms:
            messages = messages.filter(content__icontains=term)
        messages = messages.order_by("-created_at", "-id")
    # Ranked results have no keyset to continue from: the cursor is an offset.
    page, next_cursor = page_of(messages[offset : offset + limit + 1], limit, lambda _: cursor_encode(offset + limit))
    return SearchPage(page, {str(m.id): highlight(m.content, terms) for m in page}, next_cursor)


def user_search(
    *, user: User, query: str, limit: int = PAGE_DEFAULT, cursor: str | None = None
) -> tuple[list[User], str | None]:
    """Active users whose username starts with ``query`` (case-insensitive),
    alphabetically, and the cursor of the next page."""
    users = (
        User.objects.filter(is_active=True)
        .exclude(pk=user.pk)
        .annotate(name=Lower("username"))
        .filter(name__startswith=query.lower())
    )
    if cursor is not None:
        (after,) = cursor_decode(cursor, str)
        users = users.filter(name__gt=after)
    rows = users.order_by("name").only("id", "username")[: limit + 1]
    return page_of(rows, limit, lambda last: cursor_encode(last.username.lower()))
