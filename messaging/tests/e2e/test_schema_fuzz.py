"""schemathesis over the OpenAPI schema against the production server: no 5xx,
no response that breaks the schema, for generated valid and invalid requests.

Run through its command line (``st run``), as an operator would run it."""

import shutil
import subprocess
import sys
from pathlib import Path

from messaging.tests.e2e.conftest import Stack

MAX_EXAMPLES = "10"


def test_schemathesis_finds_no_server_error_or_schema_violation(server_factory, tmp_path):
    server = server_factory(kind="uvicorn")
    stack = Stack([server])
    with stack.sockets:
        token = stack.account().token
    cli = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    result = subprocess.run(
        [
            cli,
            "run",
            f"{server.http}/api/schema",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            MAX_EXAMPLES,
            # What this test promises: no 5xx, and every response as documented.
            # (Its semantic checks, e.g. "a schema-valid request was refused",
            # flag business rules the schema cannot express, such as 404s.)
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance,response_headers_conformance",
            "--seed",
            "1",
            "--no-color",
        ],
        cwd=tmp_path,  # its cache stays out of the project
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
