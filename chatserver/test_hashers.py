from django.contrib.auth.hashers import BCryptSHA256PasswordHasher


class FastBCryptSHA256PasswordHasher(BCryptSHA256PasswordHasher):
    """bcrypt_sha256 at the minimum cost factor; for the test suite only."""

    rounds = 4
