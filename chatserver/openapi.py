"""Shared OpenAPI pieces: the error body every endpoint answers with."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Human-readable message.")
    code = serializers.CharField(help_text="Stable snake_case error code.")
    field = serializers.CharField(required=False, help_text="The input field at fault, when there is one.")


_DESCRIPTIONS = {
    400: "Invalid input.",
    401: "Missing, invalid or expired credentials.",
    403: "Not allowed.",
    404: "Not found.",
    413: "Too large.",
    415: "Unsupported file type.",
    409: "Conflicts with what is there.",
    429: "Rate limited.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {s: OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[s]) for s in statuses}
