"""Configuration comes from one place: no module below the edges reads the environment itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "engine", "truckroll", "tasks", "flows", "service")
# The CLI and the benchmarks are the edge (they set Prefect's own variables before it starts, name the shell
# user); settings.py is the one reader; stack.py hands the whole environment to the processes it starts.
EXEMPT = ("cli/", "bench/", "truckroll/settings.py", "truckroll/stack.py")


def environment_reads(source: str) -> list[int]:
    """Lines that read ``os.environ`` or call ``os.getenv`` (an assignment to ``os.environ[...]`` is a write)."""
    tree = ast.parse(source)
    writes = {id(t.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
              for t in node.targets if isinstance(t, ast.Subscript)}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv") and id(node) not in writes:
            lines.append(node.lineno)
    return sorted(lines)


def test_the_reader_finds_reads_and_lets_writes_pass() -> None:
    """The check itself: a get, a getenv and a copy are reads; setting a variable is not."""
    src = "import os\na = os.environ.get('X')\nb = os.getenv('Y')\nc = dict(os.environ)\nos.environ['Z'] = '1'\n"
    assert environment_reads(src) == [2, 3, 4]


def test_no_environment_read_outside_settings() -> None:
    """Every TRUCKROLL_ variable is a field of truckroll.settings.Settings; the rest of the code gets values
    passed in (or from get_settings() at the edges), never from os.environ."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(EXEMPT):
                continue
            found += [f"{rel}:{line}" for line in environment_reads(path.read_text())]
    assert found == []
