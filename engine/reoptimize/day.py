"""The daily re-optimisation on plain data: assign (engine.reoptimize.model, CBC), sequence, improve, compare.

1. Fixed work (locked, in progress, completed) stays exactly where it is; every other stop of the day and the
   day's unassigned requests (optional) are the movable jobs.
2. The assignment model chooses a shift for each job (CBC; the greedy rule if CBC is missing or fails).
3. Each shift's route is built by cheapest feasible insertion around its fixed stops (engine.dispatch.insertion),
   promised visits first. A job that does not fit its assigned route goes to the cheapest other qualified
   route; a promised visit that fits nowhere invalidates the plan (re-optimisation never drops a customer).
4. Relocation: a job moves to another route (or position) while that saves travel cost net of upsell.
5. Windows: a customer already told an arrival window keeps it (the hard constraint) unless window changes are
   allowed; then a visit that leaves its promised window gets a new one (and its customer is notified).
6. ``score_plan`` / ``is_better`` compare plans by value and priority served first, then travel net of the
   technicians' upsell, then the busiest technician's utilisation. The caller applies only a strictly better
   plan.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from engine.dispatch.eligibility import missing_parts
from engine.dispatch.insertion import (
    apply_insertion,
    best_insertion,
    promised_window,
    route_travel_minutes,
    utilisation,
)
from engine.reoptimize.model import (
    AssignmentOptions,
    AssignmentProblem,
    AssignmentResult,
    build_problem,
    served_weight,
    solve_assignment,
)
from engine.travel import TravelTimeProvider
from models.domain import JobRequirements, TechnicianDay, TimeWindow

logger = logging.getLogger(__name__)

_EPS = timedelta(seconds=1)


@dataclass(frozen=True)
class ReoptimizeOptions:
    """How the day is re-optimised."""

    assignment: AssignmentOptions = AssignmentOptions()
    time_limit_seconds: float = 30.0
    mip_gap: float = 0.0
    cbc_executable: str = "cbc"
    # False: promised arrival windows are hard. True: the customer's own windows are, and a visit leaving
    # its promised window is re-promised (the caller notifies that customer).
    allow_window_changes: bool = False
    arrival_window_minutes: int = 120
    arrival_window_rounding_minutes: int = 30
    parts_detour_minutes: float = 30.0
    # A relocation must gain at least this much (dollars of travel cost net of upsell); so must a new plan.
    min_gain: float = 1.0
    local_search: bool = True
    max_local_search_passes: int = 6
    # False (default): start from the current routes and make the model's moves that stay feasible, so every
    # promised visit keeps a place. True: rebuild every route from the fixed work by insertion.
    rebuild_routes: bool = False
    # Build both ways and keep the better valid plan (rebuild_routes is then ignored).
    try_both_starts: bool = True

    def __post_init__(self) -> None:
        if not self.time_limit_seconds > 0:
            raise ValueError(f"time_limit_seconds must be > 0 (got {self.time_limit_seconds})")
        if not 0 <= self.mip_gap < 1:
            raise ValueError(f"mip_gap must be in [0, 1) (got {self.mip_gap})")
        if self.min_gain < 0:
            raise ValueError(f"min_gain must be >= 0 (got {self.min_gain})")


@dataclass(frozen=True)
class PlanScore:
    """What a plan is judged by (``is_better``) and reported with."""

    served_weight: float
    travel_minutes: float
    upsell: float
    net: float  # upsell - travel cost
    max_utilisation: float
    jobs: int
    revenue: float


@dataclass
class ReoptimizedPlan:
    """The proposed plan: the day's shifts with their new routes, and what could not be placed."""

    days: list[TechnicianDay]
    # request id -> the promised window it ends up with (for told customers: unchanged unless re-promised)
    windows: dict[int, TimeWindow]
    # request id -> (reason, {technician id: reasons})
    unplaced: dict[int, tuple[str, dict[int, list[str]]]]
    assignment: AssignmentResult
    valid: bool = True
    message: str = ""
    timings_seconds: dict[str, float] = field(default_factory=dict)
    moves: int = 0


# ------------------------------------------------------------------------------------------ route helpers


