"""Test settings: the real settings, with cheap password hashing.

Still bcrypt (the same hasher class, fewer rounds), so tests exercise the
production hash format without spending ~0.25 s per password.
"""

from chatserver.settings import *  # noqa: F403

PASSWORD_HASHERS = ["chatserver.test_hashers.FastBCryptSHA256PasswordHasher"]
