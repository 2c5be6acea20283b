"""Settings for the chat server.

Every deployable value comes from the environment (or a ``.env`` file beside
``manage.py``). The settings fail closed: unless development mode is asked for
with ``DJANGO_DEBUG=true`` (``dev.py`` and the test settings ask for it), the
server refuses to start without strong secrets and allowed hosts, so a start
with a forgotten variable never signs tokens with a public key. Storage
defaults to the embedded mode either way: SQLite (WAL), an in-memory channel
layer and a local-memory cache, until ``DATABASE_URL``/``REDIS_URL`` are set.
"""

from datetime import timedelta
from pathlib import Path

import environ
from corsheaders.defaults import default_headers as cors_default_headers
from django.core.exceptions import ImproperlyConfigured

# --------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Real environment variables win over the file, so deployments can override it.
environ.Env.read_env(env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

MIN_SECRET_LENGTH = 32
_DEV_SECRET_KEY = "dev-insecure-django-secret-key-change-me-0123456789"  # noqa: S105 - refused when DEBUG is off
_DEV_JWT_SECRET = "dev-insecure-jwt-secret-change-me-0123456789abcdef"  # noqa: S105 - refused when DEBUG is off

# Development mode (debug pages, public development secrets, localhost hosts)
# only when asked for: any other start must bring real secrets.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
PORT = env.int("PORT", default=8080)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="" if not DEBUG else _DEV_SECRET_KEY)
JWT_SECRET = env.str("JWT_SECRET", default="" if not DEBUG else _DEV_JWT_SECRET)
REDIS_URL = env.str("REDIS_URL", default="")

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS",
    default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [],
)


def _check_production_settings() -> None:
    """Fail fast instead of serving with secrets an attacker could guess."""
    problems = []
    for name, value in (("DJANGO_SECRET_KEY", SECRET_KEY), ("JWT_SECRET", JWT_SECRET)):
        if not value:
            problems.append(f"{name} is not set")
        elif len(value.encode()) < MIN_SECRET_LENGTH:
            # HS256 wants a key of at least 256 bits.
            problems.append(f"{name} is shorter than {MIN_SECRET_LENGTH} characters")
        elif value in (_DEV_SECRET_KEY, _DEV_JWT_SECRET):
            problems.append(f"{name} is the public development value")
        elif len(set(value)) < 8:
            problems.append(f"{name} has fewer than 8 distinct characters; use a random value")
    if SECRET_KEY and SECRET_KEY == JWT_SECRET:
        problems.append("JWT_SECRET must differ from DJANGO_SECRET_KEY")
    if not ALLOWED_HOSTS:
        problems.append("DJANGO_ALLOWED_HOSTS is not set")
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start with DJANGO_DEBUG off: "
            + "; ".join(problems)
            + '. Set strong random values (e.g. `python3 -c "import secrets; print(secrets.token_urlsafe(48))"`)'
            " in the environment or in .env, or set DJANGO_DEBUG=true for local development"
            " (`python3 dev.py serve` does)."
        )


if not DEBUG:
    _check_production_settings()

# --------------------------------------------------------------------------
# Applications
# --------------------------------------------------------------------------

INSTALLED_APPS = [
    # daphne first: its runserver replaces Django's, serving HTTP and WebSocket.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "chatserver",
    "accounts",
    "messaging",
    "messaging.push",
    "django_q",
]

MIDDLEWARE = [
    "chatserver.middleware.MetricsMiddleware",
    "chatserver.middleware.RequestIdMiddleware",
    # Before anything that may answer: a preflight or an error needs its CORS headers too.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's session, login and messages middleware, for the admin and the
    # API docs only: the API uses bearer tokens and needs none of them.
    "chatserver.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "chatserver.middleware.BrowserAuthenticationMiddleware",
    "chatserver.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chatserver.middleware.JsonErrorMiddleware",
    "chatserver.middleware.RateLimitHeadersMiddleware",
]

