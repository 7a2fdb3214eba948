"""Deliver the outbox: a Prefect task around truckroll.delivery."""

from __future__ import annotations

import logging
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from truckroll import delivery

log = logging.getLogger(__name__)


@task(name="Deliver notifications", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def deliver_notifications(notification_ids: list[int] | None = None, request_id: int | None = None,
                          limit: int = 200) -> dict[str, Any]:
    """Send due outbox messages once each (claimed atomically; a sent message is never sent again)."""
    report = delivery.deliver_pending(notification_ids=notification_ids, request_id=request_id, limit=limit)
    counts = report.as_dict()
    if report.unrouted:
        log.info("%d message(s) stay pending: no delivery channel configured", len(report.unrouted))
    return counts | {"sent_ids": report.sent, "failed_ids": report.failed}


def deliver_quietly(notification_ids: list[int] | None = None, request_id: int | None = None) -> dict[str, Any]:
    """Deliver from inside another flow: a delivery problem is logged, never fails that flow (the messages
    stay in the outbox for the deliver-notifications flow)."""
    try:
        return deliver_notifications(notification_ids=notification_ids, request_id=request_id)
    except Exception:  # noqa: BLE001 - an assignment is not undone because an email could not go out
        log.warning("notification delivery failed; messages stay in the outbox", exc_info=True)
        return {"error": "delivery failed; messages stay in the outbox"}
