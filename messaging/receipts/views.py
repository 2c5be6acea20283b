"""REST of read state: mark a message or a conversation read."""

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatserver.openapi import error_responses
from messaging import services
from messaging.serializers import ChangedMessageSerializer, ReadSerializer, UnreadSerializer


class MessageReadView(APIView):
    @extend_schema(
        request=None,
        responses={200: ChangedMessageSerializer, **error_responses(401, 404)},
        tags=["messages"],
        summary="Mark a message read (the Go server's call)",
        description="Reads the conversation up to and including this message, as `POST "
        "/conversations/{id}/read` with `up_to` does; answers the message with its read state.",
    )
    def post(self, request: Request, message_id: uuid.UUID) -> Response:
        return Response(
            ChangedMessageSerializer(services.message_mark_read(user=request.user, message_id=message_id)).data
        )


class ConversationReadView(APIView):
    @extend_schema(
        request=ReadSerializer,
        responses={200: UnreadSerializer, **error_responses(400, 401, 404)},
        tags=["conversations"],
        summary="Mark a conversation read (all, or up to a message)",
        description="`{id}` is the conversation's id, or the other user's id for a direct conversation. "
        "The senders' devices get `message_read` (unless you turned read receipts off); yours get `unread`.",
    )
    def post(self, request: Request, conversation_id: uuid.UUID) -> Response:
        body = ReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation, count = services.conversation_mark_read(
            user=request.user, conversation_or_user_id=conversation_id, up_to=body.validated_data.get("up_to")
        )
        return Response({"conversation": conversation, "unread_count": count})
