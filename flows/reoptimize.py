"""The daily re-optimisation flow: re-plan a day's routes, apply only a strictly better plan, notify."""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from tasks.reoptimize import (
    apply_new_plan,
    compare_with_current_plan,
    escalate_unplaceable,
    load_days_plan,
    notify_changed,
    parse_day,
    publish_comparison,
    reoptimize_options,
    sequence_routes,
    solve_assignment_model,
)
from truckroll.reoptimizing import PlanChanged

log = logging.getLogger(__name__)

# How often to plan again when the day changed between loading and applying.
MAX_ATTEMPTS = 2


@flow(name="reoptimize-day", flow_run_name="reoptimize {day}")
def reoptimize_day(day: str | None = None, time_limit_seconds: float = 30, mip_gap: float = 0.0,
                   rescue_escalations: bool = True, allow_window_changes: bool | None = None,
                   dry_run: bool = False) -> State:
    """Re-plan one day: keep fixed work, re-assign and re-sequence the rest, apply only a better plan.

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
    """
    logger = get_run_logger()
    the_day = parse_day(day)
    options = reoptimize_options(time_limit_seconds, mip_gap, allow_window_changes)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        snapshot = load_days_plan(the_day, rescue_escalations)
        stage = solve_assignment_model(snapshot, options)
        if stage.result.status == "greedy_fallback":
            logger.error("assignment model not solved by CBC; continuing with the greedy assignment: %s",
                         stage.result.message)
        elif stage.result.status == "time_limit":
            logger.warning(stage.result.message)
        plan = sequence_routes(snapshot, stage, options)
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
    notices: list[int] = [] if dry_run else notify_changed(the_day)
    # Unplaceable requests are escalated whether or not the plan changed (an open escalation is kept as is).
    escalations: list[int] = [] if dry_run else escalate_unplaceable(snapshot, plan)
    flag = {"time_limit": " [CBC hit its time limit: best feasible assignment used]",
            "greedy_fallback": " [CBC unavailable: greedy assignment used]"}.get(plan.assignment.status, "")
    publish_comparison(the_day, comparison, plan, outcome + flag)
    logger.info("%s%s", outcome, flag)
    data: dict[str, Any] = {
        "day": the_day.isoformat(), "applied": comparison.better and not dry_run, "outcome": outcome,
        "solver_status": plan.assignment.status, "solver_message": plan.assignment.message,
        "before": comparison.before, "after": comparison.after, "notifications": len(notices),
        "escalations": escalations, "unplaced": sorted(plan.unplaced)}
    name = "Re-optimised" if data["applied"] else "Plan kept"
    return Completed(name=name, message=f"{outcome}{flag}", data=data)
