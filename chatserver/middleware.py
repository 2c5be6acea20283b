"""Response post-processing: JSON error bodies and rate-limit headers."""

import math
import re
import uuid
from collections.abc import Callable
from http import HTTPStatus

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse, JsonResponse

from chatserver import metrics
from chatserver.log import request_id_var, user_id_var

# Paths that keep Django's HTML pages (the admin and the docs are for browsers).
HTML_PATH_PREFIXES = ("/admin/", "/static/", "/api/docs")

ERROR_CODES = {
    HTTPStatus.BAD_REQUEST: "bad_request",
    HTTPStatus.FORBIDDEN: "permission_denied",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "request_too_large",
    HTTPStatus.TOO_MANY_REQUESTS: "rate_limited",
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


class ResponseMiddleware:
    """Base for middleware that tags the request and rewrites the response; works sync and async."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        self.before(request)
        return self.process(request, self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        self.before(request)
        return self.process(request, await self.get_response(request))

    def before(self, request: HttpRequest) -> None:
        """Runs before the view; nothing by default."""

    def process(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        return response


class JsonErrorMiddleware(ResponseMiddleware):
    """Covers what DRF's exception handler never sees: unknown URLs (including
    DEBUG's technical 404 page), CSRF failures and other Django-level errors."""

    def process(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if (
            response.status_code >= 400
            and not is_browser_page(request)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return json_error(response.status_code)
        return response


class RateLimitHeadersMiddleware(ResponseMiddleware):
    """``RateLimit-Limit/-Remaining/-Reset`` (IETF draft) on throttled endpoints,
    and a whole-second ``Retry-After`` on 429s."""

    def process(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        decision = getattr(request, "ratelimit_decision", None)
        if decision is not None:
            response["RateLimit-Limit"] = str(decision.limit)
            response["RateLimit-Remaining"] = str(decision.remaining)
            response["RateLimit-Reset"] = str(math.ceil(decision.reset_after))
            if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
                response["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
        return response


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware(ResponseMiddleware):
    """Tag each HTTP request with an id (the client's ``X-Request-ID`` when it is
    sane, else a new one), echoed in the response and present in every log line."""

    def before(self, request: HttpRequest) -> None:
        given = request.headers.get("X-Request-ID", "")
        request.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request_id_var.set(request.request_id)
        user_id_var.set(None)

    def process(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response["X-Request-ID"] = request.request_id
        return response


class MetricsMiddleware(ResponseMiddleware):
    """Counts responses by status; 5xx also count as errors."""

    def process(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        metrics.HTTP_RESPONSES.labels(str(response.status_code)).inc()
        if response.status_code >= 500:
            metrics.ERRORS.labels("http").inc()
        return response


def is_browser_page(request: HttpRequest) -> bool:
    """The admin, the API docs and static files: pages used with a session cookie."""
    return request.path_info.startswith(HTML_PATH_PREFIXES)


class BrowserOnly:
    """Mixin for Django's session, login and messages middleware: their work
    for browser pages only. The API and the browser client authenticate with
    bearer tokens and use none of them, so an API request skips their setup.
    (CSRF stays Django's own, everywhere: it costs an API request little, as
    DRF exempts its views, and ``check --deploy`` looks for it by name.)"""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_browser_page(request):
            return super().__call__(request)
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Callable, args: tuple, kwargs: dict) -> HttpResponse | None:
        if is_browser_page(request) and hasattr(super(), "process_view"):
            return super().process_view(request, view, args, kwargs)
        return None


class BrowserSessionMiddleware(BrowserOnly, SessionMiddleware):
    pass


class BrowserAuthenticationMiddleware(BrowserOnly, AuthenticationMiddleware):
    pass


class BrowserMessageMiddleware(BrowserOnly, MessageMiddleware):
    pass
