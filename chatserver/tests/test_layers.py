"""Which package may import which: apps lean one way, and the write layer
does not depend on presentation."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (tests and migrations left out) -> the modules it imports."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        relative = path.relative_to(ROOT)
        if {"tests", "migrations"} & set(relative.parts):
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[".".join(relative.with_suffix("").parts)] = names
    return found


def importers(package: str, forbidden: str) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, names in imported_modules(package).items()
        for name in names
        if name == forbidden or name.startswith(forbidden + ".")
    )


def test_accounts_does_not_import_messaging() -> None:
    # messaging depends on accounts (users); accounts tells it things through accounts.signals.
    assert importers("accounts", "messaging") == []


# The project's wiring: the ASGI application, the loop it serves on, and
# shutting down the threads (the writer's among them).
WIRING = {"chatserver.asgi", "chatserver.serving", "chatserver.db"}


@pytest.mark.parametrize("app", ["accounts", "messaging"])
def test_chatserver_imports_no_app_but_to_wire_them(app: str) -> None:
    # Rate limits, throttles, errors, SQL helpers and the rest are infrastructure.
    assert [line for line in importers("chatserver", app) if line.split()[0] not in WIRING] == []


def test_messaging_reads_and_writes_do_not_depend_on_presentation() -> None:
    layers = {
        module: names
        for module, names in imported_modules("messaging").items()
        if module.rsplit(".", 1)[-1] in {"services", "selectors", "sql"} or module == "messaging.frames"
    }
    assert len(layers) >= 15  # every slice's, and the frames they build
    leaning = sorted(
        f"{module} imports {name}"
        for module, names in layers.items()
        for name in names
        if name.startswith(("messaging.serializers", "messaging.consumers", "rest_framework")) or ".views" in name
    )
    assert leaning == []


def test_the_check_sees_imports() -> None:
    # A control: the walk finds the imports that are there.
    assert importers("messaging", "accounts") != []
    assert "messaging.messages.views imports messaging.serializers" in importers("messaging", "messaging.serializers")