ROOT_URLCONF = "chatserver.urls"
ASGI_APPLICATION = "chatserver.asgi.application"
# The seed's paths have no trailing slash; never redirect API calls to add one.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "chatserver" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --------------------------------------------------------------------------
# Database
# --------------------------------------------------------------------------

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets readers proceed while a writer commits; IMMEDIATE takes the
            # write lock up front so concurrent writers wait instead of failing.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    # One file, no server to restart: keep each thread's connection instead of
    # opening the file and running the PRAGMAs again for every database call.
    DATABASES["default"]["CONN_MAX_AGE"] = None
else:
    # psycopg's connection pool: without it every database_sync_to_async call
    # (each message, each receipt) opens and closes a PostgreSQL connection.
    # A pooled connection is checked before it is handed out, so connections
    # broken by a database restart are replaced instead of failing a request.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DATABASE_POOL_TIMEOUT_SECONDS", default=5),
    }
    # With a pool, Django passes this on as the pool's connection check.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# Threads that run the WebSocket consumers' database work (chatserver.db). One
# for SQLite (a single writer); with PostgreSQL, queries overlap their network
# waits. Keep it at or below the pool's max_size.
DATABASE_THREADS = (
    1 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else env.int("DATABASE_THREADS", default=8)
)

# Threads that serve HTTP requests (chatserver.handlers), apart from the
# sockets' database threads. Keep DATABASE_THREADS + HTTP_THREADS + 1 (the
# message writer) at or below the pool's max_size.
HTTP_THREADS = env.int("HTTP_THREADS", default=4)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --------------------------------------------------------------------------
# Cache and channel layer
# --------------------------------------------------------------------------

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="chat"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            # Redis pub/sub between processes, one subscription per user group
            # per process, riding out Redis outages (chatserver/channel_layer.py).
            "BACKEND": "chatserver.channel_layer.RedisPubSubLayer",
            "CONFIG": {
                # The subscriber waits on its connection for as long as nothing
                # is published: no read timeout (redis-py 8 defaults to 5 s).
                "hosts": [{"address": REDIS_URL, "socket_timeout": None, "socket_connect_timeout": 2}],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="chat"),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "chatserver.channel_layer.LocalChannelLayer"}}

# --------------------------------------------------------------------------
# Users and passwords
# --------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    # Kept so Django's default PBKDF2 hashes and the Go server's plain bcrypt ones
    # (import_seed_database) still verify; each is upgraded at its next login.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
]

# Strong by default; each check can be relaxed for a deployment that must
# accept what another server accepted (the Go server took any 8 characters).
PASSWORD_MIN_LENGTH = env.int("PASSWORD_MIN_LENGTH", default=8)
PASSWORD_CHECK_COMMON = env.bool("PASSWORD_CHECK_COMMON", default=True)
PASSWORD_CHECK_SIMILARITY = env.bool("PASSWORD_CHECK_SIMILARITY", default=True)
AUTH_PASSWORD_VALIDATORS = [
    *(
        [{"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"}]
        if PASSWORD_CHECK_SIMILARITY
        else []
    ),
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH},
    },
    *([{"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"}] if PASSWORD_CHECK_COMMON else []),
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --------------------------------------------------------------------------
# REST API and JWT
# --------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["chatserver.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["chatserver.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "chatserver.exception_handler.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["chatserver.throttles.UserRateThrottle"],
}

JWT_LIFETIME = timedelta(hours=env.int("JWT_LIFETIME_HOURS", default=24))

# Accept tokens issued by the Go server ({"user_id", "exp"}, same JWT_SECRET) until
# they expire, for users whose credentials have not changed since: switching
# servers then logs nobody out. For the migration window only.
JWT_ACCEPT_SEED_TOKENS = env.bool("JWT_ACCEPT_SEED_TOKENS", default=False)

