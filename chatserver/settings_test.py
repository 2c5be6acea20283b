"""Test settings: the real settings in development mode, with cheap password hashing.

Still bcrypt (the same hasher class, fewer rounds), so tests exercise the
production hash format without spending ~0.25 s per password.
"""

import os
import tempfile
from pathlib import Path

# Tests ask for development mode (the settings refuse to start without real
# secrets otherwise); a test that checks production behaviour sets its own.
os.environ.setdefault("DJANGO_DEBUG", "true")

from chatserver.settings import *  # noqa: F403
from chatserver.settings import DATABASES

PASSWORD_HASHERS = ["chatserver.test_hashers.FastBCryptSHA256PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, like production, rather than Django's default shared-cache memory
    # database: it behaves the same under concurrent writers (WAL, busy timeout).
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"chat-test-{os.getpid()}.sqlite3"),
    }

# The push tests' receivers listen on http://127.0.0.1 (the tests of the
# refusal turn this off again).
PUSH_ALLOW_PRIVATE_TARGETS = True
