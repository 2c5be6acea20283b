"""REST of a group's members: list, add, remove, leave (creating and renaming a
group are conversations: messaging.conversations.views)."""

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatserver.openapi import error_responses
from messaging import services
from messaging.conversations.selectors import active_membership
from messaging.exceptions import ConversationNotFound
from messaging.groups.selectors import group_members
from messaging.serializers import MembersAddSerializer, MemberSerializer


class ConversationMembersView(APIView):
    @extend_schema(
        responses={200: MemberSerializer(many=True), **error_responses(401, 404)},
        tags=["groups"],
        summary="Current members, admins first",
    )
    def get(self, request: Request, conversation_id: uuid.UUID) -> Response:
        membership = active_membership(request.user, conversation_id)
        if membership is None:
            raise ConversationNotFound()  # former members no longer see who is in it
        return Response(MemberSerializer(group_members(membership.conversation), many=True).data)

    @extend_schema(
        request=MembersAddSerializer,
        responses={200: MemberSerializer(many=True), **error_responses(400, 401, 403, 404)},
        tags=["groups"],
        summary="Add members (admins)",
    )
    def post(self, request: Request, conversation_id: uuid.UUID) -> Response:
        body = MembersAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.group_add_members(user=request.user, conversation_id=conversation_id, **body.validated_data)
        return self.get(request, conversation_id)


class ConversationMemberView(APIView):
    @extend_schema(
        responses={204: None, **error_responses(401, 403, 404)},
        tags=["groups"],
        summary="Remove a member (admins), or yourself (leave)",
    )
    def delete(self, request: Request, conversation_id: uuid.UUID, user_id: uuid.UUID) -> Response:
        services.group_remove_member(user=request.user, conversation_id=conversation_id, member_id=user_id)
        return Response(status=204)


class ConversationLeaveView(APIView):
    @extend_schema(
        request=None, responses={204: None, **error_responses(401, 404)}, tags=["groups"], summary="Leave a group"
    )
    def post(self, request: Request, conversation_id: uuid.UUID) -> Response:
        services.group_leave(user=request.user, conversation_id=conversation_id)
        return Response(status=204)
