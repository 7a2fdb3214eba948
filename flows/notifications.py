"""The deliver-notifications flow: drain the outbox (the deployment in prefect.yaml, every 2 minutes): failed sends
retried after their backoff, and whatever a process queued but could not send."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from tasks.notifications import as_counts, deliver_notifications


@flow(name="deliver-notifications")
def deliver_notifications_flow(limit: int = 500) -> dict[str, Any]:
    """Send every due message in the outbox once, retrying failures with backoff on later runs."""
    logger = get_run_logger()
    counts = as_counts(deliver_notifications(limit=limit))
    logger.info("outbox: %s", {k: v for k, v in counts.items() if not k.endswith("_ids")})
    create_table_artifact(key="notification-delivery",
                          table=[{"outcome": k, "messages": v} for k, v in counts.items() if not k.endswith("_ids")],
                          description="What the last outbox run sent, deferred, failed or could not route")
    return counts