def copy_day(day: TechnicianDay, *, fixed_only: bool = False) -> TechnicianDay:
    """A copy whose stops can be changed without touching ``day``."""
    stops = [dataclasses.replace(s) for s in day.stops if s.fixed or not fixed_only]
    return dataclasses.replace(day, stops=stops)


def _detour(day: TechnicianDay, job: JobRequirements | None, options: ReoptimizeOptions) -> float:
    if job is None or options.assignment.parts_policy != "detour" or not missing_parts(day, job):
        return 0.0
    return options.parts_detour_minutes


def retime(day: TechnicianDay, travel: TravelTimeProvider, jobs: Mapping[int, JobRequirements],
           options: ReoptimizeOptions) -> bool:
    """Move every movable stop as early as its window allows (in place) and set each leg's travel.

    Fixed stops keep their times. Returns False (the route is then partly changed) when a stop cannot start
    inside its window or the technician cannot be home by the end of the shift.
    """
    here, t = day.home, day.shift_start
    for s in day.stops:
        s.detour_minutes = _detour(day, jobs.get(s.request_id), options)
        leg = travel.minutes(here, s.location, t) + s.detour_minutes
        s.travel_minutes = leg
        if not s.fixed:
            duration = s.end - s.start
            start = max(t + timedelta(minutes=leg), s.window.start, day.shift_start)
            if start > s.window.end + _EPS:
                return False
            s.start, s.end = start, start + duration
        here, t = s.location, s.end
    if day.stops and t + timedelta(minutes=travel.minutes(here, day.home, t)) > day.shift_end + _EPS:
        return not any(not s.fixed for s in day.stops)
    return True


def _insert(day: TechnicianDay, job: JobRequirements, travel: TravelTimeProvider, jobs: Mapping[int, JobRequirements],
            options: ReoptimizeOptions, own: Mapping[int, JobRequirements] | None = None) -> float | None:
    """Insert ``job`` at its cheapest feasible place (in place); returns the added travel or None.

    With ``own`` (the customers' own windows; only when window changes are allowed) and no place that keeps
    every promise, later visits may be pushed out of their promised windows but not out of their own.
    """
    for allow_broken in (False, True) if own is not None else (False,):
        ins = best_insertion(day, job, travel, parts_detour_minutes=_detour(day, job, options),
                             allow_broken_promises=allow_broken)
        if ins is None:
            continue
        before = route_travel_minutes(day, travel)
        trial = copy_day(day)
        apply_insertion(trial, job, ins, ins.customer_window, travel)
        if own is not None:
            broken = {c.request_id: c.new_start for c in ins.broken_promises}
            for st in trial.stops:
                if st.request_id in broken:
                    mine = own.get(st.request_id)
                    fits = [w for w in (mine.windows if mine else []) if w.contains(broken[st.request_id])]
                    if not fits:
                        break
                    st.window = fits[0]
            else:
                if retime(trial, travel, jobs, options):
                    day.stops = trial.stops
                    return route_travel_minutes(day, travel) - before
            continue
        if retime(trial, travel, jobs, options):
            day.stops = trial.stops
            return route_travel_minutes(day, travel) - before
    return None


def _insertion_cost(day: TechnicianDay, job: JobRequirements, travel: TravelTimeProvider,
                    options: ReoptimizeOptions, own: Mapping[int, JobRequirements] | None = None) -> float | None:
    ins = best_insertion(day, job, travel, parts_detour_minutes=_detour(day, job, options))
    if ins is None and own is not None:
        ins = best_insertion(day, job, travel, parts_detour_minutes=_detour(day, job, options),
                             allow_broken_promises=True)
    return None if ins is None else ins.added_travel_minutes


# ------------------------------------------------------------------------------------------ the plan


