"""``truckroll bench reoptimize``: a company's horizon dispatched one request at a time, then re-optimised.

A synthetic company (``--technicians`` with homes over a 50 x 45 km metro, trades HVAC / plumbing /
electrical with levels, 08:00-17:00 shifts on ``--days`` working days) receives ``--jobs`` requests in random
arrival order, with windows of a few hours, a whole day or several days. Each request is placed as the
dispatch loop would, at the cheapest feasible insertion among the qualified shifts under the utilisation
target, or left unassigned. The horizon is then re-optimised by engine.reoptimize.horizon (PyVRP columns, CBC set
partitioning) from that plan; a share of the first day's visits is promised (the customer was told the window,
which the visit keeps; its technician may change). Plain data, no database, no Prefect: the figure is the
re-optimisation's own time.
"""

from __future__ import annotations

import random
import time as clock
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import typer

from cli.app import bench_app, console

TRADES = (("hvac", 0.45), ("plumbing", 0.35), ("electrical", 0.20))


def synthetic_horizon(technicians: int, jobs: int, days: int, seed: int, *, start: date = date(2030, 1, 7),
                      tz: str = "America/Chicago") -> tuple[list[Any], dict[int, Any]]:
    """Shifts (TechnicianDay, empty routes) and the requests' requirements (JobRequirements) of the horizon."""
    from demo.scenario import working_days
    from models.domain import JobRequirements, Location, TechnicianDay, TimeWindow

    rng = random.Random(seed)
    z = ZoneInfo(tz)
    dates = working_days(start, days)

    def at(day: date, hh: float) -> datetime:
        return datetime.combine(day, time(int(hh), int(round((hh % 1) * 60))), tzinfo=z)

    def place() -> Location:
        return Location(rng.uniform(32.62, 33.08), rng.uniform(-97.08, -96.55))

    def trade() -> str:
        return rng.choices([t for t, _ in TRADES], [w for _, w in TRADES])[0]

    shifts = []
    for tid in range(1, technicians + 1):
        main = trade()
        skills = {main: rng.choice((1, 2, 2, 3, 3))}
        if rng.random() < 0.3:
            other = rng.choice([t for t, _ in TRADES if t != main])
            skills[other] = 1
        home = place()
        for day in dates:
            shifts.append(TechnicianDay(technician_id=tid, name=f"Technician {tid}", home=home,
                                        shift_start=at(day, 8), shift_end=at(day, 17), skills=dict(skills),
                                        upsell_multiplier=rng.choice((1.0, 1.0, 1.1, 1.2))))
    reqs: dict[int, Any] = {}
    for rid in range(1, jobs + 1):
        first = rng.randrange(len(dates))
        kind = rng.random()
        if kind < 0.4:
            a = rng.choice((8, 10, 12, 13))
            windows = [TimeWindow(at(dates[first], a), at(dates[first], a + 4))]
        elif kind < 0.7:
            windows = [TimeWindow(at(dates[first], 8), at(dates[first], 16.5))]
        else:
            span = dates[first:first + rng.choice((2, 3))] or dates[-1:]
            windows = [TimeWindow(at(x, 8), at(x, 16.5)) for x in span]
        level = rng.choices((1, 2, 3), (0.5, 0.4, 0.1))[0]
        reqs[rid] = JobRequirements(
            request_id=rid, location=place(), duration_minutes=float(rng.choice((45, 60, 60, 90, 90, 120, 180))),
            required_skills={trade(): level}, required_certifications=[], parts_needed={}, windows=windows,
            priority=rng.choices((5, 3, 1), (0.9, 0.08, 0.02))[0], estimated_value=float(rng.randrange(150, 900)))
    return shifts, reqs


def dispatch_one_by_one(shifts: list[Any], reqs: dict[int, Any], travel: Any, target: float, seed: int) -> list[int]:
    """Place each request in random arrival order at its cheapest feasible insertion among the qualified
    shifts under ``target`` (in place); returns the requests left unassigned."""
    from engine.dispatch.eligibility import ineligibility_reasons
    from engine.dispatch.insertion import apply_insertion, best_insertion, utilisation

    order = sorted(reqs)
    random.Random(seed + 1).shuffle(order)
    left = []
    for rid in order:
        job = reqs[rid]
        best = None
        for k, d in enumerate(shifts):
            if ineligibility_reasons(d, job):
                continue
            ins = best_insertion(d, job, travel)
            if ins is None or utilisation(d, travel, job.duration_minutes + ins.added_travel_minutes) > target:
                continue
            if best is None or ins.added_travel_minutes < best[0]:
                best = (ins.added_travel_minutes, k, ins)
        if best is None:
            left.append(rid)
            continue
        _, k, ins = best
        apply_insertion(shifts[k], job, ins, ins.customer_window, travel)
    return left


