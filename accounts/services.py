"""The only writers of accounts data; every rule about users lives here."""

from django.contrib.auth import password_validation
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.tokens import AccessToken

from accounts.exceptions import (
    EmailTaken,
    InvalidCredentials,
    NothingToUpdate,
    UsernameTaken,
    WeakPassword,
)
from accounts.models import User, normalize_email
from accounts.selectors import user_get_by_email
from chatserver.errors import InvalidInput

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


def _save_validated(user: User, *, exclude: list[str] | None = None) -> User:
    try:
        user.full_clean(exclude=exclude)
    except ValidationError as error:
        _raise_for(error)
    try:
        with transaction.atomic():
            user.save()
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


def user_update_profile(user: User, *, username: str | None = None, email: str | None = None) -> User:
    """Change username and/or email; nothing else is writable through here."""
    if username is None and email is None:
        raise NothingToUpdate()
    original = (user.username, user.email)
    if username is not None:
        user.username = username
    if email is not None:
        user.email = normalize_email(email)
    try:
        return _save_validated(user, exclude=["password"])
    except InvalidInput:
        # Leave the caller's instance as stored, not half-changed.
        user.username, user.email = original
        raise


def user_authenticate(*, email: str, password: str) -> User:
    user = user_get_by_email(email)
    if user is None:
        # Hash anyway so a missing account costs as long as a wrong password.
        User().set_password(password)
        raise InvalidCredentials()
    if not user.check_password(password) or not user.is_active:
        raise InvalidCredentials()
    return user


def token_issue(user: User) -> str:
    """A signed HS256 access token carrying ``user_id`` (seed contract) and the
    user's token version, so a later version bump revokes it."""
    token = AccessToken.for_user(user)
    token[TOKEN_VERSION_CLAIM] = user.token_version
    return str(token)
