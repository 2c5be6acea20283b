"""A server whose database is unreachable answers 503 JSON, never 500, and stays up."""

import socket

import pytest

from messaging.tests.e2e.conftest import server_env, start_server, stop_server


@pytest.fixture
def server_without_database(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # nothing listens here
        url = f"postgres://postgres@127.0.0.1:{closed.getsockname()[1]}/chat"
        server = start_server(server_env(url, "unavailable"), tmp_path, ready_path="/healthz", ready_status=200)
        yield server
        stop_server(server)


def test_database_down_means_503_json(server_without_database):
    server = server_without_database
    assert server.request("GET", "/healthz") == (200, {"status": "ok"})
    status, body = server.request("GET", "/readyz")
    assert status == 503 and body["checks"]["database"].startswith("error")
    status, body = server.request("POST", "/auth/login", {"email": "a@example.com", "password": "whatever-123"})
    assert status == 503 and body["code"] == "unavailable"
    assert server.process.poll() is None  # still serving
