"""REST of search: people by username, messages by their words."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatserver.openapi import error_responses
from chatserver.pagination import PAGED, with_next_page
from messaging.search.selectors import message_search, user_search
from messaging.serializers import (
    PeerSerializer,
    SearchQuerySerializer,
    SearchResultSerializer,
    UserSearchQuerySerializer,
)


class UserSearchView(APIView):
    @extend_schema(
        parameters=[UserSearchQuerySerializer],
        responses={200: OpenApiResponse(PeerSerializer(many=True), description=PAGED), **error_responses(400, 401)},
        tags=["users"],
        summary="Find users by username prefix",
    )
    def get(self, request: Request) -> Response:
        query = UserSearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        if not query.validated_data.get("q"):
            return Response([])
        data = query.validated_data
        users, next_cursor = user_search(
            user=request.user, query=data["q"], limit=data["limit"], cursor=data.get("cursor")
        )
        response = Response(PeerSerializer(users, many=True).data)
        return with_next_page(request, response, next_cursor, data["limit"], q=data["q"])


class MessageSearchView(APIView):
    @extend_schema(
        parameters=[SearchQuerySerializer],
        responses={
            200: OpenApiResponse(SearchResultSerializer(many=True), description=PAGED),
            **error_responses(400, 401),
        },
        tags=["messages"],
        summary="Search my conversations' messages",
        description="Only conversations I am (or was, up to leaving) a member of; deleted messages never match. "
        "PostgreSQL: full-text search, `order=best` ranks by relevance. SQLite: every word must occur, newest first.",
    )
    def get(self, request: Request) -> Response:
        query = SearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        page = message_search(
            user=request.user,
            query=data["q"],
            order=data["order"],
            limit=data["limit"],
            cursor=data.get("cursor"),
        )
        body = SearchResultSerializer(page.messages, many=True, context={"highlights": page.highlights}).data
        return with_next_page(
            request, Response(body), page.next_cursor, data["limit"], q=data["q"], order=data["order"]
        )
