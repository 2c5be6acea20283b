#!/usr/bin/env python3
"""One-command setup for the chat server; needs only Python 3.11+.

    python3 dev.py serve   # create .venv, install, migrate, serve on http://localhost:8080 (and send pushes)
    python3 dev.py test    # create .venv, install test tools, run the test suite
    python3 dev.py lint    # ruff
    python3 dev.py manage createsuperuser   # any manage.py command, in development mode

Extra arguments go to the underlying command (``runserver``, ``pytest``, ``manage.py``).
``serve`` and ``manage`` run in development mode (``DJANGO_DEBUG=true``, public
development secrets) unless ``DJANGO_DEBUG`` is set; the settings refuse any
other start without real secrets.
"""

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
REQUIREMENT_FILES = ("requirements.txt", "requirements-dev.txt")


def _requirements_digest() -> str:
    digest = hashlib.sha256()
    for name in REQUIREMENT_FILES:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_environment(requirements: str) -> None:
    """Create the virtual environment and install what changed since last time."""
    if not PYTHON.exists():
        print("Creating virtual environment in .venv", flush=True)
        venv.create(VENV, with_pip=True)
    stamp = VENV / f".installed-{requirements}"
    digest = _requirements_digest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"Installing {requirements}", flush=True)
    run([PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", ROOT / requirements])
    stamp.write_text(digest)


def run(command: list, check: bool = True, env: dict[str, str] | None = None) -> int:
    code = subprocess.call([str(part) for part in command], cwd=ROOT, env=env)
    if check and code != 0:
        sys.exit(code)
    return code


def development_env() -> dict[str, str]:
    """Development mode is asked for here, never assumed by the settings."""
    return {**os.environ, "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "true")}


def serve(args: list[str]) -> int:
    ensure_environment("requirements.txt")
    run([PYTHON, "manage.py", "migrate", "--noinput"], env=development_env())
    # Push notifications go out from a worker beside the server; its job queue
    # is the same database, so there is still nothing else to run.
    worker = subprocess.Popen([str(PYTHON), "manage.py", "push_worker"], cwd=ROOT, env=development_env())
    # A SIGTERM to this script stops both children (Ctrl-C reaches them by itself).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run([PYTHON, "manage.py", "runserver", *args], check=False, env=development_env())
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()


def manage(args: list[str]) -> int:
    ensure_environment("requirements.txt")
    return run([PYTHON, "manage.py", *args], check=False, env=development_env())


def test(args: list[str]) -> int:
    ensure_environment("requirements-dev.txt")
    return run([PYTHON, "-m", "pytest", *args], check=False)


def lint(args: list[str]) -> int:
    ensure_environment("requirements-dev.txt")
    return run([BIN / "ruff", "check", *(args or ["."])], check=False)


COMMANDS = {"serve": serve, "test": test, "lint": lint, "manage": manage}


def main() -> int:
    if sys.version_info < (3, 11):
        sys.exit("Python 3.11 or newer is needed (found %d.%d)." % sys.version_info[:2])
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    try:
        return COMMANDS[sys.argv[1]](sys.argv[2:])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
