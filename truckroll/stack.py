"""The served stack as ``make serve`` runs it (scripts/serve.sh), started on free ports in a directory of its own:
for the operations test and ``truckroll bench ops``.

Every process of the stack inherits ``TRUCKROLL_STACK_ID``, so ``leftover_processes`` finds any that outlived
``stop()``, however they were started (process groups, daemons, Prefect's own subprocesses).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SERVE_SCRIPT = REPO / "scripts" / "serve.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def processes_with_env(name: str, value: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process on the machine whose environment has ``name=value``."""
    marker = f"{name}={value}".encode()
    found: list[tuple[int, str]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes()
            if marker not in env.split(b"\0"):
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":  # a zombie is already dead; its parent has not reaped it yet
            found.append((int(entry.name), cmd))
    return found


class Stack:
    """scripts/serve.sh on free ports, with its own PREFECT_HOME and (by default) SQLite database in ``root``.

    Parameters
    ----------
    root:
        A directory for the stack's files (Prefect's home and database, logs, the mail catcher's maildir).
    database_url:
        truckroll's database; default an SQLite file in ``root``.
    prefect_database_url:
        Prefect's own database (``postgresql+asyncpg://...``); default SQLite in ``root``.
    workers:
        Dispatch task workers to start.
    env:
        More environment for the stack (settings such as TRUCKROLL_DISPATCH_LEASE_SECONDS).
    """

    def __init__(self, root: Path, *, database_url: str | None = None, prefect_database_url: str | None = None,
                 workers: int = 2, secret: str = "stack-secret", env: dict[str, str] | None = None) -> None:
        self.root = root
        self.id = uuid.uuid4().hex
        self.secret = secret
        self.database_url = database_url or f"sqlite:///{root / 'truckroll.db'}"
        self.prefect_port, self.intake_port = free_port(), free_port()
        self.mail_port, self.smtp_port = free_port(), free_port()
        self.prefect_home = root / "prefect"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TRUCKROLL_"))}
        self.env.update(
            TRUCKROLL_STACK_ID=self.id, PREFECT_HOME=str(self.prefect_home),
            PREFECT_API_URL=f"http://127.0.0.1:{self.prefect_port}/api", PREFECT_PORT=str(self.prefect_port),
            TRUCKROLL_PORT=str(self.intake_port), MAIL_PORT=str(self.mail_port), SMTP_PORT=str(self.smtp_port),
            TRUCKROLL_DATABASE_URL=self.database_url, TRUCKROLL_WEBHOOK_SECRET=secret,
            TRUCKROLL_WORKERS=str(workers), PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="INFO")
        if prefect_database_url:
            self.env["PREFECT_API_DATABASE_CONNECTION_URL"] = prefect_database_url
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "serve.log"

    @property
    def intake_url(self) -> str:
        return f"http://127.0.0.1:{self.intake_port}"

    @property
    def api_url(self) -> str:
        return self.env["PREFECT_API_URL"]

    @property
    def logs(self) -> Path:
        return self.prefect_home / "logs"

    def start(self, timeout: float = 420) -> Stack:
        """Start scripts/serve.sh and wait until the intake service and the Prefect API answer."""
        import httpx

        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps it; closed with the stack
        self.proc = subprocess.Popen(["bash", str(SERVE_SCRIPT)], cwd=REPO, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the stack exited during start-up:\n{self.log_path.read_text()[-3000:]}")
            try:
                if (httpx.get(f"{self.intake_url}/healthz", timeout=2).status_code == 200
                        and httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"the stack did not start in {timeout:.0f} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, timeout: float = 60) -> list[tuple[int, str]]:
        """SIGTERM to serve.sh, as an operator would; returns the processes still alive after it finished
        (then kills them, so nothing outlives the caller)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        left = processes_with_env("TRUCKROLL_STACK_ID", self.id)
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = processes_with_env("TRUCKROLL_STACK_ID", self.id)
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return left

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def worker_pids(self) -> list[int]:
        """The dispatch task workers' process ids."""
        return [pid for pid, cmd in processes_with_env("TRUCKROLL_STACK_ID", self.id)
                if cmd.endswith("truckroll worker")]
