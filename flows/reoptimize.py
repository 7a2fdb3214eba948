"""The re-optimisation flow: re-plan the horizon's routes (today and the next working days), apply only a
strictly better plan, notify."""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from tasks.notifications import deliver_quietly
from tasks.reoptimize import (
    apply_new_plan,
    compare_with_current_plan,
    escalate_unplaceable,
    load_horizon_plan,
    notify_changed,
    plan_horizon,
    publish_comparison,
)
from truckroll.reoptimize.day import PlanChanged, horizon_dates, parse_day, reoptimize_options
from truckroll.settings import get_settings

log = logging.getLogger(__name__)

# How often to plan again when the day changed between loading and applying.
MAX_ATTEMPTS = 2


@flow(name="reoptimize-day", flow_run_name="reoptimize {day}", validate_parameters=True)
def reoptimize_day(day: str | None = None, time_limit_seconds: float = 30, mip_gap: float = 0.0,
                   rescue_escalations: bool = True, allow_window_changes: bool | None = None,
                   dry_run: bool = False, horizon_days: int | None = None) -> State:
    """Re-plan the horizon starting on ``day``: PyVRP proposes routes, a CBC set-partitioning model warm-started
    from the current plan chooses; fixed work keeps its technician and time, promised work its window (its
    technician may change); applied only when strictly better.

    Parameters
    ----------
    day:
        YYYY-MM-DD; today in the company's time zone when omitted.
    time_limit_seconds, mip_gap:
        CBC's limits for the assignment model.
    rescue_escalations:
        Offer the day's escalated and still-open requests to the model.
    allow_window_changes:
        Let visits leave the window their customer was told (then re-promised and notified); None follows the
        dispatch rule ``promised_window_policy``.
    dry_run:
        Compute and publish the comparison without writing anything.
    horizon_days:
        Days re-planned together: ``day`` and the next working days (default
        ``settings.reoptimize_horizon_days``; more than ``reoptimize_max_horizon_days`` is refused).
    """
    logger = get_run_logger()
    settings = get_settings()
    the_day = parse_day(day, settings.company_timezone)
    dates = horizon_dates(the_day, settings.reoptimize_horizon_days if horizon_days is None else horizon_days,
                          maximum=settings.reoptimize_max_horizon_days)
    options = reoptimize_options(settings, time_limit_seconds, mip_gap, allow_window_changes)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        snapshot = load_horizon_plan(dates, rescue_escalations)
        plan = plan_horizon(snapshot, options)
        for conflict in snapshot.orphans + plan.conflicts:
            logger.warning("pinned visit cannot be kept: %s", conflict)
        if plan.assignment.status == "greedy_fallback":
            logger.error("set-partitioning model not solved by CBC: %s", plan.assignment.message)
        elif plan.assignment.status == "time_limit":
            logger.warning(plan.assignment.message)
        comparison = compare_with_current_plan(snapshot, plan, options)
        if not comparison.better or dry_run:
            outcome = ("dry run, nothing written: " if dry_run else "kept the current plan: ") + comparison.reason
            break
        try:
            applied = apply_new_plan(snapshot, plan)
        except PlanChanged as exc:
            logger.info("attempt %s: %s; planning again", attempt, exc)
            if attempt == MAX_ATTEMPTS:
                raise
            continue
        outcome = (f"applied ({comparison.reason}): {len(applied.changed_assignments)} visits changed, "
                   f"{applied.moved_technician} to another technician, {applied.changed_windows} new windows, "
                   f"{len(applied.new_assignments)} requests rescued")
        break
    notices: list[int] = [] if dry_run else [n for d in dates for n in notify_changed(d)]
    # Unplaceable requests are escalated whether or not the plan changed (an open escalation is kept as is).
    escalations, alerts = ([], []) if dry_run else escalate_unplaceable(snapshot, plan)
    # As the dispatch flow does: what this run queued goes out now (customers, technicians, dispatch's alerts),
    # in one delivery; a delivery problem leaves the messages in the outbox and does not fail the run.
    if notices or alerts:
        deliver_quietly(notification_ids=notices + alerts)
    flag = {"time_limit": " [CBC hit its time limit: best feasible assignment used]",
            "greedy_fallback": " [CBC unavailable: the best whole plan used]"}.get(plan.assignment.status, "")
    if plan.assignment.status == "greedy_fallback" and not dry_run:
        _emit_not_applied(the_day, f"the set-partitioning model was not solved: {plan.assignment.message}")
    publish_comparison(the_day, comparison, plan, outcome + flag)
    logger.info("%s%s", outcome, flag)
    data: dict[str, Any] = {
        "day": the_day.isoformat(), "dates": [d.isoformat() for d in dates],
        "conflicts": snapshot.orphans + plan.conflicts, "moves": plan.moves,
        "applied": comparison.better and not dry_run, "outcome": outcome,
        "solver_status": plan.assignment.status, "solver_message": plan.assignment.message,
        "before": comparison.before, "after": comparison.after, "notifications": len(notices),
        "escalations": escalations, "unplaced": sorted(plan.unplaced)}
    name = "Re-optimised" if data["applied"] else "Plan kept"
    return Completed(name=name, message=f"{outcome}{flag}", data=data)


def _emit_not_applied(day: Any, reason: str) -> None:
    """``truckroll.reoptimize.not-applied``: the operators' automation alerts them (flows/deploy.py)."""
    try:
        from prefect.events import emit_event

        emit_event(event="truckroll.reoptimize.not-applied",
                   resource={"prefect.resource.id": f"truckroll.reoptimize.{day}"},
                   payload={"day": str(day), "reason": reason})
    except Exception:  # noqa: BLE001 - an alert that cannot be sent must not fail the re-optimisation
        logging.getLogger(__name__).warning("could not emit the not-applied event", exc_info=True)
