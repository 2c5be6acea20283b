"""JSON from clients, parsed strictly and the same way on both transports.

Python's parser takes more than JSON: ``NaN`` and ``Infinity`` literals,
numbers like ``1e999`` that become infinite floats, and nesting deep enough to
raise ``RecursionError`` (not a ``ValueError``, so it escaped the callers'
error handling as a 500 / ``server_error``). Each of these is refused here as
malformed input.
"""

import json
import math
from typing import Any


class MalformedJson(ValueError):
    """The text is not JSON this server accepts."""


def _refuse_constant(constant: str) -> None:
    raise MalformedJson(f"{constant} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise MalformedJson(f"{text[:20]} is out of range")
    return number


def loads(text: str | bytes) -> Any:
    """Parse ``text``; raise MalformedJson for anything but plain, finite, reasonably nested JSON."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise MalformedJson("JSON is nested too deeply") from None
    except MalformedJson:
        raise
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise MalformedJson(str(error)) from None
