from http import HTTPStatus

from chatserver.errors import DomainError, InvalidInput


class UsernameTaken(InvalidInput):
    code = "username_taken"
    default_detail = "A user with this username already exists."


class EmailTaken(InvalidInput):
    code = "email_taken"
    default_detail = "A user with this email already exists."


class WeakPassword(InvalidInput):
    code = "weak_password"
    default_detail = "This password is too weak."


class NothingToUpdate(InvalidInput):
    code = "nothing_to_update"
    default_detail = "Provide at least one of: username, email, read_receipts, push_show_content."


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status = HTTPStatus.UNAUTHORIZED
    # One message for unknown email and wrong password: no account enumeration.
    default_detail = "Invalid email or password."


class InvalidToken(DomainError):
    code = "invalid_token"
    status = HTTPStatus.UNAUTHORIZED
    default_detail = "Token is invalid or expired."


class WrongPassword(InvalidInput):
    code = "invalid_current_password"
    default_detail = "The current password is not correct."
