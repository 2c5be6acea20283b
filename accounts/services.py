"""The only writers of accounts data; every rule about users lives here."""

import hashlib
import logging
import secrets

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.cache import cache
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.exceptions import (
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    NothingToUpdate,
    UsernameTaken,
    WeakPassword,
    WrongPassword,
)
from accounts.models import User, normalize_email
from accounts.selectors import user_get_active, user_get_by_email
from accounts.signals import password_changed, tokens_revoked
from chatserver import ratelimit
from chatserver.errors import InvalidInput, RateLimited

logger = logging.getLogger(__name__)

TOKEN_VERSION_CLAIM = "ver"  # noqa: S105 - a claim name, not a secret


def _raise_for(error: ValidationError) -> None:
    """Translate model validation into the domain error a client can act on."""
    errors = error.error_dict if hasattr(error, "error_dict") else {NON_FIELD_ERRORS: error.error_list}
    for field, field_errors in errors.items():
        for item in field_errors:
            if item.code == "username_taken":
                raise UsernameTaken()
            if field == "email" and item.code == "unique":
                raise EmailTaken()
    field, field_errors = next(iter(errors.items()))
    message = " ".join(m for item in field_errors for m in item.messages)
    named = field if field != NON_FIELD_ERRORS else None
    raise InvalidInput(f"{named}: {message}" if named else message, field=named)


def _save_validated(user: User, *, exclude: list[str] | None = None, update_fields: list[str] | None = None) -> User:
    try:
        user.full_clean(exclude=exclude)
    except ValidationError as error:
        _raise_for(error)
    try:
        with transaction.atomic():
            # update_fields: never write back columns (password, token_version) that a
            # concurrent request may have changed since this instance was loaded.
            user.save(update_fields=update_fields)
    except IntegrityError:
        # Lost a race with a concurrent insert of the same name or email.
        raise InvalidInput("A user with this username or email already exists.", field=None) from None
    return user


def user_register(*, username: str, email: str, password: str) -> User:
    user = User(username=username, email=normalize_email(email))
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        raise WeakPassword(" ".join(error.messages), field="password") from None
    user.set_password(password)
    return _save_validated(user)


def user_update_profile(
    user: User,
    *,
    username: str | None = None,
    email: str | None = None,
    read_receipts: bool | None = None,
    push_show_content: bool | None = None,
) -> User:
    """Change username, email and/or the privacy settings; nothing else is writable through here."""
    changes = {
        "username": username,
        "email": normalize_email(email) if email is not None else None,
        "read_receipts": read_receipts,
        "push_show_content": push_show_content,
    }
    changes = {field: value for field, value in changes.items() if value is not None}
    if not changes:
        raise NothingToUpdate()
    original = {field: getattr(user, field) for field in changes}
    for field, value in changes.items():
        setattr(user, field, value)
    try:
        return _save_validated(user, exclude=["password"], update_fields=[*changes, "updated"])
    except InvalidInput:
        # Leave the caller's instance as stored, not half-changed.
        for field, value in original.items():
            setattr(user, field, value)
        raise


def user_authenticate(*, email: str, password: str) -> User:
    """The user with these credentials, or InvalidCredentials.

    Failed attempts per target email are limited (guessing one account from many
    addresses). Only failures count, so an attacker cannot use up the owner's
    own logins; while the limit holds, every attempt for that email, right or
    wrong, gets the same RateLimited answer, whether or not the account exists.
    """
    email_key = normalize_email(email)
    budget = ratelimit.peek("auth_email", email_key)
    if not budget.allowed:
        raise RateLimited(retry_after=budget.retry_after)
    user = user_get_by_email(email)
    if user is None:
        # Hash anyway so a missing account costs as long as a wrong password.
        User().set_password(password)
    elif user.check_password(password) and user.is_active:
        return user
    ratelimit.hit("auth_email", email_key)
    raise InvalidCredentials()


def user_change_password(user: User, *, current_password: str, new_password: str, forget_devices: bool = False) -> str:
    """Set a new password and revoke every token issued before; returns a fresh token.

    Open sockets holding an old token are closed on every process. With
    ``forget_devices`` the user's push targets are removed too.
    """
    if not user.check_password(current_password):
        raise WrongPassword(field="current_password")
    try:
        password_validation.validate_password(new_password, user)
    except ValidationError as error:
        raise WeakPassword(" ".join(error.messages), field="new_password") from None
    user.set_password(new_password)
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(password=user.password, updated=timezone.now())
        user_revoke_tokens(user)
        password_changed.send(sender=User, user=user, forget_devices=forget_devices)
    logger.info("Password changed for user %s; older tokens revoked", user.id)
    return token_issue(user)


def user_revoke_tokens(user: User) -> None:
    """Invalidate every token issued to ``user`` so far and close their sockets.

    The version is bumped in the database (not from this possibly stale
    instance), so concurrent revocations never hand out the same version.
    """
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(token_version=F("token_version") + 1)
        user.refresh_from_db(fields=["token_version"])
        tokens_revoked.send(sender=User, user_id=user.id, token_version=user.token_version)


def user_deactivate(user: User) -> bool:
    """Refuse the user's logins from now on, revoke every token and close every
    socket. False when the user was inactive already."""
    with transaction.atomic():
        changed = User.objects.filter(pk=user.pk, is_active=True).update(is_active=False, updated=timezone.now())
        if changed:
            user.is_active = False
            user_revoke_tokens(user)
    return bool(changed)


def ws_ticket_issue(user: User) -> str:
    """A random single-use ticket for opening one WebSocket, so browsers need
    not put the long-lived JWT in a URL. Only its hash is stored."""
    ticket = secrets.token_urlsafe(32)
    cache.set(_ticket_key(ticket), (str(user.id), user.token_version), settings.WS_TICKET_TTL_SECONDS)
    return ticket


def ws_ticket_redeem(ticket: str) -> User:
    """The user a ticket was issued to; the ticket is spent whether or not it works."""
    key = _ticket_key(ticket)
    stored = cache.get(key)
    # delete() reports whether this caller removed it: of two racing redeemers, one wins.
    if stored is None or not cache.delete(key):
        raise InvalidToken("Ticket is invalid, expired or already used.")
    user_id, token_version = stored
    user = user_get_active(user_id)
    if user is None or user.token_version != token_version:
        raise InvalidToken("Ticket is no longer valid.")
    return user


def _ticket_key(ticket: str) -> str:
    return "wsticket:" + hashlib.sha256(ticket.encode()).hexdigest()


def token_issue(user: User) -> str:
    """A signed HS256 access token carrying ``user_id`` (seed contract) and the
    user's token version, so a later version bump revokes it."""
    token = AccessToken.for_user(user)
    token[TOKEN_VERSION_CLAIM] = user.token_version
    return str(token)