# The Go server showed a conversation partner's email (``other_user.email`` in
# /conversations). Off by default: a chat partner is not told your address.
SHARE_PEER_EMAILS = env.bool("SHARE_PEER_EMAILS", default=False)

SIMPLE_JWT = {
    # The seed's contract: HS256, 24 h, claim "user_id". The key is JWT_SECRET,
    # never Django's SECRET_KEY, so rotating one does not break the other.
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SECRET,
    "ACCESS_TOKEN_LIFETIME": JWT_LIFETIME,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
    "LEEWAY": 0,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Chat server API",
    "DESCRIPTION": "REST API of the real-time chat backend. WebSocket frames are documented in docs/protocol.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two choice sets share the field name "kind" (conversations, push targets).
    "ENUM_NAME_OVERRIDES": {"PushTargetKindEnum": "messaging.push.models.PushTarget.Kind"},
}

# --------------------------------------------------------------------------
# Abuse protection: rate limits and size limits
# --------------------------------------------------------------------------

# Token buckets: (burst, refill per second). Shared through Redis when REDIS_URL is set.
RATE_LIMITS = {
    # Authenticated REST requests per user: 60 a minute (the seed), burst 60.
    "rest": (env.int("REST_RATE_BURST", default=60), env.float("REST_RATE_PER_MINUTE", default=60) / 60),
    # WebSocket frames per user across all devices: 10 a second (the seed), burst 10.
    "ws": (env.int("WS_RATE_BURST", default=10), env.float("WS_RATE_PER_SECOND", default=10)),
    # Login/register attempts per client address, and per target email.
    "auth_ip": (env.int("AUTH_RATE_BURST", default=10), env.float("AUTH_RATE_PER_MINUTE", default=10) / 60),
    "auth_email": (
        env.int("AUTH_EMAIL_RATE_BURST", default=5),
        env.float("AUTH_EMAIL_RATE_PER_HOUR", default=20) / 3600,
    ),
    # Password change attempts per user (guessing the current password).
    "password": (5, 5 / 900),
    # WebSocket handshakes per client address, before any credential is checked.
    "ws_connect": (
        env.int("WS_CONNECT_RATE_BURST", default=60),
        env.float("WS_CONNECT_RATE_PER_MINUTE", default=300) / 60,
    ),
}
RATE_LIMIT_PREFIX = env.str("RATE_LIMIT_PREFIX", default="chat:rl")

# --------------------------------------------------------------------------
# Real-time features
# --------------------------------------------------------------------------

PRESENCE_PREFIX = env.str("PRESENCE_PREFIX", default="chat:presence")
# After a user's last socket closes, wait this long before telling contacts they
# went offline: a reconnect inside it (network change, page reload) is not a flap.
PRESENCE_GRACE_SECONDS = env.float("PRESENCE_GRACE_SECONDS", default=5)
# A typing indicator stops on its own this long after the last typing frame.
TYPING_TIMEOUT_SECONDS = env.float("TYPING_TIMEOUT_SECONDS", default=5)
# Events kept per user for resume (?since=); older ones are pruned by `manage.py prune_events`.
EVENT_LOG_RETENTION_DAYS = env.int("EVENT_LOG_RETENTION_DAYS", default=30)
# Each socket compares its last seq with the head of the log this often, to
# recover an event the channel layer dropped when no later event reveals the gap.
WS_CATCH_UP_SECONDS = env.float("WS_CATCH_UP_SECONDS", default=60)
# Rate-limited WebSocket frames in a row after which the socket is closed (code 4429).
WS_FLOOD_CLOSE_AFTER = env.int("WS_FLOOD_CLOSE_AFTER", default=50)
# Open sockets per user, all devices and processes together; one more is closed with 4409.
WS_MAX_SOCKETS_PER_USER = env.int("WS_MAX_SOCKETS_PER_USER", default=32)
# Handshakes a process takes in at once (a reconnect storm); beyond them a new
# one is closed with 1013 and told to retry after a random delay in this range.
WS_ADMISSION_MAX_STARTING = env.int("WS_ADMISSION_MAX_STARTING", default=256)
WS_ADMISSION_RETRY_SECONDS = (1.0, 4.0)
# Client addresses: how many proxies in front of the app append to X-Forwarded-For
# (0: use the socket's address and ignore the header, which clients can forge).
# Read by chatserver.client_address for REST, the admin and WebSocket handshakes alike.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# A WebSocket text frame larger than this gets a frame_too_large error, before JSON parsing.
WS_MAX_FRAME_BYTES = env.int("WS_MAX_FRAME_BYTES", default=32 * 1024)
# REST request bodies larger than this get 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("REST_MAX_BODY_BYTES", default=64 * 1024)
# Single-use WebSocket tickets (POST /ws/ticket) live this long.
WS_TICKET_TTL_SECONDS = 30
# Browser origins allowed to open WebSockets (host names or scheme://host[:port];
# a leading dot matches subdomains). Clients that send no Origin are not affected.
# Browser apps served from other origins (full origins, e.g.
# https://app.example.com): CORS on the REST API (django-cors-headers, preflight
# included) and WebSockets from them.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_HEADERS = (*cors_default_headers, "x-request-id")
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]
CORS_PREFLIGHT_MAX_AGE = 3600
WS_ALLOWED_ORIGINS = env.list("WS_ALLOWED_ORIGINS", default=[*ALLOWED_HOSTS, *CORS_ALLOWED_ORIGINS])

