"""REST of attachments: upload, download."""

import uuid

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatserver.errors import InvalidInput
from chatserver.openapi import error_responses
from messaging import services
from messaging.attachments.selectors import attachment_for_download
from messaging.attachments.services import AttachmentTooLarge
from messaging.exceptions import AttachmentNotFound
from messaging.serializers import AttachmentSerializer


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