def constraint_jobs(days: Sequence[TechnicianDay], jobs: Mapping[int, JobRequirements],
                    options: ReoptimizeOptions) -> tuple[dict[int, JobRequirements], dict[int, TimeWindow]]:
    """The movable jobs with the windows they must start in, and the windows promised so far.

    Jobs of fixed stops are not movable whatever ``jobs`` holds. A promised window is the window a visit is
    first planned in; when window changes are allowed, ``sequence_plan`` falls back to the customer's own.
    """
    promised = {s.request_id: s.window for d in days for s in d.stops if not s.fixed}
    fixed = {s.request_id for d in days for s in d.stops if s.fixed}
    out: dict[int, JobRequirements] = {}
    for rid, job in jobs.items():
        if rid in fixed:
            continue
        if rid in promised:
            out[rid] = dataclasses.replace(job, windows=[promised[rid]])
        else:
            out[rid] = job
    return out, promised


@dataclass
class AssignmentStage:
    """The assignment step's output, what the sequencing step starts from (plain data)."""

    work: dict[int, JobRequirements]
    promised: dict[int, TimeWindow]
    # the customers' own windows, when window changes are allowed (else None)
    own: dict[int, JobRequirements] | None
    must_serve: frozenset[int]
    problem: AssignmentProblem
    result: AssignmentResult
    timings_seconds: dict[str, float] = field(default_factory=dict)


def assign_jobs(days: Sequence[TechnicianDay], jobs: Mapping[int, JobRequirements], travel: TravelTimeProvider,
                options: ReoptimizeOptions) -> AssignmentStage:
    """Step 2: choose a shift for every movable job with the assignment model (CBC, or greedy on failure)."""
    t0 = time.perf_counter()
    work, promised = constraint_jobs(days, jobs, options)
    current_shift = {s.request_id: k for k, d in enumerate(days) for s in d.stops if not s.fixed}
    must = frozenset(current_shift)
    ordered = sorted(work.values(), key=lambda j: j.request_id)
    problem = build_problem(days, ordered, travel, options.assignment, current_shift=current_shift, must_serve=must)
    t_built = time.perf_counter()
    result = solve_assignment(problem, time_limit_seconds=options.time_limit_seconds, mip_gap=options.mip_gap,
                              executable=options.cbc_executable)
    own = {rid: jobs[rid] for rid in work} if options.allow_window_changes else None
    return AssignmentStage(work=work, promised=promised, own=own, must_serve=must, problem=problem, result=result,
                           timings_seconds={"build": t_built - t0, "solve": time.perf_counter() - t_built})


def reoptimize_day_plan(days: Sequence[TechnicianDay], jobs: Mapping[int, JobRequirements],
                        travel: TravelTimeProvider, options: ReoptimizeOptions) -> ReoptimizedPlan:
    """Propose a new plan for the day (the current one in ``days`` is not changed): ``assign_jobs`` then
    ``sequence_plan``.

    Parameters
    ----------
    days:
        The day's shifts with their current routes; fixed stops never move.
    jobs:
        Requirements of every movable stop in ``days`` and of every unassigned request to try to place.
    travel:
        Minutes between places.

    Returns
    -------
    ReoptimizedPlan
        ``valid`` is False (with ``message``) when a promised visit could not be placed; the caller keeps the
        current plan then.
    """
    return sequence_plan(days, assign_jobs(days, jobs, travel, options), travel, options)


def sequence_plan(days: Sequence[TechnicianDay], stage: AssignmentStage, travel: TravelTimeProvider,
                  options: ReoptimizeOptions) -> ReoptimizedPlan:
    """Steps 3 to 5: build the routes, place the leftovers, relocate, and settle the promised windows.

    With ``try_both_starts`` (the default) the routes are built both ways (moves from the current routes, and
    rebuilt by insertion around the fixed work) and the better valid plan is returned: single moves from the
    current routes keep every promised visit placed but can stall where the rebuilt routes do not.
    """
    if not options.try_both_starts:
        return _sequence_once(days, stage, travel, options)
    plans = [_sequence_once(days, stage, travel, dataclasses.replace(options, rebuild_routes=flag))
             for flag in (False, True)]
    valid = [p for p in plans if p.valid] or plans[:1]
    best = valid[0]
    for other in valid[1:]:
        if is_better(score_plan(other.days, stage.work, travel, options),
                     score_plan(best.days, stage.work, travel, options), 0.0):
            best = other
    best.timings_seconds["sequence"] = sum(p.timings_seconds.get("sequence", 0.0) for p in plans)
    best.timings_seconds["local_search"] = sum(p.timings_seconds.get("local_search", 0.0) for p in plans)
    return best


