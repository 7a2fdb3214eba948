"""Configuration comes from one place: no module below the edges reads the environment itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "engine", "truckroll", "tasks", "flows", "service", "demo")
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


# The application layer is handed its settings by the edges; these build a process-wide resource from them once.
SETTINGS_READERS = ("truckroll/settings.py", "truckroll/db.py", "truckroll/notifications/outbox.py")


def settings_reads(source: str) -> list[int]:
    """Lines that call ``get_settings()``."""
    return sorted(node.lineno for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "get_settings")


def test_the_application_layer_is_given_its_settings() -> None:
    """Below the edges (service, cli, bench, demo, flows, tasks) nothing calls get_settings(): the application layer
    and the engine take the settings, or the values they need, as parameters."""
    assert settings_reads("from truckroll.settings import get_settings\nx = get_settings().company_name\n") == [2]
    found = []
    for package in ("models", "engine", "truckroll"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in SETTINGS_READERS:
                found += [f"{rel}:{line}" for line in settings_reads(path.read_text())]
    assert found == []
