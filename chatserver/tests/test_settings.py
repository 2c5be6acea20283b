"""Settings are read from the environment; production mode refuses weak secrets.

Each case imports the settings in a fresh interpreter, since settings are
evaluated once per process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STRONG = "kX3q9-Lm2vB7_pWz8RtY4nC6hJ1dF5gS0aQeUoIi"  # 40 random characters
STRONG_JWT = "T7mN2bV9xZ4cQ8wE1rY6uI3oP5aS0dFgHjKlLzXv"
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": STRONG,
    "JWT_SECRET": STRONG_JWT,
    "DJANGO_ALLOWED_HOSTS": "chat.example.com",
}
VARIABLES = (
    "DJANGO_ENV_FILE",
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "PORT",
    "PASSWORD_MIN_LENGTH",
    "PASSWORD_CHECK_COMMON",
    "PASSWORD_CHECK_SIMILARITY",
    "CORS_ALLOWED_ORIGINS",
    "WS_ALLOWED_ORIGINS",
    "JWT_ACCEPT_SEED_TOKENS",
)

PRINT_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "debug": settings.DEBUG,
    "port": settings.PORT,
    "engine": settings.DATABASES["default"]["ENGINE"],
    "name": str(settings.DATABASES["default"]["NAME"]),
    "host": settings.DATABASES["default"].get("HOST"),
    "sqlite_options": settings.DATABASES["default"].get("OPTIONS", {}),
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "jwt_key": settings.SIMPLE_JWT["SIGNING_KEY"],
    "secret_key": settings.SECRET_KEY,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "first_app": settings.INSTALLED_APPS[0],
    "first_hasher": settings.PASSWORD_HASHERS[0],
    "hashers": settings.PASSWORD_HASHERS,
    "password_validators": settings.AUTH_PASSWORD_VALIDATORS,
    "cors_origins": settings.CORS_ALLOWED_ORIGINS,
    "ws_origins": settings.WS_ALLOWED_ORIGINS,
    "seed_tokens": settings.JWT_ACCEPT_SEED_TOKENS,
}))
"""


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    # A developer's own .env must not leak into these checks.
    clean.update({"DJANGO_ENV_FILE": os.devnull, **env}, DJANGO_SETTINGS_MODULE="chatserver.settings")
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def settings_with(**env: str) -> dict:
    result = load_settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_no_configuration_refuses_to_start_and_says_what_to_set():
    """Fail closed: a start that did not ask for development mode (daphne or
    uvicorn on chatserver.asgi, a container with a forgotten variable) must
    not sign tokens with the public development key."""
    result = load_settings()
    assert result.returncode != 0
    for hint in ("JWT_SECRET is not set", "DJANGO_SECRET_KEY is not set", "DJANGO_ALLOWED_HOSTS", "DJANGO_DEBUG=true"):
        assert hint in result.stderr


