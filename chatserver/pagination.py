"""Paged REST lists: where the next page is (``Link`` and ``X-Next-Cursor``)."""

from urllib.parse import urlencode

from rest_framework.request import Request
from rest_framework.response import Response


def with_next_page(
    request: Request, response: Response, next_cursor: str | None, limit: int, **params: str
) -> Response:
    """Point to the next page in ``Link: <...>; rel="next"`` and ``X-Next-Cursor``."""
    if next_cursor:
        query = {**params, "limit": limit, "cursor": next_cursor}
        next_url = request.build_absolute_uri(f"{request.path}?{urlencode(query)}")
        response["Link"] = f'<{next_url}>; rel="next"'
        response["X-Next-Cursor"] = next_cursor
    return response


PAGED = 'More pages: the next page\'s cursor is in the `X-Next-Cursor` header and a `Link: <...>; rel="next"` header.'
