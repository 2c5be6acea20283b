"""JSON answers for errors raised outside DRF views (used when DEBUG is off)."""

from django.http import HttpRequest, JsonResponse

from chatserver.middleware import json_error


def bad_request(request: HttpRequest, exception: Exception) -> JsonResponse:
    return json_error(400)


def permission_denied(request: HttpRequest, exception: Exception) -> JsonResponse:
    return json_error(403)


def not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    return json_error(404)


def server_error(request: HttpRequest) -> JsonResponse:
    return json_error(500, "Internal server error.")
