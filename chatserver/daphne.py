"""daphne, made to behave like the production server where clients can tell.

daphne takes no options for these, so its classes are adjusted when the ASGI
application is imported (before daphne's ``Server.run`` builds its factories):

- its access log (written straight to a stream, not through logging) passes
  :func:`chatserver.log.redact`;
- a WebSocket frame over its 1 MiB limit is closed with **1009** (message too
  big) as uvicorn does, instead of autobahn's default of dropping the TCP
  connection without a close frame (``failByDrop``), which a client sees as
  1006, indistinguishable from a network failure.
"""

from chatserver.log import redact


def adjust_daphne() -> None:
    try:
        from daphne.access import AccessLogGenerator
        from daphne.ws_protocol import WebSocketFactory
    except ImportError:  # another ASGI server
        return
    if getattr(AccessLogGenerator, "chat_adjusted", False):
        return
    AccessLogGenerator.chat_adjusted = True

    write_entry = AccessLogGenerator.write_entry

    def redacted_write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
        write_entry(self, host, date, redact(request), status, length, ident, user)

    AccessLogGenerator.write_entry = redacted_write_entry

    factory_init = WebSocketFactory.__init__

    def init_closing_with_1009(self, *args, **kwargs):
        factory_init(self, *args, **kwargs)
        # Server.run sets its own options after this, leaving failByDrop alone.
        self.setProtocolOptions(failByDrop=False)

    WebSocketFactory.__init__ = init_closing_with_1009
