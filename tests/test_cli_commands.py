"""Every command the code defines is reachable from the ``truckroll`` command (a module that registers commands
only when imported must be imported by the CLI)."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

ROOT = Path(__file__).resolve().parents[1]
DECLARED = re.compile(r'@(app|bench_app|\w+_app)\.command\("([\w-]+)"\)')


def _registered() -> set[str]:
    import cli  # noqa: F401  (imports every command module)
    from cli.app import app

    def walk(command: object, prefix: str = "") -> set[str]:
        names = {prefix.strip()}
        for name, sub in getattr(command, "commands", {}).items():
            names |= walk(sub, f"{prefix} {name}")
        return names

    return walk(typer.main.get_command(app))


def test_every_declared_bench_command_is_registered() -> None:
    """``@bench_app.command("NAME")`` anywhere in cli/ or bench/ shows as ``truckroll bench NAME``."""
    declared = {name for path in [*(ROOT / "cli").glob("*.py"), *(ROOT / "bench").glob("*.py")]
                for app, name in DECLARED.findall(path.read_text()) if app == "bench_app"}
    assert {"dispatch", "day", "solomon", "slots", "reoptimize", "create", "ops"} <= declared
    assert {f"bench {name}" for name in declared} <= _registered()
