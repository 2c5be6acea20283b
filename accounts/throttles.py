"""The accounts endpoints' limits: attempts per address, registrations per
email, password changes per user (buckets of chatserver.ratelimit)."""

from rest_framework.request import Request

from accounts.models import normalize_email
from chatserver import ratelimit
from chatserver.throttles import BucketThrottle


class AuthAttemptThrottle(BucketThrottle):
    """Login and register attempts per client address (credential stuffing).
    The per-email limit on failed logins lives in accounts.services."""

    def allow_request(self, request: Request, view) -> bool:
        return self.record(request, ratelimit.hit("auth_ip", self.get_ident(request)))


class RegisterEmailThrottle(BucketThrottle):
    """Registrations naming one email (probing which addresses have accounts)."""

    def allow_request(self, request: Request, view) -> bool:
        email = request.data.get("email") if isinstance(request.data, dict) else None
        if isinstance(email, str) and email.strip():
            return self.record(request, ratelimit.hit("auth_email", normalize_email(email)))
        return True


class PasswordChangeThrottle(BucketThrottle):
    def allow_request(self, request: Request, view) -> bool:
        return self.record(request, ratelimit.hit("password", str(request.user.pk)))
