import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatserver.errors import InvalidInput
from chatserver.openapi import error_responses
from messaging import search, services
from messaging.attachments.selectors import attachment_for_download
from messaging.attachments.services import AttachmentTooLarge
from messaging.conversations.selectors import ConversationPage, active_membership, conversation_list, membership_of
from messaging.exceptions import AttachmentNotFound, ConversationNotFound, MessageNotFound, UserNotFound
from messaging.groups.selectors import group_members
from messaging.messages.selectors import conversation_history, message_edits, message_history
from messaging.models import GROUP_MAX_MEMBERS, GROUP_TITLE_MAX_LENGTH
from messaging.presence import registry as presence
from messaging.rules import parse_uuid
from messaging.search import user_search
from messaging.serializers import (
    AttachmentSerializer,
    ChangedMessageSerializer,
    ConversationOpenSerializer,
    ConversationSerializer,
    GroupCreateSerializer,
    GroupRenameSerializer,
    HistoryMessageSerializer,
    HistoryQuerySerializer,
    MembersAddSerializer,
    MemberSerializer,
    MessageContentSerializer,
    MessageEditSerializer,
    MuteSerializer,
    PageQuerySerializer,
    PeerSerializer,
    ReadSerializer,
    SearchQuerySerializer,
    SearchResultSerializer,
    UnreadSerializer,
    UserSearchQuerySerializer,
    conversation_item,
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
        other_id = parse_uuid(user_id, "userId")
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = message_history(user=request.user, other_id=other_id, **query.validated_data)
        if page is None:
            raise UserNotFound()
        response = Response(HistoryMessageSerializer(page.messages, many=True).data)
        return with_next_page(request, response, page.next_cursor, query.validated_data["limit"])


def with_next_page(
    request: Request, response: Response, next_cursor: str | None, limit: int, **params: str
) -> Response:
    """Point to the next page in ``Link: <...>; rel="next"`` and ``X-Next-Cursor``."""
    if next_cursor:
        query = {**params, "limit": limit, "cursor": next_cursor}
        next_url = request.build_absolute_uri(f"{request.path}?{urlencode(query)}")
        response["Link"] = f'<{next_url}>; rel="next"'
        response["X-Next-Cursor"] = next_cursor
    return response


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
        return Response(ChangedMessageSerializer(services.message_mark_read(request.user, message_id)).data)


PAGED = 'More pages: the next page\'s cursor is in the `X-Next-Cursor` header and a `Link: <...>; rel="next"` header.'


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
            conversation, created = services.conversation_open(request.user, body.validated_data["user_id"])
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


def _render_conversations(request: Request, page: ConversationPage) -> list[dict]:
    """Page items with the peers' presence: one registry round trip for the page."""
    peers = [m.conversation.other_user_id(request.user.id) for m in page.memberships]
    online = presence.get_presence().online([pk for pk in peers if pk])
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
        services.conversation_mute(request.user, conversation_id=conversation_id, **body.validated_data)
        return Response(_conversation_item(request, conversation_id))


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
            request.user, conversation_id, body.validated_data.get("up_to")
        )
        return Response({"conversation": conversation, "unread_count": count})


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
        page = search.message_search(
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


class AttachmentUploadView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        responses={201: AttachmentSerializer, **error_responses(400, 401, 413, 415)},
        tags=["attachments"],
        summary="Upload a file to attach to a message",
        description="Send the returned `id` in a message frame's `attachments` list. The type is read from the "
        "file's bytes (PNG, JPEG, GIF, WebP, PDF, UTF-8 text by default); images are checked and measured.",
    )
    def post(self, request: Request) -> Response:
        # Refuse before reading the body: Content-Length is known up front.
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.ATTACHMENT_MAX_BYTES + 64 * 1024:
            raise AttachmentTooLarge(f"Attachments are limited to {settings.ATTACHMENT_MAX_BYTES} bytes.")
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput("Send the file as multipart/form-data field 'file'.", field="file")
        attachment = services.attachment_upload(user=request.user, upload=upload)
        return Response(AttachmentSerializer(attachment).data, status=201)


class AttachmentDownloadView(APIView):
    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(description="The file."),
            **error_responses(401, 404),
        },
        tags=["attachments"],
        summary="Download an attachment (members of its conversation only)",
    )
    def get(self, request: Request, attachment_id: uuid.UUID) -> FileResponse:
        attachment = attachment_for_download(request.user, attachment_id)
        if attachment is None:
            raise AttachmentNotFound()
        response = FileResponse(
            attachment.file.open("rb"),
            as_attachment=True,
            filename=attachment.name,
            content_type=attachment.content_type,
        )
        response["Content-Length"] = str(attachment.size)
        # Never rendered by the browser as a page of this origin.
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, max-age=3600"
        return response
