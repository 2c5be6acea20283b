"""The message benchmark still runs end to end (a few seconds, on SQLite): the
figures are for humans, but the command must not rot."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_message_benchmark_prints_its_table_and_loses_nothing():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.messages",
            "--pairs",
            "2",
            "--rates",
            "20",
            "--seconds",
            "1",
            "--servers",
            "uvicorn",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split("  ")[0]: line for line in result.stdout.splitlines() if line.startswith(("bare", "chat"))}
    chat = rows["chat uvicorn, 1 process"]
    sent, stored, lost = (int(value) for value in re.split(r"\s+", chat.strip())[-4:-1])
    assert sent > 0 and stored == sent and lost == 0, chat
    assert "server CPU per message delivered" in result.stdout
    assert "writer" in result.stdout  # read from the server's /metrics