def test_asgi_application_refuses_to_load_without_configuration():
    result = subprocess.run(
        [sys.executable, "-c", "import chatserver.asgi"],
        cwd=ROOT,
        # As daphne or uvicorn would load it: no settings module named, nothing configured.
        env={
            **{k: v for k, v in os.environ.items() if k not in (*VARIABLES, "DJANGO_SETTINGS_MODULE")},
            "DJANGO_ENV_FILE": os.devnull,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Refusing to start" in result.stderr


def test_development_mode_when_asked_for_is_the_embedded_default():
    s = settings_with(DJANGO_DEBUG="true")
    assert s["debug"] is True
    assert s["port"] == 8080
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["name"].endswith("db.sqlite3")
    assert "journal_mode=WAL" in s["sqlite_options"]["init_command"]
    assert s["layer"] == "chatserver.channel_layer.LocalChannelLayer"
    assert s["cache"].endswith("LocMemCache")
    assert s["first_app"] == "daphne"
    assert s["first_hasher"].endswith("BCryptSHA256PasswordHasher")


def test_dev_py_asks_for_development_mode_unless_told_otherwise(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    import dev

    monkeypatch.delenv("DJANGO_DEBUG", raising=False)
    assert dev.development_env()["DJANGO_DEBUG"] == "true"
    monkeypatch.setenv("DJANGO_DEBUG", "false")
    assert dev.development_env()["DJANGO_DEBUG"] == "false"


def test_database_url_postgres():
    s = settings_with(DJANGO_DEBUG="true", DATABASE_URL="postgres://chat:pw@db.internal:5432/chatdb?sslmode=disable")
    assert s["engine"] == "django.db.backends.postgresql"
    assert (s["name"], s["host"]) == ("chatdb", "db.internal")


def test_database_url_sqlite_file(tmp_path):
    s = settings_with(DJANGO_DEBUG="true", DATABASE_URL=f"sqlite:///{tmp_path / 'chat.db'}")
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["name"] == str(tmp_path / "chat.db")


def test_redis_url_selects_redis_layer_and_cache():
    s = settings_with(DJANGO_DEBUG="true", REDIS_URL="redis://127.0.0.1:6379/3")
    assert s["layer"] == "chatserver.channel_layer.RedisPubSubLayer"
    assert s["cache"] == "django.core.cache.backends.redis.RedisCache"


def test_port_and_allowed_hosts():
    s = settings_with(DJANGO_DEBUG="true", PORT="9001", DJANGO_ALLOWED_HOSTS="a.example.com,b.example.com")
    assert s["port"] == 9001
    assert s["allowed_hosts"] == ["a.example.com", "b.example.com"]


def test_jwt_key_is_jwt_secret_not_secret_key():
    s = settings_with(**PRODUCTION)
    assert s["jwt_key"] == STRONG_JWT
    assert s["secret_key"] == STRONG


def test_production_with_strong_secrets_starts():
    assert settings_with(**PRODUCTION)["debug"] is False


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"JWT_SECRET": ""}, "JWT_SECRET is not set"),
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY is not set"),
        ({"JWT_SECRET": "short-secret"}, "JWT_SECRET is shorter than 32"),
        ({"DJANGO_SECRET_KEY": "x" * 31}, "DJANGO_SECRET_KEY is shorter than 32"),
        ({"JWT_SECRET": STRONG}, "JWT_SECRET must differ"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS is not set"),
        ({"JWT_SECRET": "ab" * 20}, "JWT_SECRET has fewer than 8 distinct characters"),
        ({"DJANGO_SECRET_KEY": "dev-insecure-django-secret-key-change-me-0123456789"}, "public development value"),
    ],
    ids=[
        "jwt-missing",
        "secret-missing",
        "jwt-short",
        "secret-short",
        "same-secret",
        "no-hosts",
        "jwt-repetitive",
        "dev-secret",
    ],
)
def test_production_refuses_weak_or_missing_secrets(override, message):
    env = {**PRODUCTION, **override}
    env = {k: v for k, v in env.items() if v != ""}
    result = load_settings(**env)
    assert result.returncode != 0
    assert "Refusing to start with DJANGO_DEBUG off" in result.stderr
    assert message in result.stderr


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / "chat.env"
    env_file.write_text("PORT=7777\nREDIS_URL=redis://127.0.0.1:6379/5\nDJANGO_ALLOWED_HOSTS=from-file\n")
    s = settings_with(DJANGO_DEBUG="true", DJANGO_ENV_FILE=str(env_file), DJANGO_ALLOWED_HOSTS="from-env")
    assert s["port"] == 7777
    assert s["layer"] == "chatserver.channel_layer.RedisPubSubLayer"
    assert s["allowed_hosts"] == ["from-env"]


POSTMAN_REGISTER = {"username": "testuser", "email": "testuser@example.com", "password": "password123"}


@pytest.mark.django_db
def test_the_password_policy_is_strong_by_default_and_relaxed_by_settings(api_client, settings):
    """The Go server's Postman collection registers ``password123``: refused by
    default (too common), accepted with PASSWORD_CHECK_COMMON=false."""
    default = settings_with(DJANGO_DEBUG="true")
    assert default["seed_tokens"] is False
    settings.AUTH_PASSWORD_VALIDATORS = default["password_validators"]
    response = api_client.post("/auth/register", POSTMAN_REGISTER, format="json")
    assert response.status_code == 400 and "common" in str(response.json()).lower()

    relaxed = settings_with(DJANGO_DEBUG="true", PASSWORD_CHECK_COMMON="false", PASSWORD_MIN_LENGTH="10")
    settings.AUTH_PASSWORD_VALIDATORS = relaxed["password_validators"]
    short = api_client.post("/auth/register", {**POSTMAN_REGISTER, "password": "pass12345"}, format="json")
    assert short.status_code == 400 and "at least 10" in str(short.json())
    response = api_client.post("/auth/register", POSTMAN_REGISTER, format="json")
    assert response.status_code == 201, response.json()

    no_similarity = settings_with(DJANGO_DEBUG="true", PASSWORD_CHECK_SIMILARITY="false")
    names = [validator["NAME"].rsplit(".", 1)[-1] for validator in no_similarity["password_validators"]]
    assert "UserAttributeSimilarityValidator" not in names and "CommonPasswordValidator" in names


def test_the_go_servers_password_hashes_verify():
    """import_seed_database keeps Go's bcrypt hashes as ``bcrypt$<hash>``."""
    assert "django.contrib.auth.hashers.BCryptPasswordHasher" in settings_with(DJANGO_DEBUG="true")["hashers"]


def test_cors_origins_are_also_allowed_websocket_origins():
    loaded = settings_with(DJANGO_DEBUG="true", CORS_ALLOWED_ORIGINS="https://app.example.com,http://localhost:5173")
    assert loaded["cors_origins"] == ["https://app.example.com", "http://localhost:5173"]
    assert {"https://app.example.com", "http://localhost:5173"} <= set(loaded["ws_origins"])