def _sequence_once(days: Sequence[TechnicianDay], stage: AssignmentStage, travel: TravelTimeProvider,
                   options: ReoptimizeOptions) -> ReoptimizedPlan:
    t_solved = time.perf_counter()
    work, promised, must, problem, result = stage.work, stage.promised, stage.must_serve, stage.problem, stage.result
    eligible: dict[int, list[int]] = {j: sorted({problem.pairs[p].shift for p in idx})
                                      for j, idx in problem.pairs_by_job.items()}
    leftover: list[JobRequirements] = []
    if options.rebuild_routes:
        new_days = [copy_day(d, fixed_only=True) for d in days]
        by_shift: dict[int, list[JobRequirements]] = {}
        for rid, k in result.shift_of_job.items():
            by_shift.setdefault(k, []).append(work[rid])
        leftover += [work[rid] for rid in work if rid not in result.shift_of_job and rid in eligible]
        for k, assigned in by_shift.items():
            leftover += sequence_route(new_days[k], assigned, travel, work, options, must, own=stage.own)
    else:
        new_days, optional = _move_towards(days, stage, travel, options)
        leftover += optional
    # Promised visits first, then by weight: each goes to the cheapest qualified route with room.
    leftover.sort(key=lambda j: (j.request_id not in must, -served_weight(j), j.request_id))
    target = options.assignment.utilisation_target
    unplaced: dict[int, tuple[str, dict[int, list[str]]]] = {}
    for job in leftover:
        placed = False
        # A promised visit that fits nowhere in its promised window may move inside its own (when allowed).
        versions = [job] + ([stage.own[job.request_id]] if stage.own and job.request_id in stage.promised else [])
        for version in versions:
            best: tuple[float, int] | None = None
            for k in eligible.get(job.request_id, []):
                cost = _insertion_cost(new_days[k], version, travel, options, stage.own)
                if cost is None:
                    continue
                if job.request_id not in must and \
                        utilisation(new_days[k], travel, job.duration_minutes + cost) > target:
                    continue
                if best is None or cost < best[0]:
                    best = (cost, k)
            if best is not None and _insert(new_days[best[1]], version, travel, work, options, stage.own) is not None:
                placed = True
                break
        if not placed:
            unplaced[job.request_id] = (
                f"no qualified technician has room inside the customer's window under the {target:.0%} "
                "utilisation target",
                {days[k].technician_id: ["no room in the route inside the customer's window"]
                 for k in eligible.get(job.request_id, [])})
    t_sequenced = time.perf_counter()
    moves = 0
    if options.local_search:
        deadline = t_solved + max(options.time_limit_seconds, 1.0) * 2
        moves = relocate(new_days, work, eligible, travel, options, must, deadline=deadline)
    for rid, why in problem.ineligible.items():
        unplaced[rid] = ("no qualified technician on shift", why)

    windows: dict[int, TimeWindow] = {}
    for d in new_days:
        for s in d.stops:
            if s.fixed:
                continue
            old = promised.get(s.request_id)
            if old is not None and old.start - _EPS <= s.start <= old.end + _EPS:
                s.window = old
            else:
                s.window = promised_window(s.start, s.window, options.arrival_window_minutes,
                                           options.arrival_window_rounding_minutes)
            windows[s.request_id] = s.window
    lost = sorted(must - set(windows))
    # A technician above the utilisation target takes no more work: a plan that puts anyone over the target
    # (or further over it than they already were) is not applied, whichever step put them there.
    overloaded = [d.name for d, before in zip(new_days, days, strict=True)
                  if utilisation(d, travel) > max(target, utilisation(before, travel)) + 1e-9]
    valid = not lost and not overloaded
    message = result.message
    if lost:
        message = (f"{len(lost)} promised visit(s) could not be placed ({', '.join(f'#{r}' for r in lost[:10])}); "
                   "the current plan stays")
    elif overloaded:
        message = (f"the plan would put {', '.join(overloaded[:5])} over the {target:.0%} utilisation target; "
                   "the current plan stays")
    timings = {**stage.timings_seconds, "sequence": t_sequenced - t_solved,
               "local_search": time.perf_counter() - t_sequenced}
    return ReoptimizedPlan(days=new_days, windows=windows,
                           unplaced={r: u for r, u in unplaced.items() if r not in must}, assignment=result,
                           valid=valid, message=message, timings_seconds=timings, moves=moves)


