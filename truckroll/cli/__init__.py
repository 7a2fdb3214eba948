"""The ``truckroll`` command. Each module below registers its commands on ``app`` or ``bench_app``.

Heavy imports (Prefect, Pyomo) happen inside the commands, so ``truckroll --help`` stays fast.
"""

from __future__ import annotations

from truckroll.cli import core  # noqa: F401
from truckroll.cli import solve  # noqa: F401
from truckroll.cli import slots  # noqa: F401
from truckroll.cli import booking  # noqa: F401
from truckroll.cli import notifications  # noqa: F401
from truckroll.cli import plan  # noqa: F401
from truckroll.cli import reoptimize  # noqa: F401
from truckroll.cli import serve  # noqa: F401
from truckroll.cli import rules  # noqa: F401
from truckroll.cli import company  # noqa: F401
from truckroll.cli import users  # noqa: F401
from truckroll.cli import scenario  # noqa: F401
from truckroll.cli import console_bench  # noqa: F401
from truckroll.cli.app import app


def main() -> None:
    import os

    # No internet here or on many company servers: Prefect must not try to send analytics.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Without a configured Prefect API, flows start a temporary local server; on a busy 2-core machine it
    # can take longer than Prefect's default to come up.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    app()
