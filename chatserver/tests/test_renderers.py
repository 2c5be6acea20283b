"""chatserver.renderers: orjson writes exactly what DRF's renderer would."""

import datetime
import uuid

from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer

from chatserver.renderers import ORJSONRenderer


def test_same_bytes_as_drf_for_every_kind_of_value():
    data = {
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "text": 'héllo ✓ "quoted" \n <tag>',
        "when": datetime.datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 12, 2),
        "lazy": gettext_lazy("Not found."),
        "detail": ErrorDetail("Bad value.", code="invalid"),
        "numbers": [1, -2, 3.5, 10**15, True, None],
        "nested": [{"a": []}, {}],
    }
    assert ORJSONRenderer().render(data) == JSONRenderer().render(data)


def test_nothing_renders_as_an_empty_body():
    assert ORJSONRenderer().render(None) == b""
