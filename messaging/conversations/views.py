"""REST of conversations: the list, one conversation, opening a direct one or
creating a group, renaming a group, muting."""

import uuid

from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatserver.openapi import error_responses
from chatserver.pagination import PAGED, with_next_page
from messaging import services
from messaging.conversations.selectors import ConversationPage, conversation_list
from messaging.exceptions import ConversationNotFound
from messaging.models import GROUP_MAX_MEMBERS, GROUP_TITLE_MAX_LENGTH
from messaging.presence.registry import get_presence
from messaging.serializers import (
    ConversationOpenSerializer,
    ConversationSerializer,
    GroupCreateSerializer,
    GroupRenameSerializer,
    MuteSerializer,
    PageQuerySerializer,
    conversation_item,
)


class ConversationListView(APIView):
    @extend_schema(
        parameters=[PageQuerySerializer],
        responses={
            200: OpenApiResponse(ConversationSerializer(many=True), description=PAGED),
            **error_responses(400, 401),
        },
        tags=["conversations"],
        operation_id="conversations_list",
        summary="My conversations, most recent activity first",
    )
    def get(self, request: Request) -> Response:
        query = PageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = conversation_list(user=request.user, **query.validated_data)
        response = Response(_render_conversations(request, page))
        return with_next_page(request, response, page.next_cursor, query.validated_data["limit"])

    @extend_schema(
        request=PolymorphicProxySerializer(
            "ConversationCreate",
            serializers=[ConversationOpenSerializer, GroupCreateSerializer],
            resource_type_field_name=None,
        ),
        responses={200: ConversationSerializer, 201: ConversationSerializer, **error_responses(400, 401, 404)},
        tags=["conversations"],
        summary="Open my direct conversation with a user, or create a group",
        description='`{"user_id": ...}` opens (or returns, 200) the direct conversation with that user. '
        f'`{{"title": ..., "members": [...]}}` creates a group (you are its admin; at most {GROUP_MAX_MEMBERS} '
        f"members, titles up to {GROUP_TITLE_MAX_LENGTH} characters).",
    )
    def post(self, request: Request) -> Response:
        if isinstance(request.data, dict) and ("members" in request.data or "title" in request.data):
            body = GroupCreateSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            conversation = services.group_create(creator=request.user, **body.validated_data)
            created = True
        else:
            body = ConversationOpenSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            conversation, created = services.conversation_open(
                user=request.user, other_id=body.validated_data["user_id"]
            )
        return Response(_conversation_item(request, conversation.id), status=201 if created else 200)


def _conversation_item(request: Request, conversation_id: uuid.UUID) -> dict:
    page = conversation_list(user=request.user, limit=1, only=conversation_id)
    if not page.memberships:
        raise ConversationNotFound()
    return _render_conversations(request, page)[0]


class ConversationDetailView(APIView):
    @extend_schema(
        responses={200: ConversationSerializer, **error_responses(401, 404)},
        tags=["conversations"],
        summary="One of my conversations",
    )
    def get(self, request: Request, conversation_id: uuid.UUID) -> Response:
        return Response(_conversation_item(request, conversation_id))

    @extend_schema(
        request=GroupRenameSerializer,
        responses={200: ConversationSerializer, **error_responses(400, 401, 403, 404)},
        tags=["groups"],
        summary="Rename a group (admins)",
    )
    def patch(self, request: Request, conversation_id: uuid.UUID) -> Response:
        body = GroupRenameSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.group_rename(user=request.user, conversation_id=conversation_id, **body.validated_data)
        return Response(_conversation_item(request, conversation_id))


def _render_conversations(request: Request, page: ConversationPage) -> list[dict]:
    """Page items with the peers' presence: one registry round trip for the page."""
    peers = [m.conversation.other_user_id(request.user.id) for m in page.memberships]
    online = get_presence().online([pk for pk in peers if pk])
    items = [
        conversation_item(m, page.last_messages.get(m.conversation_id), online, request.user.id)
        for m in page.memberships
    ]
    return ConversationSerializer(items, many=True).data


class ConversationMuteView(APIView):
    @extend_schema(
        request=MuteSerializer,
        responses={200: ConversationSerializer, **error_responses(400, 401, 404)},
        tags=["conversations"],
        summary="Mute or unmute a conversation (no push notifications while muted)",
    )
    def put(self, request: Request, conversation_id: uuid.UUID) -> Response:
        body = MuteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.conversation_mute(user=request.user, conversation_id=conversation_id, **body.validated_data)
        return Response(_conversation_item(request, conversation_id))
