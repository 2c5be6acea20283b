"""What accounts tells other apps, without importing them."""

from django.dispatch import Signal

# Sent inside the password change's transaction, with ``user`` and the
# user's choice ``forget_devices``: every device registered for pushes is to
# be forgotten too (a stolen phone keeps getting notifications otherwise).
password_changed = Signal()

# Sent inside the transaction that bumps a user's token version, with
# ``user_id`` and the new ``token_version``: every socket authenticated with
# an older version is to close (messaging closes them once it commits).
tokens_revoked = Signal()
