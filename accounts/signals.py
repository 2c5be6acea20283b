"""What accounts tells other apps, without importing them."""

from django.dispatch import Signal

# Sent inside the password change's transaction, with ``user`` and the
# user's choice ``forget_devices``: every device registered for pushes is to
# be forgotten too (a stolen phone keeps getting notifications otherwise).
password_changed = Signal()
