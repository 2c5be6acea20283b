"""Turn Django's HTML error pages into the API's JSON error shape."""

from collections.abc import Callable
from http import HTTPStatus

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse

# Paths that keep Django's HTML pages (the admin and the docs are for browsers).
HTML_PATH_PREFIXES = ("/admin/", "/static/", "/api/docs")

ERROR_CODES = {
    HTTPStatus.BAD_REQUEST: "bad_request",
    HTTPStatus.FORBIDDEN: "permission_denied",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "request_too_large",
}


def json_error(status: int, detail: str | None = None, code: str | None = None) -> JsonResponse:
    http_status = HTTPStatus(status)
    return JsonResponse(
        {
            "detail": detail or f"{http_status.phrase}.",
            "code": code or ERROR_CODES.get(http_status, "server_error" if status >= 500 else "error"),
        },
        status=status,
    )


def _needs_json(request: HttpRequest, response: HttpResponse) -> bool:
    return (
        response.status_code >= 400
        and not request.path.startswith(HTML_PATH_PREFIXES)
        and not response.get("Content-Type", "").startswith("application/json")
    )


class JsonErrorMiddleware:
    """Covers what DRF's exception handler never sees: unknown URLs (including
    DEBUG's technical 404 page), CSRF failures and other Django-level errors."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return self._convert(request, self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return self._convert(request, await self.get_response(request))

    @staticmethod
    def _convert(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if _needs_json(request, response):
            return json_error(response.status_code)
        return response
