"""Repository rules: one import direction between the rings, and no file grows unreviewable."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pilotsock"

# ring -> the pilotsock modules it may import
ALLOWED = {
    "wire": ("pilotsock.errors", "pilotsock.addresses", "pilotsock.wire"),
    "transport": ("pilotsock.errors", "pilotsock.addresses", "pilotsock.config", "pilotsock.wire",
                  "pilotsock.transport"),
    "tunnel": ("pilotsock.errors", "pilotsock.addresses", "pilotsock.config", "pilotsock.wire",
               "pilotsock.identity", "pilotsock.tunnel"),
}
MAX_LINES = 700


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return [name for name in names if name.startswith("pilotsock")]


def test_codecs_and_machines_import_only_inward() -> None:
    violations = []
    for ring, allowed in ALLOWED.items():
        for path in (PACKAGE / ring).rglob("*.py"):
            for name in _imports(path):
                if not name.startswith(allowed):
                    violations.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert not violations, "\n".join(violations)


def test_machines_use_no_clock_sockets_or_threads() -> None:
    forbidden = {"time", "socket", "threading", "asyncio", "select", "selectors"}
    violations = []
    for ring in ("wire", "transport", "tunnel"):
        for path in (PACKAGE / ring).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                violations += [f"{path.name}: {n}" for n in names if n.split(".")[0] in forbidden]
    assert not violations, violations


def test_files_stay_reviewable() -> None:
    long_files = [f"{p.relative_to(PACKAGE.parent)}: {n}" for p in PACKAGE.rglob("*.py")
                  if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long_files, long_files
