"""JSON in and out, strictly and the same way on both transports (orjson).

Python's own parser takes more than JSON: ``NaN`` and ``Infinity`` literals,
numbers like ``1e999`` that become infinite floats, lone surrogates, and
nesting deep enough to raise ``RecursionError`` (not a ``ValueError``, so it
escaped the callers' error handling as a 500 / ``server_error``). orjson
refuses each of them, and parses and writes frames several times faster,
which the WebSocket hot path feels. Its own nesting limit (1,024) is still
deeper than code that walks a value recursively survives (DRF's field
validation took ``repr`` of a 1,000-level list: ``RecursionError``), so
anything nested deeper than ``MAX_DEPTH`` is refused too: no request of this
API nests more than a few levels.
"""

from typing import Any

import orjson

MAX_DEPTH = 32


class MalformedJson(ValueError):
    """The text is not JSON this server accepts."""


def loads(text: str | bytes) -> Any:
    """Parse ``text``; raise MalformedJson for anything but plain, finite, reasonably nested JSON."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise MalformedJson(str(error)) from None
    if isinstance(value, dict | list) and _deeper_than(value, MAX_DEPTH):
        raise MalformedJson(f"JSON is nested deeper than {MAX_DEPTH} levels")
    return value


def _deeper_than(value: dict | list, limit: int) -> bool:
    """Without recursion; a flat frame costs a loop over its values."""
    pending = [(value, 1)]
    while pending:
        container, depth = pending.pop()
        for item in container.values() if isinstance(container, dict) else container:
            if isinstance(item, dict | list):
                if depth >= limit:
                    return True
                pending.append((item, depth + 1))
    return False


def dumps(value: Any) -> str:
    """Compact JSON text (UTF-8, not ASCII-escaped), as frames and the event log carry it."""
    return orjson.dumps(value).decode()
