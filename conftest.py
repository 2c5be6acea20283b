"""Shared fixtures, and a hard check that configured services are reachable.

When ``DATABASE_URL``/``REDIS_URL`` point at PostgreSQL/Redis the suite must
run against them: an unreachable service fails the run, it never skips tests.
"""

import os
import uuid
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

TEST_PASSWORD = "correct-horse-battery-staple"


def pytest_sessionstart(session: pytest.Session) -> None:
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        import redis

        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
        except redis.RedisError as error:
            raise pytest.UsageError(f"REDIS_URL is set but Redis is unreachable: {error}") from error


@pytest.fixture(scope="session", autouse=True)
def stop_database_threads_at_the_end(django_db_setup, django_db_blocker):
    """The database threads and the writer (started by any test that opened a
    socket), and asgiref's thread (async tests' ``database_sync_to_async``),
    give back their connections before the test database is dropped."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    from chatserver.db import shutdown

    shutdown()
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def rate_limiter(clock):
    """Every test gets fresh buckets (in Redis under its own prefix when REDIS_URL
    is set) driven by the fake clock, so limits never leak between tests."""
    from chatserver import ratelimit

    limiter = ratelimit.build_limiter(prefix=f"test:{uuid.uuid4().hex}", clock=clock)
    ratelimit.set_limiter(limiter)
    yield limiter
    ratelimit.set_limiter(None)


@pytest.fixture(autouse=True)
def presence_registry():
    """Fresh presence state per test (its own Redis prefix when REDIS_URL is set)."""
    from messaging.presence import registry as presence

    registry = presence.build_presence(prefix=f"test:{uuid.uuid4().hex}")
    presence.set_presence(registry)
    yield registry
    presence.set_presence(None)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db) -> Callable:
    from accounts.models import User

    def make(username: str | None = None, email: str | None = None, password: str = TEST_PASSWORD) -> User:
        username = username or f"user_{uuid.uuid4().hex[:8]}"
        email = email or f"{username}@example.com"
        return User.objects.create_user(username=username, email=email, password=password)

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice", "alice@example.com")


@pytest.fixture
def token_for() -> Callable:
    from accounts.services import token_issue

    return token_issue


@pytest.fixture
def client_for(token_for) -> Callable:
    """``client_for(user)``: an API client authenticated as that user."""

    def make(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
        return client

    return make


@pytest.fixture
def auth_client(user, token_for) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client