@bench_app.command("reoptimize")
def bench_reoptimize(
    technicians: int = typer.Option(100, help="Technicians of the company."),
    jobs: int = typer.Option(1000, help="Requests over the horizon."),
    days: int = typer.Option(3, help="Working days of the horizon."),
    time_limit: float = typer.Option(40.0, "--time-limit", help="Budget of PyVRP + CBC (seconds)."),
    promised_share: float = typer.Option(0.3, help="Share of the first day's visits already promised."),
    seed: int = typer.Option(11, help="Seed of the company and the requests."),
) -> None:
    """Value, travel and utilisation of the horizon before and after re-optimisation, and its time."""
    from rich.table import Table

    from engine.dispatch.insertion import utilisation
    from engine.reoptimize.day import ReoptimizeOptions, is_better, score_plan
    from engine.reoptimize.horizon import HorizonOptions, reoptimize_horizon
    from engine.reoptimize.model import AssignmentOptions
    from engine.travel import GreatCircleTravel

    travel = GreatCircleTravel(detour_factor=1.3, speed_kmh=40.0)
    base = ReoptimizeOptions(assignment=AssignmentOptions(utilisation_target=0.85), time_limit_seconds=time_limit)
    t0 = clock.perf_counter()
    shifts, reqs = synthetic_horizon(technicians, jobs, days, seed)
    left = dispatch_one_by_one(shifts, reqs, travel, base.assignment.utilisation_target, seed)
    first_day = min(d.shift_start.date() for d in shifts)
    rng = random.Random(seed + 2)
    promised = frozenset(s.request_id for d in shifts if d.shift_start.date() == first_day for s in d.stops
                       if rng.random() < promised_share)
    console.print(f"{technicians} technicians x {days} days, {jobs} requests: {jobs - len(left)} placed one by one, "
                  f"{len(left)} unassigned, {len(promised)} promised ({clock.perf_counter() - t0:.1f} s to set up)")

    def row(label: str, days_: list[Any], unassigned: int, seconds: str, status: str, better: str) -> list[str]:
        s = score_plan(days_, reqs, travel, base)
        utils = [utilisation(d, travel) for d in days_]
        per_job = s.travel_minutes / max(s.jobs, 1)
        return [label, str(s.jobs), str(unassigned), f"{s.travel_minutes:,.0f}", f"{per_job:.1f}",
                f"{sum(utils) / len(utils):.1%}", f"{max(utils):.1%}", f"{s.revenue:,.0f}", seconds, status, better]

    t = Table(title=f"Re-optimisation of {days} days ({technicians} technicians, {jobs} requests, seed {seed})")
    for c in ("plan", "jobs", "unassigned", "travel min", "travel/job", "avg util", "busiest", "revenue $",
              "total s", "status", "better"):
        t.add_column(c, justify="left" if c in ("plan", "status") else "right")
    t.add_row(*row("dispatched one by one", shifts, len(left), "", "", ""))
    before = score_plan(shifts, reqs, travel, base)
    for label, opts in (("PyVRP columns + CBC set partitioning", HorizonOptions(base=base, seed=seed)),):
        started = clock.perf_counter()
        plan = reoptimize_horizon(shifts, reqs, travel, opts, promised=promised)
        took = clock.perf_counter() - started
        after = score_plan(plan.days, reqs, travel, base)
        t.add_row(*row(label, plan.days, len(plan.unplaced), f"{took:.1f}",
                       plan.assignment.status + ("" if plan.valid else " (invalid)"),
                       "yes" if plan.valid and is_better(after, before, base.min_gain) else "no"))
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in plan.timings_seconds.items())
        console.print(f"{label}: {steps}; columns {plan.columns}; {plan.moves} visits moved; "
                      f"{len(plan.conflicts)} pinned conflicts")
    console.print(t)
