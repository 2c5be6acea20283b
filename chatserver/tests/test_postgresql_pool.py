"""chatserver.postgresql: the pool checks only connections that sat idle."""

import psycopg
import pytest
from django.db import connection

from chatserver.postgresql.base import check_if_idle, mark_idle

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the pool exists on PostgreSQL only")


def _kill(victim: psycopg.Connection) -> None:
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])


@pytest.mark.django_db
def test_a_connection_just_given_back_is_not_checked_and_an_idle_one_is(settings):
    settings.DATABASE_POOL_CHECK_IDLE_SECONDS = 60
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as pooled:
        mark_idle(pooled)
        _kill(pooled)
        check_if_idle(pooled)  # given back a moment ago: handed out without a round trip
        settings.DATABASE_POOL_CHECK_IDLE_SECONDS = 0
        with pytest.raises(psycopg.OperationalError):
            check_if_idle(pooled)  # idle long enough: checked, found broken, replaced by the pool


@pytest.mark.django_db
def test_a_connection_never_given_back_is_checked():
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as fresh:
        _kill(fresh)
        with pytest.raises(psycopg.OperationalError):
            check_if_idle(fresh)


@pytest.mark.django_db(transaction=True)
def test_the_pool_uses_the_idle_check_and_connections_given_back_are_noted():
    assert connection.pool._check is check_if_idle
    connection.ensure_connection()
    raw = connection.connection
    connection.close()
    assert hasattr(raw, "_chat_idle_since")
