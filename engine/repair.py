"""Bounded repair: when nobody can take a request by insertion, move one job not yet under way from a
technician who could then take the request to another technician who can take that job inside the arrival
window its customer was promised. Runs before escalating, within its own time budget.

A move never breaks a promise: the moved job keeps its promised window (only its technician and planned start
change), fixed work (locked, in progress, completed) never moves, and the new request goes through the same
eligibility, threshold and insertion as any other (``engine.dispatch``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from engine.availability import start_location
from engine.config import DispatchSettings
from engine.dispatch import choose, evaluate_candidates, evaluate_day
from engine.displacement import without_stops
from engine.insertion import leg_minutes, route_travel_minutes
from engine.travel import TravelTimeProvider
from models.domain import Candidate, Decision, JobRequirements, Move, Stop, TechnicianDay


@dataclass(slots=True)
class RepairPlan:
    decision: Decision  # the new request's decision, on the giving technician's route without the moved job
    moves: list[Move]
    added_travel_minutes: float  # the request's insertion plus the moves' net travel
    tried: int  # moves evaluated
    elapsed_seconds: float


def _promised(job: JobRequirements, stop: Stop) -> JobRequirements:
    """The moved job as a new insertion sees it: it must start inside the window its customer was told."""
    return replace(job, windows=[stop.window])


def repair(job: JobRequirements, days: list[TechnicianDay], candidates: list[Candidate],
           requirements: Callable[[int], JobRequirements | None], travel: TravelTimeProvider,
           rules: DispatchSettings, *, budget_seconds: float = 1.0, extra_givers: int = 2,
           overrides: frozenset[str] = frozenset()) -> RepairPlan | None:
    """The cheapest single move that lets someone take ``job``: givers are tried closest first, and the search
    stops ``extra_givers`` givers after the first that yields a plan, or when ``budget_seconds`` run out.

    Parameters
    ----------
    job:
        The request nobody could take by insertion.
    days:
        Every shift the decision saw (givers and receivers come from these).
    candidates:
        The decision's candidates: only those turned down for their route or the threshold (qualified, inside
        the boundary the decision allowed) may give a job away.
    requirements:
        The requirements of a job already in a route, by request id (None: it may not move).
    budget_seconds:
        Wall time for the search; the best plan found by then is returned.

    Returns
    -------
    RepairPlan | None
        None when no single move within the budget makes room.
    """
    t0 = time.perf_counter()
    deadline = t0 + budget_seconds
    givers = [c for c in candidates if c.rejected_at in ("threshold", "route") and c.day is not None]
    # The closest givers first: their routes are where the request fits best.
    givers.sort(key=lambda c: travel.minutes(c.day.home, job.location) if c.day else 0.0)
    best: RepairPlan | None = None
    tried = 0
    # Once a plan is found, ``extra_givers`` more givers may still beat it; then the search stops early.
    left: int | None = None
    for giver in givers:
        if left is not None:
            if left == 0:
                break
            left -= 1
        day = giver.day
        assert day is not None
        for s in sorted((s for s in day.stops if not s.fixed),
                        key=lambda s: travel.minutes(s.location, job.location)):
            if time.perf_counter() > deadline:
                return _done(best, tried, t0)
            moved_job = requirements(s.request_id)
            if moved_job is None:
                continue
            tried += 1
            lighter = without_stops(day, [s.request_id], travel)
            # The request on the giver's route without the moved job: the one decision, on that route alone.
            decision = choose(job, evaluate_candidates(job, [lighter], travel, rules, overrides), rules)
            if decision.chosen is None or decision.displaced or decision.chosen.insertion is None:
                continue
            promised = _promised(moved_job, s)
            receivers = [evaluate_day(d, promised, travel, rules) for d in days
                         if d.technician_id != day.technician_id
                         and d.shift_start < s.window.end and d.shift_end > s.window.start]
            fits = [r for r in receivers if r.eligible and r.insertion is not None]
            if not fits:
                continue
            recv = min(fits, key=lambda r: (r.insertion.added_travel_minutes if r.insertion else 0.0,
                                            r.technician_id))
            assert recv.insertion is not None
            saved = _saved_travel(day, lighter, travel)
            delta = saved - recv.insertion.added_travel_minutes
            added = decision.chosen.insertion.added_travel_minutes - delta
            if best is None or added < best.added_travel_minutes:
                move = Move(s.request_id, day.technician_id, recv.technician_id, s, promised, recv.insertion, delta)
                best = RepairPlan(decision, [move], added, tried, 0.0)
        if best is not None and left is None:
            left = extra_givers
    return _done(best, tried, t0)


def relink(day: TechnicianDay, travel: TravelTimeProvider) -> TechnicianDay:
    """The day (in place) with every stop's leg measured again from the stop before it (after a job left)."""
    prev = start_location(day)
    for s in day.stops:
        s.travel_minutes = leg_minutes(travel, prev, s)
        prev = s.location
    return day


def _saved_travel(before: TechnicianDay, after: TechnicianDay, travel: TravelTimeProvider) -> float:
    return route_travel_minutes(before, travel) - route_travel_minutes(after, travel)


def _done(best: RepairPlan | None, tried: int, t0: float) -> RepairPlan | None:
    if best is not None:
        best.tried = tried
        best.elapsed_seconds = time.perf_counter() - t0
        best.decision.moves = list(best.moves)
    return best
