"""Keep credentials and message contents out of logs.

Access logs print request paths, and query strings carry what must not be
written down: the JWT (``?token=``) and tickets of WebSocket clients, search
terms (``/messages/search?q=...``, words from people's messages). Only the
query parameters in :data:`LOGGABLE_QUERY_PARAMETERS` keep their values;
every other value is replaced. Everything that reaches a handler through
Django's logging (the app, uvicorn's access log, daphne's runserver) passes
:class:`RedactSecretsFilter`; daphne's own access log, written straight to a
stream, is redacted by :mod:`chatserver.daphne`.
"""

import contextvars
import json
import logging
import re

# Paging and resume positions: no content, no credential, and worth seeing in a log.
LOGGABLE_QUERY_PARAMETERS = frozenset({"limit", "before", "cursor", "order", "since"})
_QUERY_PARAMETER = re.compile(r"([?&])([^=&\s\"'#?]+)=([^&\s\"'#]*)")
REDACTED = "[REDACTED]"


def _redact_parameter(match: re.Match) -> str:
    separator, name, value = match.groups()
    if name.lower() in LOGGABLE_QUERY_PARAMETERS or not value:
        return match.group(0)
    return f"{separator}{name}={REDACTED}"


def redact(text: str) -> str:
    """``text`` with the value of every query parameter not known to be harmless replaced."""
    if "=" not in text:
        return text
    return _QUERY_PARAMETER.sub(_redact_parameter, text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# ---- structured logs --------------------------------------------------------------

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
user_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("user_id", default=None)


def bind_user(user_id) -> None:
    """Name the authenticated user in every log line of this request or socket."""
    user_id_var.set(str(user_id) if user_id else None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id and user id of the context.
    Message text comes from our own log calls, which never include tokens,
    passwords or message contents (and the redaction filter runs first)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
            "user_id": user_id_var.get(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
