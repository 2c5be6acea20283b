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
def auth_client(user, token_for) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client
