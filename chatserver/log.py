"""Keep credentials out of logs.

Browsers (and the seed's clients) pass the JWT as ``?token=`` and tickets as
``?ticket=``; access logs print request paths. Everything that reaches a
handler through Django's logging passes :class:`RedactSecretsFilter`, and
daphne's own access log (written straight to a stream) is redacted by
:func:`redact_daphne_access_log`.
"""

import logging
import re

SECRET_QUERY_PARAMETER = re.compile(r"(?i)([?&](?:token|ticket|access_token)=)[^&\s\"']*")
REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    return SECRET_QUERY_PARAMETER.sub(rf"\1{REDACTED}", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_daphne_access_log() -> None:
    """Wrap daphne's access-log writer (used by the ``daphne`` command) so paths are redacted."""
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:  # another ASGI server; its logs go through logging
        return
    if getattr(AccessLogGenerator.write_entry, "redacting", False):
        return
    original = AccessLogGenerator.write_entry

    def write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
        original(self, host, date, redact(request), status, length, ident, user)

    write_entry.redacting = True
    AccessLogGenerator.write_entry = write_entry
