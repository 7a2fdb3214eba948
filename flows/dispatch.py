"""The per-request dispatch flow: seven named steps from a new request to a confirmed arrival window."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import INPUTS
from prefect.states import Completed, State

from models import RequestStatus
from tasks.dispatch import (
    analyse_job_requirements,
    calculate_optimal_assignment,
    check_capacity_threshold,
    escalate_failed_dispatch,
    escalate_to_manual_review,
    generate_assignment_confirmation,
    receive_service_request,
    retrieve_available_technicians,
    update_schedule_and_notify,
)
from tasks.notifications import deliver_quietly
from truckroll import dispatching, requeue, store
from truckroll.db import session_scope
from truckroll.settings import get_settings

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from truckroll.plan import DayPlan

# How often to decide again when another dispatch took the chosen technician's time first.
MAX_DECISION_ATTEMPTS = 3


def _existing_outcome(request_id: int) -> dict[str, Any] | None:
    """What an earlier run already decided for this request, so a re-run duplicates nothing."""
    with session_scope() as session:
        row = store.get_request(request_id, session=session)
        if row.status == RequestStatus.ASSIGNED:
            a = dispatching.existing_assignment(request_id, session=session)
            if a is not None:
                return {"request_id": request_id, "status": "assigned", "technician_id": a.technician_id,
                        "assignment_id": a.id, "window_start": a.window_start.isoformat(),
                        "window_end": a.window_end.isoformat(), "already_done": True}
        if row.status == RequestStatus.ESCALATED:
            return {"request_id": request_id, "status": "escalated", "already_done": True}
        if row.status in (RequestStatus.CANCELLED, RequestStatus.COMPLETED):
            return {"request_id": request_id, "status": row.status, "already_done": True}
    return None


def publish_plan_artifact(plan: DayPlan) -> str | None:
    """Write the plan's page and attach a Prefect markdown artifact: the metrics, a line per technician and
    the link to the page. Returns the page's path; never raises (a picture must not fail a dispatch)."""
    from prefect.artifacts import create_markdown_artifact

    from truckroll.plan import plan_dir, render_plan_html

    day, metrics = plan.day, plan.metrics
    try:
        path = plan_dir(get_settings().plan_dir) / f"plan-{day.isoformat()}.html"
        path.write_text(render_plan_html(plan), encoding="utf-8")
        lines = [f"## Plan for {day.isoformat()}", "", f"[Open the map and timeline]({path.resolve().as_uri()})", "",
                 "| metric | value |", "|---|---|"]
        lines += [f"| {k.replace('_', ' ')} | {v:,.2f} |" for k, v in metrics.items()]
        lines += ["", "| technician | jobs | busy | travel min | idle min |", "|---|---|---|---|---|"]
        lines += [f"| {t.name} | {len(t.jobs)} | {t.utilisation:.0%} | {t.travel_minutes:.0f} | "
                  f"{t.idle_minutes:.0f} |" for t in plan.technicians]
        create_markdown_artifact(key=f"day-plan-{day.isoformat()}", markdown="\n".join(lines),
                                 description=f"Map and timeline of {day.isoformat()}")
        return str(path)
    except Exception:  # noqa: BLE001
        log.warning("could not publish the plan picture for %s", day, exc_info=True)
        return None


def record_day_metrics(request_day: Any) -> dict[str, float]:
    """Publish the day's metrics as a keyed artifact (the UI keeps its history), and its plan page."""
    from truckroll.plan import load_day_plan

    # One load of the day serves both artifacts.
    plan = load_day_plan(request_day)
    metrics = plan.metrics
    create_table_artifact(key=f"day-metrics-{request_day.isoformat()}",
                          table=[{"metric": k, "value": round(v, 3)} for k, v in metrics.items()],
                          description=f"Plan metrics for {request_day.isoformat()}")
    # The map and timeline of the day, linked from a markdown artifact next to the metrics.
    publish_plan_artifact(plan)
    return metrics


def _run_name() -> str:
    """'dispatch request 42', or for a new payload 'dispatch new leak repair for Dana Reyes'."""
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    if params.get("request_id") is not None:
        return f"dispatch request {params['request_id']}"
    payload = params.get("payload") or {}
    return f"dispatch new {payload.get('job_type', 'request')} for {payload.get('customer_name', 'a customer')}"


