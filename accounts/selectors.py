"""Reads of accounts data."""

import uuid

from accounts.models import User, normalize_email


def user_get_active(user_id: str | uuid.UUID) -> User | None:
    """The active user with this id, or None (also for a malformed id)."""
    try:
        pk = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
    except ValueError:
        return None
    return User.objects.filter(pk=pk, is_active=True).first()


def user_get_by_email(email: str) -> User | None:
    return User.objects.filter(email=normalize_email(email)).first()


def users_get_active(user_ids: list[uuid.UUID]) -> dict[uuid.UUID, User]:
    """The active users among these ids, in one query."""
    return {user.pk: user for user in User.objects.filter(pk__in=set(user_ids), is_active=True)}
