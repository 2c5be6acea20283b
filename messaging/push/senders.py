"""Sending one push: Web Push (encrypted for the subscription, signed with
VAPID) or a webhook (signed with the target's secret, Standard Webhooks)."""

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cache

import requests
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import IntegrityError, transaction
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from messaging.push.exceptions import InvalidTarget
from messaging.push.models import PushTarget, VapidKey
from messaging.push.netguard import check_url

RETRY_AFTER_MAX_SECONDS = 3600


@dataclass(frozen=True)
class Outcome:
    """What the push service or webhook answered: an HTTP status, or None when
    no answer came (network error, timeout); ``refused`` when we did not call."""

    status: int | None
    retry_after: float | None = None
    refused: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _NoRedirects(requests.Session):
    """A redirect could point a user-given URL at an internal address."""

    def request(self, *args, **kwargs):
        kwargs["allow_redirects"] = False
        return super().request(*args, **kwargs)


@cache
def _session() -> requests.Session:
    session = _NoRedirects()  # keep-alive to the push services, per worker process
    session.trust_env = False  # no proxy settings or .netrc credentials for hosts users name
    return session


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_vapid_private_key() -> str:
    vapid = Vapid()
    vapid.generate_keys()
    return b64url(vapid.private_key.private_numbers().private_value.to_bytes(32, "big"))


def vapid_private_key() -> str:
    """The configured key, else the one kept in the database (made on first use)."""
    if settings.WEBPUSH_VAPID_PRIVATE_KEY:
        return settings.WEBPUSH_VAPID_PRIVATE_KEY
    kept = VapidKey.objects.filter(pk=1).values_list("private_key", flat=True).first()
    if kept is None:
        try:
            with transaction.atomic():
                kept = VapidKey.objects.create(pk=1, private_key=new_vapid_private_key()).private_key
        except IntegrityError:  # another process made it first: use that one
            kept = VapidKey.objects.values_list("private_key", flat=True).get(pk=1)
    return kept


def vapid_public_key() -> str:
    """The applicationServerKey browsers subscribe with (base64url, uncompressed point)."""
    key = Vapid.from_raw(vapid_private_key().encode()).public_key
    return b64url(key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def topic(conversation_id: str) -> str:
    """Web Push's collapse key (at most 32 base64url characters): a push service
    holding an undelivered push of this conversation replaces it by the newer one."""
    return b64url(hashlib.sha256(conversation_id.encode()).digest()[:24])


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)


def send(target: PushTarget, *, push_id: str, body: bytes, collapse: str) -> Outcome:
    try:
        check_url(target.endpoint, field="endpoint", resolve=True)  # again: a name can point elsewhere by now
    except InvalidTarget as error:
        return Outcome(None, refused=error.detail)
    try:
        if target.kind == PushTarget.Kind.WEBPUSH:
            return _webpush(target, body, collapse)
        return _webhook(target, push_id, body)
    except requests.RequestException:
        return Outcome(None)


def _webpush(target: PushTarget, body: bytes, collapse: str) -> Outcome:
    try:
        response = webpush(
            {"endpoint": target.endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}},
            data=body,
            vapid_private_key=vapid_private_key(),
            # A new dict each time: webpush() writes this service's "aud" into it.
            vapid_claims={"sub": settings.WEBPUSH_VAPID_SUBJECT},
            ttl=settings.WEBPUSH_TTL_SECONDS,
            timeout=settings.PUSH_HTTP_TIMEOUT_SECONDS,
            headers={"Topic": collapse, "Urgency": "normal"},
            requests_session=_session(),
        )
    except WebPushException as error:
        if error.response is None:
            return Outcome(None)
        return Outcome(error.response.status_code, _retry_after(error.response))
    return Outcome(response.status_code)


def webhook_headers(secret: str, push_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Standard Webhooks' signature: HMAC-SHA256 of "id.timestamp.body" with the
    secret; the receiver checks it and the timestamp, and drops repeated ids."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    timestamp = str(int(time.time() if now is None else now))
    mac = hmac.new(key, f"{push_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "webhook-id": push_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def _webhook(target: PushTarget, push_id: str, body: bytes) -> Outcome:
    response = _session().post(
        target.endpoint,
        data=body,
        headers=webhook_headers(target.secret, push_id, body),
        timeout=settings.PUSH_HTTP_TIMEOUT_SECONDS,
    )
    return Outcome(response.status_code, _retry_after(response))
