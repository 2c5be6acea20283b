"""The REST API's JSON parser: DRF's, on the strict parser both transports share."""

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from chatserver import strict_json


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return strict_json.loads(stream.read().decode(encoding))
        except (strict_json.MalformedJson, UnicodeDecodeError) as error:
            raise ParseError(f"Request body is not valid JSON: {error}", code="invalid_json") from None
