"""Bounded repair: when nobody can take a request by insertion, move one job not yet under way (or, when no
single move is enough, two neighbouring ones) from a technician who could then take the request to other
technicians who can take them inside the arrival windows their customers were promised. Runs before
escalating, within its own time budget.

A move never breaks a promise: the moved job keeps its promised window (only its technician and planned start
change), fixed work (locked, in progress, completed) never moves, and the new request goes through the same
eligibility, threshold and insertion as any other (``engine.dispatch.decision``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from engine.config import DispatchSettings
from engine.dispatch.decision import choose, evaluate_candidates, evaluate_day
from engine.dispatch.displacement import without_stops
from engine.dispatch.insertion import apply_insertion, leg_minutes, route_travel_minutes
from engine.rules.availability import start_location
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
    """The cheapest move (one job, else two neighbouring jobs of one route) that lets someone take ``job``:
    givers are tried closest first, and the search stops ``extra_givers`` givers after the first that yields a
    plan, or when ``budget_seconds`` run out.

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
        None when no move of one or two jobs within the budget makes room.
    """
    t0 = time.perf_counter()
    deadline = t0 + budget_seconds
    givers = [c for c in candidates if c.rejected_at in ("threshold", "route") and c.day is not None]
    # The closest givers first: their routes are where the request fits best.
    givers.sort(key=lambda c: travel.minutes(c.day.home, job.location) if c.day else 0.0)
    best: RepairPlan | None = None
    tried = 0
    # One job moved first; two neighbouring jobs of one route only when no single move makes room.
    for size in (1, 2):
        if best is not None:
            break
        # Once a plan is found, ``extra_givers`` more givers may still beat it; then the search stops early.
        left: int | None = None
        for giver in givers:
            if left is not None:
                if left == 0:
                    break
                left -= 1
            day = giver.day
            assert day is not None
            for group in _groups(day, job, travel, size):
                if time.perf_counter() > deadline:
                    return _done(best, tried, t0)
                jobs = [requirements(st.request_id) for st in group]
                if any(j is None for j in jobs):
                    continue
                tried += 1
                lighter = without_stops(day, [st.request_id for st in group], travel)
                # The request on the giver's route without the moved jobs: the one decision, on that route alone.
                decision = choose(job, evaluate_candidates(job, [lighter], travel, rules, overrides), rules)
                if decision.chosen is None or decision.displaced or decision.chosen.insertion is None:
                    continue
                moves = _place(group, [j for j in jobs if j is not None], days, day, travel, rules)
                if moves is None:
                    continue
                saved = _saved_travel(day, lighter, travel)
                added = decision.chosen.insertion.added_travel_minutes - saved + sum(
                    m.insertion.added_travel_minutes for m in moves)
                if best is None or added < best.added_travel_minutes:
                    best = RepairPlan(decision, moves, added, tried, 0.0)
            if best is not None and left is None:
                left = extra_givers
    return _done(best, tried, t0)


def _groups(day: TechnicianDay, job: JobRequirements, travel: TravelTimeProvider, size: int) -> list[list[Stop]]:
    """The jobs that may leave the route together: each movable one (size 1) or each two neighbours (size 2),
    nearest to the request first."""
    stops = day.stops
    if size == 1:
        groups = [[s] for s in stops if not s.fixed]
    else:
        groups = [[a, b] for a, b in zip(stops, stops[1:], strict=False) if not a.fixed and not b.fixed]
    return sorted(groups, key=lambda g: min(travel.minutes(s.location, job.location) for s in g))


def _place(group: list[Stop], jobs: list[JobRequirements], days: list[TechnicianDay], giver: TechnicianDay,
           travel: TravelTimeProvider, rules: DispatchSettings) -> list[Move] | None:
    """Each moved job on the receiver where it adds least travel, inside its promised window; a receiver of
    the first is seen with it for the second. None when one of them fits nobody."""
    current = {id(d): d for d in days}
    moves: list[Move] = []
    for s, moved_job in zip(group, jobs, strict=True):
        promised = _promised(moved_job, s)
        options = [(evaluate_day(d, promised, travel, rules), key) for key, d in current.items()
                   if d.technician_id != giver.technician_id
                   and d.shift_start < s.window.end and d.shift_end > s.window.start]
        fits = [(c, key) for c, key in options if c.eligible and c.insertion is not None]
        if not fits:
            return None
        recv, key = min(fits, key=lambda x: (x[0].insertion.added_travel_minutes if x[0].insertion else 0.0,
                                             x[0].technician_id))
        assert recv.insertion is not None and recv.day is not None
        moves.append(Move(s.request_id, giver.technician_id, recv.technician_id, s, promised, recv.insertion,
                          -recv.insertion.added_travel_minutes))
        if len(group) > 1:
            after = copy.deepcopy(recv.day)
            apply_insertion(after, promised, recv.insertion, s.window, travel)
            current[key] = after
    return moves


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