# --------------------------------------------------------------------------
# Production server (`manage.py serve`, uvicorn)
# --------------------------------------------------------------------------

SERVER_HOST = env.str("SERVER_HOST", default="127.0.0.1")
# Worker processes of one `serve` command; each is a full chat process (the
# channel layer must then be Redis so they see each other's sockets).
SERVER_WORKERS = env.int("SERVER_WORKERS", default=1)
# Pings detect dead peers and clients that stopped reading: no pong within the
# timeout and the socket is closed.
WS_PING_INTERVAL_SECONDS = env.float("WS_PING_INTERVAL_SECONDS", default=20)
WS_PING_TIMEOUT_SECONDS = env.float("WS_PING_TIMEOUT_SECONDS", default=20)
# On SIGTERM: stop accepting, close sockets with 1012 (clients reconnect
# elsewhere), and give in-flight requests this long to finish.
SHUTDOWN_TIMEOUT_SECONDS = env.float("SHUTDOWN_TIMEOUT_SECONDS", default=20)

# Prometheus metrics at /metrics, only for requests bearing this token (unset: 404).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --------------------------------------------------------------------------
# Push notifications (messaging.push): `manage.py push_worker` sends them.
# --------------------------------------------------------------------------

# A conversation's new messages wait this long for a device to get them (or,
# with PUSH_WHEN=unread, for their reader to read them) before they are pushed;
# every message of that window is one notification.
PUSH_GRACE_SECONDS = env.float("PUSH_GRACE_SECONDS", default=10)
PUSH_WHEN = env.str("PUSH_WHEN", default="undelivered")
if PUSH_WHEN not in ("undelivered", "unread"):
    raise ImproperlyConfigured("PUSH_WHEN must be 'undelivered' or 'unread'")
