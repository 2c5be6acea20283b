import os
import socket

import pytest


@pytest.mark.django_db
def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    body = client.get("/readyz").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == ("ok" if os.environ.get("REDIS_URL") else "not configured")


@pytest.mark.django_db
def test_readyz_is_503_when_redis_is_unreachable(client, settings):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        settings.REDIS_URL = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error")
