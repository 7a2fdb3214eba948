"""The steps of the daily re-optimisation, each a Prefect task named as an operator knows it."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from engine.reoptimize.day import ReoptimizedPlan, ReoptimizeOptions
from engine.reoptimize.horizon import HorizonOptions, HorizonPlan, reoptimize_horizon
from tasks.dispatch import DB_RETRIES
from truckroll.db import session_scope
from truckroll.reoptimize import day as reoptimizing
from truckroll.reoptimize.day import AppliedPlan, Comparison, DaySnapshot
from truckroll.settings import get_settings
from truckroll.travel.provider import get_travel_provider

log = logging.getLogger(__name__)


@task(name="Load the horizon's plan", **DB_RETRIES)
def load_horizon_plan(dates: list[date], rescue_escalations: bool = True) -> DaySnapshot:
    """Shifts of every day of the horizon with their routes, its unassigned requests, the promised visits."""
    tz = ZoneInfo(get_settings().company_timezone)
    with session_scope() as session:
        return reoptimizing.load_horizon(dates, tz, session=session, travel=get_travel_provider(get_settings()),
                                         rescue=rescue_escalations)


@task(name="Generate routes (PyVRP) and choose the plan (CBC set partitioning)", cache_policy=NO_CACHE)
def plan_horizon(snapshot: DaySnapshot, options: ReoptimizeOptions, seed: int = 0) -> HorizonPlan:
    """Candidate routes per shift (current, rescue, PyVRP's), then the best combination; fixed work stays,
    promised visits keep their window."""
    return reoptimize_horizon(snapshot.days, snapshot.jobs, get_travel_provider(get_settings()),
                              HorizonOptions(base=options, seed=seed), promised=snapshot.promised)


@task(name="Compare with the current plan", cache_policy=NO_CACHE)
def compare_with_current_plan(snapshot: DaySnapshot, plan: ReoptimizedPlan, options: ReoptimizeOptions) -> Comparison:
    """Value served first, then travel net of upsell, then balance: the new plan must be strictly better."""
    return reoptimizing.compare_plans(snapshot, plan, options, travel=get_travel_provider(get_settings()))


@task(name="Apply the new plan", **DB_RETRIES)
def apply_new_plan(snapshot: DaySnapshot, plan: ReoptimizedPlan) -> AppliedPlan:
    """Move, re-time and create assignments and resolve rescued escalations, all in one transaction."""
    tz = ZoneInfo(get_settings().company_timezone)
    with session_scope() as session:
        return reoptimizing.apply_plan(snapshot, plan, session=session, tz=tz)


@task(name="Notify changed customers and technicians", **DB_RETRIES)
def notify_changed(day: date) -> list[int]:
    """Reschedule notices to customers whose window changed, windows to rescued customers, route updates."""
    with session_scope() as session:
        settings = get_settings()
        return reoptimizing.queue_pending_notices(day, settings.company_timezone, session=session, settings=settings,
                                                  travel=get_travel_provider(settings))


@task(name="Escalate unplaceable requests", **DB_RETRIES)
def escalate_unplaceable(snapshot: DaySnapshot, plan: ReoptimizedPlan) -> tuple[list[int], list[int]]:
    """An escalation and a dispatch alert for each request nobody can take (open ones are kept): the
    escalations' ids and the alerts' ids."""
    names = {d.technician_id: d.name for d in snapshot.days}
    alerts: list[int] = []
    with session_scope() as session:
        escalations = reoptimizing.escalate_unplaced(plan.unplaced, session=session, names=names,
                                                     settings=get_settings(), notes=alerts)
    return escalations, alerts


@task(name="Publish before and after", cache_policy=NO_CACHE)
def publish_comparison(day: date, comparison: Comparison, plan: ReoptimizedPlan, outcome: str) -> str:
    """A table artifact keyed ``reoptimize-<date>``: travel, utilisation, jobs per technician, unassigned."""
    rows: list[dict[str, Any]] = []
    for k, b in comparison.before.items():
        a = comparison.after.get(k, b)
        pct = "utilisation" in k
        fmt = (lambda v: f"{v:.1%}") if pct else (lambda v: f"{v:,.1f}")
        rows.append({"measure": k, "before": fmt(b), "proposed": fmt(a), "change": fmt(a - b)})
    for r in comparison.jobs_per_technician:
        rows.append({"measure": f"jobs: {r['technician']}", "before": str(r["before"]), "proposed": str(r["after"]),
                     "change": f"{r['after'] - r['before']:+d}"})
    flags = []
    if plan.assignment.status == "time_limit":
        flags.append("SOLVER HIT ITS TIME LIMIT: best feasible assignment used")
    if plan.assignment.status == "greedy_fallback":
        flags.append(f"GREEDY FALLBACK: {plan.assignment.message}")
    description = (f"Re-optimisation of {day.isoformat()}: {outcome}. Assignment {plan.assignment.status} "
                   f"({plan.assignment.pairs} eligible pairs, {plan.assignment.solve_seconds:.2f} s), "
                   f"{plan.moves} relocations." + (" " + " ".join(flags) if flags else ""))
    create_table_artifact(key=f"reoptimize-{day.isoformat()}", table=rows, description=description)
    return description
