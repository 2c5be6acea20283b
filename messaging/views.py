import uuid
from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import user_get_active
from chatserver.errors import InvalidInput
from chatserver.openapi import error_responses
from messaging import selectors, services
from messaging.exceptions import UserNotFound
from messaging.serializers import (
    HistoryMessageSerializer,
    HistoryQuerySerializer,
    MessageContentSerializer,
    MessageSerializer,
)


class ChatHistoryView(APIView):
    @extend_schema(
        parameters=[HistoryQuerySerializer],
        responses={
            200: OpenApiResponse(
                HistoryMessageSerializer(many=True),
                description="Newest first. When more exist, the next page's cursor is in the "
                '`X-Next-Cursor` header and a `Link: <...>; rel="next"` header.',
            ),
            **error_responses(400, 401, 404),
        },
        tags=["chats"],
        summary="History of my direct conversation with a user",
    )
    def get(self, request: Request, user_id: str) -> Response:
        other = user_get_active(_parse_uuid(user_id, "userId"))
        if other is None:
            raise UserNotFound()
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = selectors.message_history(user=request.user, other=other, **query.validated_data)
        response = Response(HistoryMessageSerializer(page.messages, many=True).data)
        if page.next_cursor:
            params = {
                "limit": query.validated_data.get("limit", selectors.HISTORY_PAGE_DEFAULT),
                "cursor": page.next_cursor,
            }
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode(params)}")
            response["Link"] = f'<{next_url}>; rel="next"'
            response["X-Next-Cursor"] = page.next_cursor
        return response


def _parse_uuid(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a UUID.", field=name) from None


_EDIT_SCHEMA = {
    "request": MessageContentSerializer,
    "responses": {200: MessageSerializer, **error_responses(400, 401, 403, 404)},
    "tags": ["messages"],
}
_DELETE_SCHEMA = {
    "request": None,
    "responses": {200: MessageSerializer, **error_responses(401, 403, 404)},
    "tags": ["messages"],
}


class MessageEditView(APIView):
    @extend_schema(**_EDIT_SCHEMA, summary="Edit my message")
    def patch(self, request: Request, message_id: uuid.UUID) -> Response:
        body = MessageContentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        message = services.message_edit(
            user=request.user, message_id=message_id, content=body.validated_data["content"]
        )
        return Response(MessageSerializer(message).data)

    @extend_schema(**_EDIT_SCHEMA, summary="Edit my message (same as PATCH)")
    def put(self, request: Request, message_id: uuid.UUID) -> Response:
        return self.patch(request, message_id)


class MessageDeleteView(APIView):
    @extend_schema(**_DELETE_SCHEMA, summary="Delete my message for everyone")
    def delete(self, request: Request, message_id: uuid.UUID) -> Response:
        message = services.message_delete(user=request.user, message_id=message_id)
        return Response(MessageSerializer(message).data)

    @extend_schema(**_DELETE_SCHEMA, summary="Delete my message for everyone (same as DELETE)")
    def post(self, request: Request, message_id: uuid.UUID) -> Response:
        return self.delete(request, message_id)
