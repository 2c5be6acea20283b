"""One JSON error shape for the REST API: ``{"detail": str, "code": str, ...}``.

DRF's own errors come in several shapes (a string, a list, a dict of field
lists); clients of the seed only read ``detail``, so every error is flattened
to one message while the per-field messages stay under ``errors``.
"""

import logging
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from chatserver.errors import DomainError, RateLimited

logger = logging.getLogger(__name__)


def _first_message(detail: Any, prefix: str = "") -> tuple[str, str, str]:
    """Return (field, message, code) of the first error in a DRF error structure."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = "" if key in ("non_field_errors", "detail") else str(key)
            name = f"{prefix}.{field}" if prefix and field else (field or prefix)
            return _first_message(value, name)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0], prefix)
    code = getattr(detail, "code", None) or "invalid"
    return prefix, str(detail), str(code)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))} if isinstance(exc, RateLimited) else None
        return Response(exc.as_dict(), status=exc.status, headers=headers)

    if isinstance(exc, (OperationalError, InterfaceError, RedisError)):
        # The database (or Redis, for tickets) is down or restarting: nothing was stored; retry later.
        logger.warning("Service unavailable in %s: %s", context.get("view").__class__.__name__, exc)
        return Response(
            {"detail": "The service is temporarily unavailable; retry shortly.", "code": "unavailable"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "2"},
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {
                "detail": f"Request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
                "code": "request_too_large",
            },
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, exceptions.Throttled):
        response = drf_exception_handler(exc, context)
        response.data = {
            "detail": "Rate limit exceeded; retry later.",
            "code": "rate_limited",
            "retry_after": round(exc.wait or 0, 3),
        }
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.ValidationError):
        field, message, code = _first_message(exc.detail)
        body: dict[str, Any] = {
            "detail": f"{field}: {message}" if field else message,
            "code": code,
        }
        if field:
            body["field"] = field
        if isinstance(exc.detail, dict):
            body["errors"] = exc.detail
        return Response(body, status=status.HTTP_400_BAD_REQUEST)

    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        _, message, code = _first_message(exc.detail)
        response.data = {"detail": message, "code": code}
        return response

    # Anything else is a bug: log it and answer in the API's shape, not an HTML page.
    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
    return Response(
        {"detail": "Internal server error.", "code": "server_error"},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
