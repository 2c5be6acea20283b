"""Domain errors shared by every app and both transports.

Services raise these; the REST exception handler and the WebSocket consumer
map the same classes, so a client sees the same ``code`` whichever way it came.
"""

from http import HTTPStatus


class DomainError(Exception):
    """A refused operation, with a stable snake_case ``code`` clients can switch on."""

    code: str = "invalid"
    status: int = HTTPStatus.BAD_REQUEST
    default_detail: str = "Invalid request."

    def __init__(self, detail: str | None = None, *, field: str | None = None) -> None:
        self.detail = detail or self.default_detail
        self.field = field
        super().__init__(self.detail)

    def as_dict(self) -> dict[str, str]:
        body = {"detail": self.detail, "code": self.code}
        if self.field:
            body["field"] = self.field
        return body


class InvalidInput(DomainError):
    code = "invalid"


class NotFound(DomainError):
    code = "not_found"
    status = HTTPStatus.NOT_FOUND
    default_detail = "Not found."


class PermissionDenied(DomainError):
    code = "permission_denied"
    status = HTTPStatus.FORBIDDEN
    default_detail = "You do not have permission to perform this action."


class RateLimited(DomainError):
    code = "rate_limited"
    status = HTTPStatus.TOO_MANY_REQUESTS
    default_detail = "Rate limit exceeded; retry later."

    def __init__(self, detail: str | None = None, *, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def as_dict(self) -> dict:
        return {**super().as_dict(), "retry_after": round(self.retry_after, 3)}


class ServerBusy(RateLimited):
    code = "server_busy"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    default_detail = "The server is busy; retry after retry_after seconds."
