"""REST of messages: direct history, a conversation's messages, edit, delete, edit history."""

import uuid

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatserver.openapi import error_responses
from chatserver.pagination import PAGED, with_next_page
from messaging import services
from messaging.conversations.selectors import membership_of
from messaging.exceptions import ConversationNotFound, MessageNotFound, UserNotFound
from messaging.messages.selectors import conversation_history, message_edits, message_history
from messaging.rules import parse_uuid
from messaging.serializers import (
    ChangedMessageSerializer,
    HistoryMessageSerializer,
    HistoryQuerySerializer,
    MessageContentSerializer,
    MessageEditSerializer,
)


class ChatHistoryView(APIView):
    @extend_schema(
        parameters=[HistoryQuerySerializer],
        responses={
            200: OpenApiResponse(
                HistoryMessageSerializer(many=True),
                description=f"Newest first. {PAGED}",
            ),
            **error_responses(400, 401, 404),
        },
        tags=["chats"],
        summary="History of my direct conversation with a user",
    )
    def get(self, request: Request, user_id: str) -> Response:
        other_id = parse_uuid(user_id, "userId")
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = message_history(user=request.user, other_id=other_id, **query.validated_data)
        if page is None:
            raise UserNotFound()
        response = Response(HistoryMessageSerializer(page.messages, many=True).data)
        return with_next_page(request, response, page.next_cursor, query.validated_data["limit"])


_EDIT_SCHEMA = {
    "request": MessageContentSerializer,
    "responses": {200: ChangedMessageSerializer, **error_responses(400, 401, 403, 404)},
    "tags": ["messages"],
}


_DELETE_SCHEMA = {
    "request": None,
    "description": "Deleting a message that is already deleted answers 200 with it again and tells nobody twice.",
    "responses": {200: ChangedMessageSerializer, **error_responses(401, 403, 404)},
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
        return Response(ChangedMessageSerializer(message).data)

    @extend_schema(**_EDIT_SCHEMA, summary="Edit my message (same as PATCH)")
    def put(self, request: Request, message_id: uuid.UUID) -> Response:
        return self.patch(request, message_id)


class MessageDeleteView(APIView):
    @extend_schema(**_DELETE_SCHEMA, summary="Delete my message for everyone")
    def delete(self, request: Request, message_id: uuid.UUID) -> Response:
        message = services.message_delete(user=request.user, message_id=message_id)
        return Response(ChangedMessageSerializer(message).data)

    @extend_schema(**_DELETE_SCHEMA, summary="Delete my message for everyone (same as DELETE)")
    def post(self, request: Request, message_id: uuid.UUID) -> Response:
        return self.delete(request, message_id)


class MessageEditsView(APIView):
    @extend_schema(
        responses={200: MessageEditSerializer(many=True), **error_responses(401, 404)},
        tags=["messages"],
        summary="Edit history of a message, newest first",
    )
    def get(self, request: Request, message_id: uuid.UUID) -> Response:
        edits = message_edits(request.user, message_id)
        if edits is None:
            raise MessageNotFound()
        return Response(MessageEditSerializer(edits, many=True).data)


class ConversationMessagesView(APIView):
    @extend_schema(
        parameters=[HistoryQuerySerializer],
        responses={
            200: OpenApiResponse(HistoryMessageSerializer(many=True), description=PAGED),
            **error_responses(400, 401, 404),
        },
        tags=["conversations"],
        summary="History of one of my conversations (groups too), newest first",
    )
    def get(self, request: Request, conversation_id: uuid.UUID) -> Response:
        membership = membership_of(request.user, conversation_id)
        if membership is None or membership.conversation_id != conversation_id:
            raise ConversationNotFound()
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = conversation_history(membership=membership, **query.validated_data)
        response = Response(HistoryMessageSerializer(page.messages, many=True).data)
        return with_next_page(request, response, page.next_cursor, query.validated_data["limit"])
