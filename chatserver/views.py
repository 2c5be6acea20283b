"""JSON answers for errors raised outside DRF views (used when DEBUG is off)."""

from django.contrib.staticfiles import finders
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static

from chatserver.middleware import json_error


def bad_request(request: HttpRequest, exception: Exception) -> JsonResponse:
    return json_error(400)


def permission_denied(request: HttpRequest, exception: Exception) -> JsonResponse:
    return json_error(403)


def not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    return json_error(404)


def server_error(request: HttpRequest) -> JsonResponse:
    return json_error(500, "Internal server error.")


# The browser client loads only same-origin modules and talks to this server.
CLIENT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def client(request: HttpRequest) -> HttpResponse:
    """The browser chat client (a reference client of the public API)."""
    response = render(request, "index.html")
    response["Content-Security-Policy"] = CLIENT_CSP
    return response


def service_worker(request: HttpRequest) -> FileResponse:
    """The client's service worker (push notifications), at the root so its scope is the whole app."""
    response = FileResponse(open(finders.find("chat/sw.js"), "rb"), content_type="text/javascript")  # noqa: SIM115 - FileResponse closes it
    response["Cache-Control"] = "no-cache"  # browsers check it for updates anyway; never serve a stale one
    response["Content-Security-Policy"] = CLIENT_CSP
    return response


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico on pages that name no icon (the admin, the API docs)."""
    return HttpResponseRedirect(static("chat/icon.svg"))


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Checks nothing else, so a database outage
    does not make an orchestrator restart every process at once."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database and (when configured) Redis answer; 503 otherwise."""
    checks = {"database": _check_database(), "redis": _check_redis()}
    ready = all(result in ("ok", "not configured") for result in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


def _check_database() -> str:
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as error:  # any driver error means "not ready"
        return f"error: {type(error).__name__}"


def _check_redis() -> str:
    from django.conf import settings

    if not settings.REDIS_URL:
        return "not configured"
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
        return "ok"
    except redis.RedisError as error:
        return f"error: {type(error).__name__}"