def _move_towards(days: Sequence[TechnicianDay], stage: AssignmentStage, travel: TravelTimeProvider,
                  options: ReoptimizeOptions) -> tuple[list[TechnicianDay], list[JobRequirements]]:
    """Start from the current routes and move each promised visit to the shift the model chose when it fits
    there; put each optional job the model chose into its shift. Returns the routes and the optional jobs
    still to place."""
    new_days = []
    for d in days:
        c = copy_day(d)
        new_days.append(c if retime(c, travel, stage.work, options) else copy_day(d))
    where = {s.request_id: k for k, d in enumerate(new_days) for s in d.stops if not s.fixed}
    target = options.assignment.utilisation_target
    # The moves the model gains most from first: largest weight difference between the two pairs.
    weight = {(p.job, p.shift): p.weight for p in stage.problem.pairs}
    moves = [(weight.get((rid, k), 0.0) - weight.get((rid, where[rid]), 0.0), rid, k)
             for rid, k in stage.result.shift_of_job.items() if rid in where and where[rid] != k]
    for _, rid, k in sorted(moves, reverse=True):
        a = where[rid]
        removed = _remove(new_days[a], rid, travel, stage.work, options)
        if removed is None:
            continue
        trial = copy_day(new_days[k])
        if _insert(trial, stage.work[rid], travel, stage.work, options) is None or \
                utilisation(trial, travel) > target:
            continue
        new_days[a], new_days[k] = removed, trial
        where[rid] = k
    left: list[JobRequirements] = []
    optional = sorted((rid for rid in stage.result.shift_of_job if rid not in where),
                      key=lambda r: -served_weight(stage.work[r]))
    for rid in optional:
        k = stage.result.shift_of_job[rid]
        job = stage.work[rid]
        trial = copy_day(new_days[k])
        if _insert(trial, job, travel, stage.work, options) is not None and utilisation(trial, travel) <= target:
            new_days[k] = trial
        else:
            left.append(job)
    left += [stage.work[rid] for rid in stage.work if rid not in where and rid not in stage.result.shift_of_job
             and rid in stage.problem.pairs_by_job]
    return new_days, left


def sequence_route(day: TechnicianDay, assigned: Sequence[JobRequirements], travel: TravelTimeProvider,
                   jobs: Mapping[int, JobRequirements], options: ReoptimizeOptions,
                   must: frozenset[int] = frozenset(), *,
                   own: Mapping[int, JobRequirements] | None = None) -> list[JobRequirements]:
    """Build ``day``'s route (in place) by repeated cheapest feasible insertion; returns the jobs left out.

    Promised visits go in before optional ones; within a group the job whose cheapest insertion costs least
    goes first (emergencies are placed as early as possible by ``best_insertion``).
    """
    left: list[JobRequirements] = []
    for group in ([j for j in assigned if j.request_id in must], [j for j in assigned if j.request_id not in must]):
        remaining = list(group)
        while remaining:
            costs = [(_insertion_cost(day, j, travel, options, own), j.request_id, j) for j in remaining]
            feasible = [(c, rid, j) for c, rid, j in costs if c is not None]
            if not feasible:
                left += remaining
                break
            _, _, job = min(feasible, key=lambda t: (t[0], t[1]))
            remaining.remove(job)
            if _insert(day, job, travel, jobs, options, own) is None:
                left.append(job)
    return left


def _remove(day: TechnicianDay, rid: int, travel: TravelTimeProvider, jobs: Mapping[int, JobRequirements],
            options: ReoptimizeOptions) -> TechnicianDay | None:
    trial = copy_day(day)
    trial.stops = [s for s in trial.stops if s.request_id != rid]
    return trial if retime(trial, travel, jobs, options) else None


