"""JSON answers for errors raised outside DRF views (used when DEBUG is off)."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

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
