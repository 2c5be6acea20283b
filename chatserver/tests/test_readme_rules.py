"""README's "Where each rule lives" table names files and functions that exist."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rule_rows() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Where each rule lives", 1)[1].split("\n\n", 2)[1]
    rows = [line.split("|")[1:3] for line in table.splitlines()[2:]]
    return [(rule.strip(), where.strip()) for rule, where in rows]


def defined(path: Path) -> set[str]:
    """Top-level names of a module, and Class.method for its classes' functions."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names.update(f"{node.name}.{item.name}" for item in node.body if isinstance(item, ast.FunctionDef))
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names


def missing_references() -> list[str]:
    missing = []
    for rule, where in rule_rows():
        current: Path | None = None
        for token in re.findall(r"`([^`]+)`", where):
            if token.endswith((".py", ".md")):
                current = ROOT / token
                if not current.exists():
                    missing.append(f"{rule}: no file {token}")
            elif re.fullmatch(r"[A-Za-z_][\w.]*", token) and (
                current is None or current.suffix != ".py" or token not in defined(current)
            ):
                missing.append(f"{rule}: no {token} in {current and current.relative_to(ROOT)}")
    return missing


def test_the_table_has_rows() -> None:
    assert len(rule_rows()) >= 20


def test_every_file_and_function_in_the_table_exists() -> None:
    assert missing_references() == []


def test_the_check_finds_a_missing_function(monkeypatch) -> None:
    # A control: a name that is not there is reported.
    rows = [("a rule", "`messaging/rules.py`: `no_such_rule`, `parse_uuid`")]
    monkeypatch.setattr("chatserver.tests.test_readme_rules.rule_rows", lambda: rows)
    assert missing_references() == ["a rule: no no_such_rule in messaging/rules.py"]