def relocate(days: list[TechnicianDay], jobs: Mapping[int, JobRequirements], eligible: Mapping[int, Sequence[int]],
             travel: TravelTimeProvider, options: ReoptimizeOptions, must: frozenset[int] = frozenset(), *,
             deadline: float | None = None) -> int:
    """Move single jobs between (and within) routes while that gains more than ``min_gain``; in place.

    Gain = travel cost saved + upsell gained (value x the multiplier difference). A move to another
    technician keeps them under the utilisation target. Returns the number of moves.
    """
    cost = options.assignment.travel_cost_per_minute
    target = options.assignment.utilisation_target
    moves = 0
    for _ in range(options.max_local_search_passes):
        improved = False
        for a in range(len(days)):
            for stop in [s for s in days[a].stops if not s.fixed]:
                if deadline is not None and time.perf_counter() > deadline:
                    return moves
                job = jobs[stop.request_id]
                if not any(s.request_id == job.request_id for s in days[a].stops):
                    continue
                removed = _remove(days[a], job.request_id, travel, jobs, options)
                if removed is None:
                    continue
                saving = route_travel_minutes(days[a], travel) - route_travel_minutes(removed, travel)
                best: tuple[float, int] | None = None
                for b in eligible.get(job.request_id, []):
                    base = removed if b == a else days[b]
                    added = _insertion_cost(base, job, travel, options)
                    if added is None:
                        continue
                    if b != a and utilisation(base, travel, job.duration_minutes + added) > target:
                        continue
                    upsell = job.estimated_value * (days[b].upsell_multiplier - days[a].upsell_multiplier)
                    gain = cost * (saving - added) + upsell
                    if gain > options.min_gain and (best is None or gain > best[0]):
                        best = (gain, b)
                if best is None:
                    continue
                b = best[1]
                target_day = copy_day(removed if b == a else days[b])
                if _insert(target_day, job, travel, jobs, options) is None:
                    continue
                if b == a:
                    days[a] = target_day
                else:
                    days[a], days[b] = removed, target_day
                moves += 1
                improved = True
        if not improved:
            break
    return moves


# ------------------------------------------------------------------------------------------ judging plans


def score_plan(days: Sequence[TechnicianDay], jobs: Mapping[int, JobRequirements], travel: TravelTimeProvider,
               options: ReoptimizeOptions) -> PlanScore:
    """The plan's value served, travel, upsell and busiest utilisation (fixed stops count for both plans)."""
    weight = upsell = revenue = 0.0
    n = 0
    total_travel = 0.0
    util = 0.0
    for d in days:
        total_travel += route_travel_minutes(d, travel)
        util = max(util, utilisation(d, travel))
        for s in d.stops:
            n += 1
            job = jobs.get(s.request_id)
            if job is None:
                continue
            weight += served_weight(job)
            upsell += job.estimated_value * (d.upsell_multiplier - 1.0)
            revenue += job.estimated_value
    net = upsell - options.assignment.travel_cost_per_minute * total_travel
    return PlanScore(served_weight=weight, travel_minutes=total_travel, upsell=upsell, net=net,
                     max_utilisation=util, jobs=n, revenue=revenue)


def is_better(new: PlanScore, old: PlanScore, min_gain: float = 1.0) -> bool:
    """Strictly better: more value served; or as much and ``min_gain`` more net of travel; or as much of both
    and a busiest technician at least one point of utilisation less busy."""
    if abs(new.served_weight - old.served_weight) > 1e-6:
        return new.served_weight > old.served_weight
    if abs(new.net - old.net) > min_gain:
        return new.net > old.net
    if abs(new.net - old.net) > 1e-6 and new.net < old.net:
        return False
    return new.max_utilisation < old.max_utilisation - 0.01


def changed_windows(days: Sequence[TechnicianDay], plan: ReoptimizedPlan) -> dict[int, tuple[TimeWindow, TimeWindow]]:
    """request id -> (old promised window, new one) for every customer whose window changed."""
    old = {s.request_id: s.window for d in days for s in d.stops if not s.fixed}
    return {rid: (old[rid], w) for rid, w in plan.windows.items()
            if rid in old and (old[rid].start != w.start or old[rid].end != w.end)}
