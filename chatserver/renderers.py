"""The REST API's JSON renderer: DRF's output, written by orjson."""

from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_drf_encoder = JSONEncoder()


class ORJSONRenderer(JSONRenderer):
    """Byte for byte what DRF's compact, UTF-8 ``JSONRenderer`` writes, without
    the standard library's encoder. Serializers hand over strings, numbers, lists and dicts,
    which orjson writes itself; anything else (a datetime or a lazy string
    put in a response directly) goes through DRF's own encoder, so it reads
    the same as before (``...Z`` datetimes, for one)."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_drf_encoder.default, option=_OPTIONS)


_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
