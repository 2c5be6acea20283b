"""Push targets follow their user's account."""

from django.dispatch import receiver

from accounts.signals import password_changed
from messaging.push.models import PushTarget


@receiver(password_changed)
def forget_devices_on_request(sender, *, user, forget_devices: bool, **kwargs) -> None:
    if forget_devices:
        PushTarget.objects.filter(user=user).delete()
