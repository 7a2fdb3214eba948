"""The requeue sweep: a crashed dispatch flow run never loses a request.

Its task lives here, not in tasks/: it starts dispatch flow runs (``flows.runs``), which only the orchestration
layer may do.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import runs
from truckroll.dispatch.requeue import requeue
from truckroll.settings import get_settings


@task(name="Requeue stranded requests", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def requeue_stranded_requests(older_than_seconds: float) -> dict[str, Any]:
    """Find requests received or analysed long ago with no assignment, no escalation and no flow run under way,
    and start a new dispatch flow run for each."""
    report = requeue(runs=runs, lease_seconds=get_settings().dispatch_lease_seconds,
                     older_than_seconds=older_than_seconds)
    if report.found:
        create_table_artifact(
            key="requeue-sweep",
            table=[{"request": rid, "action": "left alone (flow run under way)" if rid in report.already_running
                    else "failed: " + report.failed[rid] if rid in report.failed else "run again"}
                   for rid in report.found],
            description=f"{len(report.started)} stranded request(s) run again")
    return {"found": report.found, "already_running": report.already_running, "started": report.started,
            "failed": report.failed}


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
