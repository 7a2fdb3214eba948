"""Deliver the outbox: a Prefect task around truckroll.notifications.delivery."""

from __future__ import annotations

import logging
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State

from truckroll.notifications import delivery
from truckroll.settings import get_settings

log = logging.getLogger(__name__)


@task(name="Deliver notifications", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def deliver_notifications(notification_ids: list[int] | None = None, request_id: int | None = None,
                          limit: int = 200) -> dict[str, Any] | State:
    """Send due outbox messages once each (claimed atomically; a sent message is never sent again).

    Messages whose channel has no URL configured stay pending: the run then ends in a "Not delivered" state
    with a warning naming the settings to set, not as a plain success.
    """
    report = delivery.deliver_pending(settings=get_settings(), notification_ids=notification_ids,
                                      request_id=request_id, limit=limit)
    result = report.as_dict() | {"sent_ids": report.sent, "failed_ids": report.failed}
    if report.unrouted:
        message = (f"{len(report.unrouted)} message(s) not delivered and left pending: no delivery channel is "
                   "configured for them (set TRUCKROLL_NOTIFY_EMAIL_URL, TRUCKROLL_NOTIFY_SMS_URL, ...; make serve "
                   "starts a local mail catcher)")
        get_run_logger().warning(message)
        return Completed(name="Not delivered", message=message, data=result)
    return result


def as_counts(outcome: dict[str, Any] | State) -> dict[str, Any]:
    """What a call of ``deliver_notifications`` gives its caller: Prefect unwraps the "Not delivered" state it
    may return into its data, so this is the dict either way."""
    return outcome if isinstance(outcome, dict) else dict(outcome.result())


def deliver_quietly(notification_ids: list[int] | None = None, request_id: int | None = None) -> dict[str, Any]:
    """Deliver from inside another flow: a delivery problem is logged, never fails that flow (the messages
    stay in the outbox for the deliver-notifications flow)."""
    try:
        return as_counts(deliver_notifications(notification_ids=notification_ids, request_id=request_id))
    except Exception:  # noqa: BLE001 - an assignment is not undone because an email could not go out
        log.warning("notification delivery failed; messages stay in the outbox", exc_info=True)
        return {"error": "delivery failed; messages stay in the outbox"}
