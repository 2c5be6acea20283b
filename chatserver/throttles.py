"""DRF throttles backed by the shared token buckets (chatserver.ratelimit)."""

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.models import normalize_email
from chatserver import ratelimit
from chatserver.client_address import request_client_address
from chatserver.ratelimit import Decision


class _BucketThrottle(BaseThrottle):
    decision: Decision | None = None

    def get_ident(self, request: Request) -> str:
        return request_client_address(request)

    def _record(self, request: Request, decision: Decision) -> bool:
        self.decision = decision
        # Read by RateLimitHeadersMiddleware to add RateLimit-* headers.
        request._request.ratelimit_decision = decision
        return decision.allowed

    def wait(self) -> float | None:
        return self.decision.retry_after if self.decision else None


class UserRateThrottle(_BucketThrottle):
    """The seed's REST limit: per authenticated user, applied after authentication."""

    def allow_request(self, request: Request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return True
        return self._record(request, ratelimit.hit("rest", str(request.user.pk)))


class AuthAttemptThrottle(_BucketThrottle):
    """Login and register attempts per client address (credential stuffing).
    The per-email limit on failed logins lives in accounts.services."""

    def allow_request(self, request: Request, view) -> bool:
        return self._record(request, ratelimit.hit("auth_ip", self.get_ident(request)))


class RegisterEmailThrottle(_BucketThrottle):
    """Registrations naming one email (probing which addresses have accounts)."""

    def allow_request(self, request: Request, view) -> bool:
        email = request.data.get("email") if isinstance(request.data, dict) else None
        if isinstance(email, str) and email.strip():
            return self._record(request, ratelimit.hit("auth_email", normalize_email(email)))
        return True


class PasswordChangeThrottle(_BucketThrottle):
    def allow_request(self, request: Request, view) -> bool:
        return self._record(request, ratelimit.hit("password", str(request.user.pk)))