@flow(name="dispatch-service-request", flow_run_name=_run_name)
def dispatch_service_request(request_id: int | None = None, payload: dict[str, Any] | None = None,
                             idempotency_key: str | None = None) -> dict[str, Any] | State:
    """Assign one service request to the best technician and time, or escalate it to a dispatcher.

    Parameters
    ----------
    request_id:
        A request the intake service already persisted.
    payload:
        A new request to validate and persist (when no request_id is given).
    idempotency_key:
        With a payload: the same key never creates a second request.
    """
    from prefect.runtime import flow_run

    logger = get_run_logger()
    received = receive_service_request(request_id, payload, idempotency_key)
    rid = received.request_id
    earlier = _existing_outcome(rid)
    if earlier is not None:
        logger.info("request %s was already handled (%s); nothing to do", rid, earlier["status"])
        return earlier
    settings = get_settings()
    holder = str(flow_run.id or "in-process")
    try:
        with requeue.dispatch_lease(rid, holder, lease_seconds=settings.dispatch_lease_seconds) as claim:
            if claim.attempt > settings.max_dispatch_attempts:
                reason = (f"dispatch failed {claim.attempt - 1} times; last error: "
                          f"{claim.previous_error or 'the run died without a word (process or worker killed)'}")
                esc_id = escalate_failed_dispatch(rid, reason)
                deliver_quietly(request_id=rid)
                logger.error("request %s escalated as a dead letter: %s", rid, reason)
                return Completed(name="Escalated", message=f"Escalated to manual review: {reason}",
                                 data={"request_id": rid, "status": "escalated", "escalation_id": esc_id,
                                       "reason": reason})
            if claim.attempt > 1:
                logger.warning("request %s: attempt %s (previous: %s)", rid, claim.attempt,
                               claim.previous_error or "the run died")
            return _decide_and_commit(rid, logger)
    except requeue.LeaseHeld as exc:
        logger.info("%s; this run leaves it alone", exc)
        return {"request_id": rid, "status": "under way", "already_done": True}


def _decide_and_commit(rid: int, logger: Any) -> dict[str, Any] | State:
    """Steps 2 to 7, deciding again when another dispatch took the chosen technician's time first."""
    tz = ZoneInfo(get_settings().company_timezone)
    job = analyse_job_requirements(rid)
    for attempt in range(1, MAX_DECISION_ATTEMPTS + 1):
        available = retrieve_available_technicians(job)
        candidates = check_capacity_threshold(job, available)
        decision = calculate_optimal_assignment(job, candidates)
        if decision.chosen is None:
            reason = decision.escalation_reason or "no technician could take the job"
            esc_id = escalate_to_manual_review(job, candidates, reason)
            deliver_quietly(request_id=rid)
            logger.warning("request %s escalated to manual review (escalation %s): %s; %d technicians considered",
                           rid, esc_id, reason, len(candidates))
            return Completed(name="Escalated", message=f"Escalated to manual review: {reason}",
                             data={"request_id": rid, "status": "escalated", "escalation_id": esc_id,
                                   "reason": reason})
        try:
            result = update_schedule_and_notify(decision, job)
            break
        except dispatching.ScheduleConflict as exc:
            logger.info("attempt %s: %s; deciding again", attempt, exc)
            if attempt == MAX_DECISION_ATTEMPTS:
                raise
    confirmation_id = generate_assignment_confirmation(result)
    deliver_quietly(notification_ids=result.notification_ids)
    day = result.start.astimezone(tz).date()
    record_day_metrics(day)
    logger.info("request %s assigned to %s (technician %s): arrival window %s-%s %s, start %s, score %s%s",
                rid, result.technician_name, result.technician_id,
                result.window_start.astimezone(tz).strftime("%a %d %b %H:%M"),
                result.window_end.astimezone(tz).strftime("%H:%M"), tz.key,
                result.start.astimezone(tz).strftime("%H:%M"),
                ", ".join(f"{k} {v:.3f}" for k, v in result.score.items() if isinstance(v, int | float)) or "-",
                f"; {len(result.moved)} other stop(s) moved" if result.moved else "")
    return {"request_id": rid, "status": "assigned", "technician_id": result.technician_id,
            "technician": result.technician_name, "assignment_id": result.assignment_id,
            "confirmation_id": confirmation_id, "start": result.start.isoformat(),
            "window_start": result.window_start.isoformat(), "window_end": result.window_end.isoformat(),
            "moved": len(result.moved)}


@task(name="dispatch-request", cache_policy=INPUTS, persist_result=True)
def dispatch_request(request_id: int, attempt: str = "intake") -> dict[str, Any]:
    """What a Prefect task worker runs for one accepted request: the dispatch flow, as its own flow run.

    ``attempt`` names the hand-over (the intake's first, or a fresh one from the requeue sweep): the same
    request and attempt share a cache key, so a hand-over delivered twice runs the flow once.
    """
    outcome: Any = dispatch_service_request(request_id=request_id)
    if isinstance(outcome, dict):
        return outcome
    return {"request_id": request_id, "status": "escalated" if outcome is not None else "unknown"}
