import json
import logging
import os
import secrets
import subprocess
import sys

import pytest

from chatserver.log import RedactSecretsFilter, redact
from chatserver.tests.test_settings import PRODUCTION, ROOT, VARIABLES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GET /ws?token=eyJ.abc.def HTTP/1.1", "GET /ws?token=[REDACTED] HTTP/1.1"),
        ("/ws?since=4&token=abc&x=1", "/ws?since=4&token=[REDACTED]&x=[REDACTED]"),
        ("/ws?ticket=abc", "/ws?ticket=[REDACTED]"),
        ("/ws?TOKEN=abc", "/ws?TOKEN=[REDACTED]"),
        ("/chats/123?limit=20&cursor=MjAy&before=17", "/chats/123?limit=20&cursor=MjAy&before=17"),
        # Search terms are words from people's messages.
        (
            '"GET /messages/search?q=my+secret+diagnosis&order=best HTTP/1.1" 200',
            '"GET /messages/search?q=[REDACTED]&order=best HTTP/1.1" 200',
        ),
        ("/users/search?Q=jo%20hn&limit=5", "/users/search?Q=[REDACTED]&limit=5"),
        ("no query here: a=b", "no query here: a=b"),
    ],
)
def test_redact(raw, expected):
    assert redact(raw) == expected


def test_log_filter_redacts_formatted_messages(caplog):
    logger = logging.getLogger("chatserver.test")
    handler = logging.Handler()
    records = []
    handler.emit = records.append
    handler.addFilter(RedactSecretsFilter())
    logger.addHandler(handler)
    try:
        logger.warning("HTTP %(method)s %(path)s", {"method": "GET", "path": "/ws?token=secret-jwt"})
    finally:
        logger.removeHandler(handler)
    assert records[0].getMessage() == "HTTP GET /ws?token=[REDACTED]"


def test_configured_console_handler_redacts(capsys):
    # The LOGGING setting's root handler (used by daphne's runserver and every app logger).
    logging.getLogger("django.channels.server").warning("WebSocket CONNECT %(path)s", {"path": "/ws?token=leak"})
    err = capsys.readouterr().err
    assert "leak" not in err


@pytest.mark.django_db
def test_oversized_rest_body_is_413_json(auth_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = auth_client.put("/users/me/update", '{"username": "%s"}' % ("x" * 2000), content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


def test_check_deploy_is_clean_with_production_settings():
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env.update(PRODUCTION, DJANGO_ENV_FILE=os.devnull, DJANGO_SETTINGS_MODULE="chatserver.settings")
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(48)  # what README tells operators to generate
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_json_log_lines_carry_request_and_user_ids():
    from chatserver.log import JsonFormatter, RedactSecretsFilter, request_id_var, user_id_var

    record = logging.LogRecord("chat", logging.WARNING, __file__, 1, "GET %s", ("/ws?token=secret",), None)
    RedactSecretsFilter().filter(record)
    request_token, user_token = request_id_var.set("req-1"), user_id_var.set("user-1")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(request_token)
        user_id_var.reset(user_token)
    assert line["message"] == "GET /ws?token=[REDACTED]"
    assert (line["request_id"], line["user_id"], line["level"]) == ("req-1", "user-1", "WARNING")


@pytest.mark.django_db
def test_request_id_is_echoed_or_made(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    made = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"]
    assert len(made) == 32 and "\n" not in made
