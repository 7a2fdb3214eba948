"""The ``truckroll`` command. Each module below registers its commands on ``app`` or ``bench_app``.

Heavy imports (Prefect, Pyomo) happen inside the commands, so ``truckroll --help`` stays fast.
"""

from __future__ import annotations

from truckroll.cli import core  # noqa: F401
from truckroll.cli import solve  # noqa: F401
from truckroll.cli import slots  # noqa: F401
from truckroll.cli import booking  # noqa: F401
from truckroll.cli import notifications  # noqa: F401
from truckroll.cli.app import app


def main() -> None:
    app()
