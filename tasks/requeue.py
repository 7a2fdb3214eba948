"""The requeue sweep as a Prefect task: run again every accepted request whose dispatch never finished."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from truckroll.requeue import requeue


@task(name="Requeue stranded requests", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def requeue_stranded_requests(older_than_seconds: float) -> dict[str, Any]:
    """Find requests received or analysed long ago with no assignment, no escalation and no flow run under way,
    and start a new dispatch flow run for each."""
    report = requeue(older_than_seconds=older_than_seconds)
    if report.found:
        create_table_artifact(
            key="requeue-sweep",
            table=[{"request": rid, "action": "left alone (flow run under way)" if rid in report.already_running
                    else "failed: " + report.failed[rid] if rid in report.failed else "run again"}
                   for rid in report.found],
            description=f"{len(report.started)} stranded request(s) run again")
    return {"found": report.found, "already_running": report.already_running, "started": report.started,
            "failed": report.failed}
