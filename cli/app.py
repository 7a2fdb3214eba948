"""The Typer applications every command module registers on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(help="truckroll: dispatch and scheduling for home-services companies.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
bench_app = typer.Typer(help="Benchmarks: speed and quality figures for docs/benchmarks.md.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error (no traceback) and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


def read_json_file(path: Path) -> Any:
    """The JSON in ``path``, or a one-line error naming the file and what is wrong with it."""
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise fail(f"{path} is not valid JSON: {exc}") from None


def cli_command() -> str:
    """How to run truckroll from the user's shell: ``truckroll`` when it is on PATH, else the path of this
    executable (``.venv/bin/truckroll`` after ``make demo``), relative to the working directory when inside it."""
    import os
    import shutil
    import sys
    from pathlib import Path

    exe = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    on_path = shutil.which("truckroll")
    if on_path and (exe is None or Path(on_path).resolve() == exe):
        return "truckroll"
    if exe is None or exe.name != "truckroll":
        return "truckroll"
    try:
        return str(exe.relative_to(Path(os.getcwd()).resolve()))
    except ValueError:
        return str(exe)


PREFECT_SERVER_ENV = Path(__file__).resolve().parents[1] / "scripts" / "prefect-server.env"


def prefect_server_settings(path: Path = PREFECT_SERVER_ENV) -> dict[str, str]:
    """The Prefect server and client settings of ``scripts/prefect-server.env`` (the ones ``make serve`` exports:
    client retries, lock waits, the batched task-run recorder and event persister, the SQLite plugin)."""
    settings: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            settings[name] = value
    return settings


def prefect_server_defaults(path: Path = PREFECT_SERVER_ENV) -> dict[str, str]:
    """Set :func:`prefect_server_settings` in this process's environment, each unless already set, before Prefect
    is imported: the temporary Prefect server a command starts when no ``PREFECT_API_URL`` is set inherits them.
    Returns what was set."""
    import os

    applied = {name: value for name, value in prefect_server_settings(path).items() if name not in os.environ}
    os.environ.update(applied)
    return applied
