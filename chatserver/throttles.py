"""DRF throttles backed by the shared token buckets (chatserver.ratelimit); the
accounts endpoints' own are in accounts.throttles."""

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from chatserver import ratelimit
from chatserver.client_address import request_client_address
from chatserver.ratelimit import Decision


class BucketThrottle(BaseThrottle):
    decision: Decision | None = None

    def get_ident(self, request: Request) -> str:
        return request_client_address(request)

    def record(self, request: Request, decision: Decision) -> bool:
        self.decision = decision
        # Read by RateLimitHeadersMiddleware to add RateLimit-* headers.
        request._request.ratelimit_decision = decision
        return decision.allowed

    def wait(self) -> float | None:
        return self.decision.retry_after if self.decision else None


class UserRateThrottle(BucketThrottle):
    """The seed's REST limit: per authenticated user, applied after authentication."""

    def allow_request(self, request: Request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return True
        return self.record(request, ratelimit.hit("rest", str(request.user.pk)))