# At most one push of a conversation to a user this often; what comes meanwhile waits.
PUSH_MIN_INTERVAL_SECONDS = env.float("PUSH_MIN_INTERVAL_SECONDS", default=60)
PUSH_POLL_SECONDS = env.float("PUSH_POLL_SECONDS", default=1)
PUSH_MAX_ATTEMPTS = env.int("PUSH_MAX_ATTEMPTS", default=8)
PUSH_HTTP_TIMEOUT_SECONDS = env.float("PUSH_HTTP_TIMEOUT_SECONDS", default=10)
PUSH_TARGETS_PER_USER = env.int("PUSH_TARGETS_PER_USER", default=20)
# Push targets are URLs users give; the worker refuses to call private, loopback
# and link-local addresses and plain http unless this is set (local receivers in tests).
PUSH_ALLOW_PRIVATE_TARGETS = env.bool("PUSH_ALLOW_PRIVATE_TARGETS", default=False)
# VAPID (RFC 8292): the server's key pair for Web Push. Unset, one is made on
# first use and kept in the database (every process signs with the same one);
# `manage.py push_vapid_keys` prints a pair to set here instead. Changing it
# invalidates every browser's subscription.
WEBPUSH_VAPID_PRIVATE_KEY = env.str("WEBPUSH_VAPID_PRIVATE_KEY", default="")
WEBPUSH_VAPID_SUBJECT = env.str("WEBPUSH_VAPID_SUBJECT", default="mailto:admin@localhost")
WEBPUSH_TTL_SECONDS = env.int("WEBPUSH_TTL_SECONDS", default=24 * 3600)
# The job queue (django-q2) keeps its jobs in the default database: no other
# service. A job whose worker died is handed to another after `retry` seconds.
Q_CLUSTER = {
    "name": "chat-push",
    "orm": "default",
    "workers": 1
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    else env.int("PUSH_WORKERS", default=2),
    # A job sends one push (a DNS lookup and an HTTP request, each bounded).
    "timeout": int(PUSH_HTTP_TIMEOUT_SECONDS * 2 + 5),
    "retry": env.int("PUSH_QUEUE_RETRY_SECONDS", default=int(PUSH_HTTP_TIMEOUT_SECONDS * 2 + 20)),
    "max_attempts": 5,
    # An exception in a job is a bug, not a push service's answer (those are
    # recorded and retried by the delivery itself): do not run it again.
    "ack_failures": True,
    # Outcomes are kept on the pushes themselves: no result row per job.
    "save_limit": -1,
    "catch_up": False,
    "poll": 0.5,
    # Few jobs taken ahead of the workers: each push has its own lease too
    # (messaging.push.relay), and a copy taken twice sends once.
    "bulk": 1,
    "queue_limit": env.int("PUSH_WORKERS", default=2),
    "label": "Push jobs",
}

# --------------------------------------------------------------------------
# HTTPS hardening (DEBUG off). Behind a TLS-terminating proxy, set
# DJANGO_SECURE_PROXY_SSL_HEADER=true so X-Forwarded-Proto is trusted.
# --------------------------------------------------------------------------

if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # Load balancers probe over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --------------------------------------------------------------------------
# Internationalisation and static files
# --------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "chatserver" / "static"]
# WhiteNoise serves static files under any ASGI server, straight from the apps'
# folders: no collectstatic step (the files are few and change with the code).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --------------------------------------------------------------------------
# Attachments: stored through Django's storage API, served only by the app
# (after a membership check), never from a public URL.
# --------------------------------------------------------------------------

MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
ATTACHMENT_CONTENT_TYPES = env.list(
    "ATTACHMENT_CONTENT_TYPES",
    default=["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"],
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(MEDIA_ROOT)}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if env.str("ATTACHMENT_STORAGE", default="local") == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("S3_BUCKET"),
            "endpoint_url": env.str("S3_ENDPOINT_URL", default=None),
            "region_name": env.str("S3_REGION", default=None),
            "access_key": env.str("S3_ACCESS_KEY_ID", default=None),
            "secret_key": env.str("S3_SECRET_ACCESS_KEY", default=None),
            "default_acl": None,  # private objects: the app streams them after its own check
            "file_overwrite": False,
        },
    }

# --------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "json": one JSON object per line with request and user ids (the production default).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "chatserver.log.JsonFormatter"},
    },
    "filters": {"redact_secrets": {"()": "chatserver.log.RedactSecretsFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["redact_secrets"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's default handlers for its own loggers would print unredacted; send
    # everything through the root handler instead.
    "loggers": {"django": {"handlers": [], "propagate": True}},
}
