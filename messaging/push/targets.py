"""Registering, renaming and removing a user's push targets, and reading them."""

import base64
import binascii
import secrets
import uuid

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import User
from messaging.push.exceptions import InvalidTarget, TargetNotFound, TooManyTargets
from messaging.push.models import PushDelivery, PushTarget
from messaging.push.netguard import check_url

Kind = PushTarget.Kind


def targets_of(user: User) -> list[PushTarget]:
    return list(PushTarget.objects.filter(user=user).order_by("created_at", "id"))


def _b64url(value: str, field: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidTarget("Must be base64url.", field=field) from None


def _check_subscription_keys(p256dh: str, auth: str) -> None:
    """The browser's P-256 public key (65 bytes, uncompressed) and 16-byte auth
    secret (RFC 8291): a subscription we could not encrypt for is refused now,
    not at every push."""
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url(p256dh, "keys.p256dh"))
    except ValueError:
        raise InvalidTarget("Not a P-256 public key.", field="keys.p256dh") from None
    if len(_b64url(auth, "keys.auth")) != 16:
        raise InvalidTarget("The auth secret must be 16 bytes.", field="keys.auth")


def _check_room(user: User) -> None:
    """In the caller's transaction; the user's row is locked so that two
    registrations at once cannot both take the last place."""
    User.objects.select_for_update().filter(pk=user.pk).first()
    if PushTarget.objects.filter(user=user).count() >= settings.PUSH_TARGETS_PER_USER:
        raise TooManyTargets(f"At most {settings.PUSH_TARGETS_PER_USER} push targets per user; remove one first.")


def target_register_webpush(
    user: User, *, endpoint: str, p256dh: str, auth: str, name: str = ""
) -> tuple[PushTarget, bool]:
    """A browser's subscription; (target, created). The same subscription
    registered again (a reload, or another login on that browser) is updated
    and moves to ``user``: a browser gets one user's pushes, never two."""
    check_url(endpoint, field="endpoint", resolve=False)
    _check_subscription_keys(p256dh, auth)
    fields = {"user": user, "p256dh": p256dh, "auth": auth}
    for _ in range(2):  # a concurrent first registration of the same endpoint
        with transaction.atomic():
            existing = PushTarget.objects.select_for_update().filter(kind=Kind.WEBPUSH, endpoint=endpoint).first()
            if existing is not None:
                if existing.user_id != user.id:
                    # Another user's pushes still queued for this browser must not reach this one.
                    existing.deliveries.filter(status=PushDelivery.Status.PENDING).delete()
                changed = {**fields, **({"name": name} if name else {})}
                for key, value in changed.items():
                    setattr(existing, key, value)
                existing.save(update_fields=list(changed))
                return existing, False
            _check_room(user)
            try:
                with transaction.atomic():
                    created = PushTarget.objects.create(
                        kind=Kind.WEBPUSH, endpoint=endpoint, name=name or "Browser", **fields
                    )
                return created, True
            except IntegrityError:
                continue
    raise InvalidTarget("This subscription is being registered concurrently; retry.", field="endpoint")


def target_register_webhook(user: User, *, url: str, name: str = "") -> PushTarget:
    """An HTTPS endpoint of the team's own gateway; pushes to it are signed with
    a secret made here and returned once (Standard Webhooks)."""
    check_url(url, field="url", resolve=False)
    with transaction.atomic():
        _check_room(user)
        return PushTarget.objects.create(
            user=user,
            kind=Kind.WEBHOOK,
            endpoint=url,
            name=name or "Webhook",
            secret="whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        )


def _own(user: User, target_id: uuid.UUID) -> PushTarget:
    target = PushTarget.objects.filter(user=user, pk=target_id).first()
    if target is None:
        raise TargetNotFound()
    return target


def target_rename(user: User, *, target_id: uuid.UUID, name: str) -> PushTarget:
    target = _own(user, target_id)
    target.name = name
    target.save(update_fields=["name"])
    return target


def target_remove(user: User, *, target_id: uuid.UUID) -> None:
    """Its pushes still queued go with it."""
    _own(user, target_id).delete()
