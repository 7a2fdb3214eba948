"""The requeue sweep: a crashed dispatch flow run never loses a request."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.requeue import requeue_stranded_requests


@flow(name="requeue-sweep", flow_run_name="requeue sweep")
def requeue_sweep(older_than_seconds: float | None = None) -> dict[str, Any]:
    """Run the dispatch flow again for every request whose dispatch never finished.

    Parameters
    ----------
    older_than_seconds:
        Leave younger requests alone (default: TRUCKROLL_REQUEUE_AFTER_SECONDS).
    """
    from truckroll.settings import get_settings

    age = get_settings().requeue_after_seconds if older_than_seconds is None else older_than_seconds
    return requeue_stranded_requests(age)
