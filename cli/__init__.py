"""The ``truckroll`` command. Each module below registers its commands on ``app`` or ``bench_app``.

Heavy imports (Prefect, Pyomo) happen inside the commands, so ``truckroll --help`` stays fast.
"""

from __future__ import annotations

from cli import core
from cli import solve
from cli import slots
from cli import booking
from cli import notifications
from cli import plan
from cli import reoptimize
from cli import serve
from cli import rules
from cli import company
from cli import users
from cli import scenario
from cli import console_bench
from cli.app import app


def main() -> None:
    import os

    # No internet here or on many company servers: Prefect must not try to send analytics.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Without a configured Prefect API, flows start a temporary local server; on a busy 2-core machine it
    # can take longer than Prefect's default to come up.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    app()
