"""Push targets on the wire: what devices send to register, what they get back."""

from rest_framework import serializers

from messaging.push.models import ENDPOINT_MAX_LENGTH, TARGET_NAME_MAX_LENGTH, PushTarget


class SubscriptionKeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField(max_length=100, help_text="The subscription's P-256 public key (base64url).")
    auth = serializers.CharField(max_length=50, help_text="The subscription's auth secret (base64url).")


class SubscriptionSerializer(serializers.Serializer):
    """A browser's PushSubscription, as ``subscription.toJSON()`` gives it."""

    endpoint = serializers.URLField(max_length=ENDPOINT_MAX_LENGTH)
    keys = SubscriptionKeysSerializer()


class WebPushTargetCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(["webpush"])
    name = serializers.CharField(max_length=TARGET_NAME_MAX_LENGTH, required=False, allow_blank=True)
    subscription = SubscriptionSerializer()


class WebhookTargetCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(["webhook"])
    name = serializers.CharField(max_length=TARGET_NAME_MAX_LENGTH, required=False, allow_blank=True)
    url = serializers.URLField(max_length=ENDPOINT_MAX_LENGTH, help_text="An https URL of your push gateway.")


class TargetRenameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=TARGET_NAME_MAX_LENGTH)


class PushTargetSerializer(serializers.ModelSerializer):
    endpoint = serializers.URLField(help_text="The push service's endpoint (Web Push) or the webhook's URL.")

    class Meta:
        model = PushTarget
        fields = ["id", "kind", "name", "endpoint", "created_at", "last_success_at"]


class PushTargetCreatedSerializer(PushTargetSerializer):
    """A target as registered: a webhook's with its signing secret, shown this once."""

    secret = serializers.CharField(
        required=False,
        help_text="Webhooks only: the Standard Webhooks signing secret (whsec_...) to verify `webhook-signature` "
        "with. Shown only in this answer.",
    )

    class Meta(PushTargetSerializer.Meta):
        fields = [*PushTargetSerializer.Meta.fields, "secret"]

    def to_representation(self, target: PushTarget) -> dict:
        data = super().to_representation(target)
        if target.kind != PushTarget.Kind.WEBHOOK:
            del data["secret"]
        return data


class VapidKeySerializer(serializers.Serializer):
    public_key = serializers.CharField(help_text="The applicationServerKey for pushManager.subscribe() (base64url).")
