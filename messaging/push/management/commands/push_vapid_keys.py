"""``manage.py push_vapid_keys``: a new VAPID key pair for Web Push."""

from cryptography.hazmat.primitives import serialization
from django.core.management.base import BaseCommand
from py_vapid import Vapid

from messaging.push.senders import b64url, new_vapid_private_key


class Command(BaseCommand):
    help = (
        "Print a new VAPID key pair to set as WEBPUSH_VAPID_PRIVATE_KEY (without it, the server makes one and keeps "
        "it in the database). Browsers get the public key from GET /push/vapid-public-key."
    )

    def handle(self, *args, **options) -> None:
        private = new_vapid_private_key()
        public = Vapid.from_raw(private.encode()).public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.stdout.write(f"WEBPUSH_VAPID_PRIVATE_KEY={private}")
        self.stdout.write(f"# its public key: {b64url(public)}")
