"""Django's PostgreSQL backend, with the pool's connection check skipped for a
connection that was in use a moment ago.

Django hands psycopg's pool ``check_connection``, a round trip to the server
on every checkout: for a chat server, whose database calls are short and many,
that is one extra round trip per call (about a tenth of the database threads'
time under load). A connection given back less than ``POOL_CHECK_IDLE_SECONDS``
ago was working then, so it is handed out unchecked; one idle for longer is
checked as before, so connections broken by a database restart are still
replaced. A connection that broke inside that window fails its query once and
is discarded, as it would if it broke just after the check.
"""

import time

from django.conf import settings
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool

_IDLE_SINCE = "_chat_idle_since"


def mark_idle(connection) -> None:
    """Note when the connection goes back to the pool (not the pool's ``reset``
    hook: with one, the pool takes connections back on a worker thread, later)."""
    setattr(connection, _IDLE_SINCE, time.monotonic())


def check_if_idle(connection) -> None:
    """The pool's check: only for a connection idle long enough to have gone stale."""
    idle_since = getattr(connection, _IDLE_SINCE, None)
    if idle_since is not None and time.monotonic() - idle_since < settings.DATABASE_POOL_CHECK_IDLE_SECONDS:
        return
    ConnectionPool.check_connection(connection)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        # Django passes its own ``check`` to the pool (and refuses a second
        # one in OPTIONS), so replace it once the pool exists.
        if pool is not None and self.settings_dict["CONN_HEALTH_CHECKS"] and pool._check is not check_if_idle:
            pool._check = check_if_idle
        return pool

    def _close(self):
        if self.connection is not None and self.pool:
            mark_idle(self.connection)
        return super()._close()
