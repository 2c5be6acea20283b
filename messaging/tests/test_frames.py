"""messaging.frames against docs/protocol.md: the docs name every frame the
server knows, and only those; every example is a valid frame; every field of
a frame is documented. (Every frame a test socket receives is checked against
the same shapes: messaging/tests/conftest.py, Device.recv.)"""

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from rest_framework import serializers

from messaging import frames

PROTOCOL = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


def section(title: str) -> str:
    """The text of a ``## title`` section, up to the next ``## `` heading."""
    start = PROTOCOL.index(f"\n## {title}\n")
    end = PROTOCOL.find("\n## ", start + 1)
    return PROTOCOL[start : end if end != -1 else None]


def subsections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of each ``### `` subsection."""
    parts = re.split(r"^### (.+)$", text, flags=re.MULTILINE)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def examples(text: str, named: list[str]) -> list[dict]:
    """Every frame example: ```json blocks (one object, or one per line) and
    inline `{"type": ...}` code spans of the frames ``named`` in the heading
    (a span may show the answer to the frame: ping's pong). A block that is
    not an object (a fragment such as a field's value) is left out."""
    found = []
    for block in re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL):
        if not block.lstrip().startswith("{"):
            continue
        try:
            found.append(json.loads(block))
        except json.JSONDecodeError:
            found += [json.loads(line) for line in block.splitlines() if line.strip()]
    inline = [json.loads(span) for span in re.findall(r"`(\{\"type\".*?\})`", text)]
    return found + [frame for frame in inline if frame["type"] in named]


def documented(title: str) -> dict[str, dict]:
    """Frame type -> its examples and the text that describes it."""
    frames_found: dict[str, dict] = {}
    for heading, body in subsections(section(title)):
        named = re.findall(r"`(\w+)`", heading)
        shown = examples(body, named)
        for frame_type in {*named, *(example["type"] for example in shown)}:
            entry = frames_found.setdefault(frame_type, {"examples": [], "text": ""})
            entry["examples"] += [e for e in shown if e["type"] == frame_type]
            entry["text"] += body
    return frames_found


DIRECTIONS = [("Client → server", frames.CLIENT_FRAMES), ("Server → client", frames.SERVER_FRAMES)]


@pytest.mark.parametrize(("title", "registry"), DIRECTIONS)
def test_the_protocol_documents_every_frame_and_no_other(title, registry) -> None:
    # "Attachments" is a subsection about fields of the send frames, not a frame.
    assert set(documented(title)) - {"Attachments"} == set(registry)


@pytest.mark.parametrize(("title", "registry"), DIRECTIONS)
def test_every_example_is_a_frame_of_its_shape(title, registry) -> None:
    problems = [
        problem
        for entry in documented(title).values()
        for example in entry["examples"]
        for problem in frames.shape_problems(example, registry)
    ]
    assert problems == []


@pytest.mark.parametrize(("title", "registry"), DIRECTIONS)
def test_every_field_of_every_frame_is_documented(title, registry) -> None:
    docs = documented(title)
    undocumented = []
    for frame_type, shape in registry.items():
        entry = docs.get(frame_type, {"examples": [], "text": ""})
        shown = {name for example in entry["examples"] for name in example}
        described = set(re.findall(r"`\"?(\w+)\"?", entry["text"]))
        undocumented += [f"{frame_type}.{name}" for name in shape.__annotations__ if name not in shown | described]
    assert undocumented == []


def test_shape_problems_finds_what_is_wrong() -> None:
    # Controls for the checks above and for Device.recv.
    good = frames.synced_frame(4)
    assert frames.shape_problems(good) == []
    assert frames.shape_problems({"type": "synced"}) == ["synced: missing seq"]
    assert frames.shape_problems({**good, "extra": 1}) == ["synced: unexpected extra"]
    assert frames.shape_problems({"type": "nope"}) == ["unknown frame {'type': 'nope'}"]
    assert frames.shape_problems({"type": "ping"}, frames.CLIENT_FRAMES) == []
    assert frames.shape_problems({"type": "ping"}) != []  # a client frame, not a server one


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 1, 15, 10, 0, 0, 123456, tzinfo=UTC),
        datetime(2024, 1, 15, 10, 0, 0, tzinfo=UTC),  # no microseconds: none written
        datetime(2024, 1, 15, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),  # another offset: as UTC
    ],
)
def test_frame_times_are_written_as_rest_writes_them(value: datetime) -> None:
    assert frames.iso(value) == serializers.DateTimeField().to_representation(value)
    assert frames.iso(None) is None
