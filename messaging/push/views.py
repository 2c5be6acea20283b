"""REST endpoints for a user's push targets."""

import uuid

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatserver.openapi import error_responses
from messaging.push import senders, targets
from messaging.push.serializers import (
    PushTargetCreatedSerializer,
    PushTargetSerializer,
    TargetRenameSerializer,
    VapidKeySerializer,
    WebhookTargetCreateSerializer,
    WebPushTargetCreateSerializer,
)

TAGS = ["push"]


class PushTargetListView(APIView):
    @extend_schema(
        responses={200: PushTargetSerializer(many=True), **error_responses(401)},
        tags=TAGS,
        summary="My push targets, oldest first",
    )
    def get(self, request: Request) -> Response:
        return Response(PushTargetSerializer(targets.targets_of(request.user), many=True).data)

    @extend_schema(
        request=PolymorphicProxySerializer(
            "PushTargetCreate",
            serializers={"webpush": WebPushTargetCreateSerializer, "webhook": WebhookTargetCreateSerializer},
            resource_type_field_name="kind",
        ),
        responses={200: PushTargetSerializer, 201: PushTargetCreatedSerializer, **error_responses(400, 401, 409)},
        tags=TAGS,
        summary="Register a Web Push subscription or a webhook",
        description="A browser sends `subscription.toJSON()` (201; the same subscription again answers 200 and "
        "moves it to you). A webhook gets a signing secret, returned only in this answer. Pushes are sent when "
        "none of your devices got a conversation's new messages within PUSH_GRACE_SECONDS: one per conversation "
        "and burst, never for muted conversations, and without the text unless you set `push_show_content`.",
    )
    def post(self, request: Request) -> Response:
        kind = request.data.get("kind") if isinstance(request.data, dict) else None
        if kind == "webhook":
            body = WebhookTargetCreateSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
            target = targets.target_register_webhook(request.user, url=data["url"], name=data.get("name", ""))
            return Response(PushTargetCreatedSerializer(target).data, status=201)
        body = WebPushTargetCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        subscription = data["subscription"]
        target, created = targets.target_register_webpush(
            request.user,
            endpoint=subscription["endpoint"],
            p256dh=subscription["keys"]["p256dh"],
            auth=subscription["keys"]["auth"],
            name=data.get("name", ""),
        )
        return Response(
            (PushTargetCreatedSerializer if created else PushTargetSerializer)(target).data,
            status=201 if created else 200,
        )


class PushTargetView(APIView):
    @extend_schema(
        request=TargetRenameSerializer,
        responses={200: PushTargetSerializer, **error_responses(400, 401, 404)},
        tags=TAGS,
        summary="Rename a push target",
    )
    def patch(self, request: Request, target_id: uuid.UUID) -> Response:
        body = TargetRenameSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        target = targets.target_rename(request.user, target_id=target_id, name=body.validated_data["name"])
        return Response(PushTargetSerializer(target).data)

    @extend_schema(
        responses={204: None, **error_responses(401, 404)},
        tags=TAGS,
        summary="Remove a push target (its queued pushes are dropped)",
    )
    def delete(self, request: Request, target_id: uuid.UUID) -> Response:
        targets.target_remove(request.user, target_id=target_id)
        return Response(status=204)


class VapidKeyView(APIView):
    @extend_schema(
        responses={200: VapidKeySerializer, **error_responses(401)},
        tags=TAGS,
        summary="The server's VAPID public key, for pushManager.subscribe()",
    )
    def get(self, request: Request) -> Response:
        return Response({"public_key": senders.vapid_public_key()})
