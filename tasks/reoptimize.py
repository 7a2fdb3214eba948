"""The steps of the daily re-optimisation, each a Prefect task named as an operator knows it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from engine.assignment import AssignmentOptions
from engine.horizon import HorizonOptions, HorizonPlan, reoptimize_horizon
from engine.metrics import day_metrics
from engine.reoptimize import (
    AssignmentStage,
    ReoptimizedPlan,
    ReoptimizeOptions,
    assign_jobs,
    is_better,
    score_plan,
    sequence_plan,
)
from tasks.dispatch import DB_RETRIES
from truckroll import reoptimizing
from truckroll.db import session_scope
from truckroll.reoptimizing import AppliedPlan, DaySnapshot
from truckroll.settings import get_settings
from truckroll.travel import get_travel_provider

log = logging.getLogger(__name__)


def reoptimize_options(time_limit_seconds: float, mip_gap: float, allow_window_changes: bool | None = None,
                       cbc_executable: str | None = None) -> ReoptimizeOptions:
    """The engine's options from the settings (dispatch rules, CBC) and the run's parameters."""
    s = get_settings()
    rules = s.dispatch
    allow = rules.promised_window_policy == "notify" if allow_window_changes is None else allow_window_changes
    return ReoptimizeOptions(
        assignment=AssignmentOptions(utilisation_target=rules.utilisation_target,
                                     parts_policy=rules.missing_parts_policy),
        time_limit_seconds=time_limit_seconds, mip_gap=mip_gap, cbc_executable=cbc_executable or s.cbc_executable,
        allow_window_changes=allow, arrival_window_minutes=rules.arrival_window_minutes,
        arrival_window_rounding_minutes=rules.arrival_window_rounding_minutes,
        parts_detour_minutes=rules.parts_detour_minutes)


@task(name="Load the day's plan", **DB_RETRIES)
def load_days_plan(day: date, rescue_escalations: bool = True) -> DaySnapshot:
    """Shifts starting on the day with their routes (fixed work marked), and the day's unassigned requests."""
    tz = ZoneInfo(get_settings().company_timezone)
    with session_scope() as session:
        return reoptimizing.load_day(day, tz, session=session, rescue=rescue_escalations)


@task(name="Load the horizon's plan", **DB_RETRIES)
def load_horizon_plan(dates: list[date], rescue_escalations: bool = True) -> DaySnapshot:
    """Shifts of every day of the horizon with their routes, its unassigned requests, the promised visits."""
    tz = ZoneInfo(get_settings().company_timezone)
    with session_scope() as session:
        return reoptimizing.load_horizon(dates, tz, session=session, rescue=rescue_escalations)


@task(name="Generate routes (PyVRP) and choose the plan (CBC set partitioning)", cache_policy=NO_CACHE)
def plan_horizon(snapshot: DaySnapshot, options: ReoptimizeOptions, seed: int = 0) -> HorizonPlan:
    """Candidate routes per shift (current, rescue, PyVRP's), then the best combination; pinned work stays."""
    return reoptimize_horizon(snapshot.days, snapshot.jobs, get_travel_provider(),
                              HorizonOptions(base=options, seed=seed), pinned=snapshot.promised)


@task(name="Solve the assignment model (CBC)", cache_policy=NO_CACHE)
def solve_assignment_model(snapshot: DaySnapshot, options: ReoptimizeOptions) -> AssignmentStage:
    """Which technician does each movable job: value and priority, upsell, travel from home, balance."""
    return assign_jobs(snapshot.days, snapshot.jobs, get_travel_provider(), options)


@task(name="Sequence routes", cache_policy=NO_CACHE)
def sequence_routes(snapshot: DaySnapshot, stage: AssignmentStage, options: ReoptimizeOptions) -> ReoptimizedPlan:
    """Order each technician's jobs around their fixed work inside the windows, then relocate to cut driving."""
    return sequence_plan(snapshot.days, stage, get_travel_provider(), options)


@dataclass
class Comparison:
    better: bool
    reason: str
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    jobs_per_technician: list[dict[str, Any]] = field(default_factory=list)


def _metrics(days: Any, snapshot: DaySnapshot, unassigned: int, options: ReoptimizeOptions) -> dict[str, float]:
    travel = get_travel_provider()
    values = {rid: j.estimated_value for rid, j in snapshot.jobs.items()}
    m = day_metrics(days, travel, values=values).as_dict()
    score = score_plan(days, snapshot.jobs, travel, options)
    return {"jobs scheduled": m["jobs"], "unassigned requests": unassigned,
            "total travel (min)": m["total_travel_minutes"], "travel per job (min)": m["travel_per_job_minutes"],
            "average utilisation": m["average_utilisation"], "busiest technician utilisation": score.max_utilisation,
            "jobs per technician": m["jobs_per_technician"], "revenue ($)": score.revenue,
            "expected upsell ($)": score.upsell}


@task(name="Compare with the current plan", cache_policy=NO_CACHE)
def compare_with_current_plan(snapshot: DaySnapshot, plan: ReoptimizedPlan, options: ReoptimizeOptions) -> Comparison:
    """Value served first, then travel net of upsell, then balance: the new plan must be strictly better."""
    travel = get_travel_provider()
    old = score_plan(snapshot.days, snapshot.jobs, travel, options)
    new = score_plan(plan.days, snapshot.jobs, travel, options)
    before = _metrics(snapshot.days, snapshot, len(snapshot.candidates), options)
    after = _metrics(plan.days, snapshot, len(plan.unplaced), options)
    names = {d.technician_id: d.name for d in snapshot.days}
    per_tech: dict[int, dict[str, Any]] = {}
    for label, days in (("before", snapshot.days), ("after", plan.days)):
        for d in days:
            row = per_tech.setdefault(d.technician_id, {"technician": names[d.technician_id], "before": 0, "after": 0})
            row[label] += len(d.stops)
    if not plan.valid:
        better, reason = False, plan.message
    elif is_better(new, old, options.min_gain):
        gained = new.served_weight > old.served_weight + 1e-6
        better = True
        reason = ("more work served" if gained else
                  f"travel {old.travel_minutes:.0f} -> {new.travel_minutes:.0f} min, expected upsell "
                  f"${old.upsell:,.0f} -> ${new.upsell:,.0f}" if abs(new.net - old.net) > options.min_gain
                  else "better balanced")
    else:
        better, reason = False, "no better plan found: the current plan stays"
    return Comparison(better=better, reason=reason, before=before, after=after,
                      jobs_per_technician=sorted(per_tech.values(), key=lambda r: r["technician"]))


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
        return reoptimizing.queue_pending_notices(day, get_settings().company_timezone, session=session)


@task(name="Escalate unplaceable requests", **DB_RETRIES)
def escalate_unplaceable(snapshot: DaySnapshot, plan: ReoptimizedPlan) -> list[int]:
    """An escalation and a dispatch alert for each request nobody can take (open ones are kept)."""
    names = {d.technician_id: d.name for d in snapshot.days}
    with session_scope() as session:
        return reoptimizing.escalate_unplaced(plan.unplaced, session=session, names=names)


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


def company_today() -> date:
    from datetime import datetime

    return datetime.now(ZoneInfo(get_settings().company_timezone)).date()


def parse_day(value: str | None) -> date:
    """``value`` as a date (YYYY-MM-DD); today in the company's time zone when None."""
    if value is None or value == "":
        return company_today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"day must be YYYY-MM-DD (got {value!r})") from None

