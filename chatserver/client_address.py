"""The client's address, the same way for REST, the admin and WebSocket handshakes."""

from django.conf import settings


def client_address(remote_address: str | None, forwarded_for: str | None) -> str:
    """The address the per-address limits count against.

    With ``TRUSTED_PROXY_COUNT`` = n > 0, the n-th address from the right of
    ``X-Forwarded-For`` (what the outermost trusted proxy saw); with 0 the
    header is ignored, since any client can send one.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0 and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",")]
        return hops[-min(proxies, len(hops))] or (remote_address or "")
    return remote_address or ""


def request_client_address(request) -> str:
    """``client_address`` of a Django or DRF request."""
    return client_address(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))


def scope_client_address(scope: dict) -> str:
    """``client_address`` of an ASGI connection scope (a WebSocket handshake)."""
    remote = scope.get("client") or (None, None)
    forwarded = next((value for name, value in scope.get("headers", []) if name == b"x-forwarded-for"), None)
    return client_address(remote[0], forwarded.decode("latin-1") if forwarded is not None else None)
