"""Test settings: the real settings, with cheap password hashing.

Still bcrypt (the same hasher class, fewer rounds), so tests exercise the
production hash format without spending ~0.25 s per password.
"""

import os
import tempfile
from pathlib import Path

from chatserver.settings import *  # noqa: F403
from chatserver.settings import DATABASES

PASSWORD_HASHERS = ["chatserver.test_hashers.FastBCryptSHA256PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, like production, rather than Django's default shared-cache memory
    # database: it behaves the same under concurrent writers (WAL, busy timeout).
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"chat-test-{os.getpid()}.sqlite3"),
    }
