"""Re-optimisation over a horizon of several days: PyVRP proposes routes, a set-partitioning model chooses.

The plan of the horizon (every shift of today and the next working days) is re-made in four steps, on plain
data:

1. Pinned work stays: fixed stops (locked, in progress, completed) keep their technician and time; stops the
   caller pins keep their technician and window. A shift's *skeleton* is its pinned work. A pinned stop that
   cannot be kept (its technician is absent at that time) is reported by name in ``conflicts`` and left
   exactly where it is, never dropped. Promised stops (the customer was told a window) keep that window but
   may change technician, as the dispatch's bounded repair moves them (``engine.dispatch.repair``), and the
   caller tells the customer who comes; with ``allow_window_changes`` they move inside the customer's own
   windows and are re-promised.
2. Columns: candidate routes for each shift, every one built around the shift's skeleton with the engine's
   own insertion and checked against its rules (eligibility, windows, availability, the utilisation target).
   - the current route (the warm start: the model can always keep the current plan);
   - the skeleton alone (so that any combination of the others stays feasible);
   - the current route plus the horizon's unassigned requests inserted greedily (a rescue plan);
   - PyVRP's routes (``pyvrp_routes``) for each day of the horizon: the day's shifts as vehicles from their
     homes, the movable work whose windows touch the day as prize-collecting jobs (the day's assigned work
     required), starting from the current routes. Work PyVRP placed on an earlier day is not offered again,
     so each day's routes together form one plan; movable work the proposal left out is put back by
     insertion, and a shift whose assigned work is still missing goes back to its current route, so the
     PyVRP plan is always complete. Unpromised work thus moves between days inside the customers' windows;
   - optionally the routes of the single-day assignment model (engine.reoptimize.day) for each day.
3. Choice: a Pyomo set-partitioning model solved by CBC (engine.cbc): one column per shift, each job at most
   once and every job already assigned exactly once; maximise value served (x ``VALUE_SCALE``) and upsell,
   minus travel cost and a small price per moved job, minus a weight on the busiest technician's
   utilisation. The current plan is passed as CBC's first incumbent, so the choice is never worse than it
   under that objective.
4. Windows: a visit keeps the window it had when its new start is inside it; otherwise it gets a new window
   inside the customer's own one (``promised_window``); the caller notifies who changed.

The caller compares the result with the current plan (``engine.reoptimize.day.is_better``) and applies it only
when it is strictly better.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from engine import cbc
from engine.dispatch.eligibility import ineligibility_reasons
from engine.dispatch.insertion import best_insertion, promised_window, route_travel_minutes, utilisation
from engine.reoptimize.day import (
    ReoptimizedPlan,
    ReoptimizeOptions,
    _insert,
    copy_day,
    reoptimize_day_plan,
    retime,
)
from engine.reoptimize.model import VALUE_SCALE, AssignmentResult, served_weight
from engine.travel import TravelTimeProvider
from models.domain import JobRequirements, Stop, TechnicianDay, TimeWindow

logger = logging.getLogger(__name__)

_EPS = timedelta(seconds=1)


@dataclass(frozen=True)
class HorizonOptions:
    """How the horizon is re-optimised (``base`` carries the rules shared with the single-day engine)."""

    base: ReoptimizeOptions = ReoptimizeOptions()
    # Share of ``base.time_limit_seconds`` given to PyVRP (split over the days), leaving the set partitioning
    # at least ``cbc_seconds`` or half the budget, whichever is less (``search_seconds``); CBC also gets what
    # PyVRP leaves when it stops early. The set partitioning took 0.5-4 s on the measured days
    # (docs/benchmarks.md).
    search_share: float = 0.75
    cbc_seconds: float = 5.0
    seed: int = 0
    # Also offer the routes of the single-day assignment model (engine.reoptimize.day) as columns.
    assignment_columns: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.search_share < 1:
            raise ValueError(f"search_share must be in (0, 1) (got {self.search_share})")
        if self.cbc_seconds < 0:
            raise ValueError(f"cbc_seconds must be >= 0 (got {self.cbc_seconds})")

    def search_seconds(self) -> float:
        """PyVRP's budget: ``search_share`` of the whole, but never eating into CBC's reserve."""
        total = self.base.time_limit_seconds
        return min(total * self.search_share, total - min(total / 2, self.cbc_seconds))


@dataclass
class Column:
    """One candidate route for one shift."""

    shift: int
    day: TechnicianDay
    source: str
    jobs: frozenset[int] = frozenset()  # movable jobs served
    weight: float = 0.0  # the objective's coefficient (without the balance term)
    utilisation: float = 0.0


@dataclass
class HorizonPlan(ReoptimizedPlan):
    """The proposed plan of the horizon; ``conflicts`` names every pinned stop that cannot be kept."""

    conflicts: list[str] = field(default_factory=list)
    columns: dict[str, int] = field(default_factory=dict)  # source -> columns offered


# ------------------------------------------------------------------------------------------ helpers


def _own_window(job: JobRequirements | None, start: datetime, fallback: TimeWindow) -> TimeWindow:
    for w in (job.windows if job else []):
        if w.start - _EPS <= start <= w.end + _EPS:
            return w
    return fallback


def pinned_conflicts(days: Sequence[TechnicianDay]) -> list[str]:
    """Every pinned stop (fixed, or kept by the caller) its technician cannot keep, in words.

    A stop is not kept when it starts outside the technician's availability (an absence cuts the shift).
    """
    out = []
    for d in days:
        if d.available is None:
            continue
        for s in d.stops:
            if not any(w.start - _EPS <= s.start and s.end <= w.end + _EPS for w in d.available):
                out.append(f"request #{s.request_id} is pinned to {d.name} at {s.start:%Y-%m-%d %H:%M} but "
                           f"{d.name} is not available then (absence or shift change); it stays where it is "
                           "until a dispatcher moves it")
    return out


def _skeleton(day: TechnicianDay, pinned: frozenset[int]) -> TechnicianDay:
    d = copy_day(day)
    d.stops = [s for s in d.stops if s.fixed or s.request_id in pinned]
    return d


def _fits(day: TechnicianDay, job: JobRequirements, travel: TravelTimeProvider, work: Mapping[int, JobRequirements],
          options: ReoptimizeOptions, target: float) -> TechnicianDay | None:
    """``day`` with ``job`` inserted at its cheapest feasible place under the utilisation target, or None."""
    trial = copy_day(day)
    if _insert(trial, job, travel, work, options) is None:
        return None
    if utilisation(trial, travel) > target + 1e-9:
        return None
    return trial


def _cheapest_fit(proposal: Sequence[TechnicianDay], job: JobRequirements, shifts: Sequence[int],
                  travel: TravelTimeProvider, work: Mapping[int, JobRequirements], options: ReoptimizeOptions,
                  target: float, *, skip: int | None = None) -> tuple[float, int, TechnicianDay] | None:
    """(added travel, shift index, route with ``job``) of the cheapest feasible insertion over ``shifts``
    (``skip`` left out), or None."""
    best: tuple[float, int, TechnicianDay] | None = None
    for k in shifts:
        if k == skip:
            continue
        trial = _fits(proposal[k], job, travel, work, options, target)
        if trial is None:
            continue
        added = route_travel_minutes(trial, travel) - route_travel_minutes(proposal[k], travel)
        if best is None or added < best[0]:
            best = (added, k, trial)
    return best


def _place_with_one_move(proposal: list[TechnicianDay], rid: int, eligible: Mapping[int, Sequence[int]],
                         movable: frozenset[int], travel: TravelTimeProvider, work: Mapping[int, JobRequirements],
                         options: ReoptimizeOptions, target: float, *, shifts_tried: int = 8) -> bool:
    """Place ``rid`` on one of the ``shifts_tried`` eligible shifts nearest to it by moving one of that
    route's ``movable`` visits to another shift where it fits (cheapest pair first); ``proposal`` changes in
    place. False when no single move makes room."""
    job = work[rid]
    nearest = sorted(eligible.get(rid, []), key=lambda k: travel.minutes(proposal[k].home, job.location))
    best: tuple[float, int, TechnicianDay, int, TechnicianDay] | None = None
    for k in nearest[:shifts_tried]:
        route = proposal[k]
        before_k = route_travel_minutes(route, travel)
        for st in sorted((st for st in route.stops if st.request_id in movable and not st.fixed),
                         key=lambda st: travel.minutes(st.location, job.location)):
            lighter = copy_day(route)
            lighter.stops = [x for x in lighter.stops if x.request_id != st.request_id]
            if not retime(lighter, travel, work, options):
                continue
            taken = _fits(lighter, job, travel, work, options, target)
            if taken is None:
                continue
            fit = _cheapest_fit(proposal, work[st.request_id], eligible.get(st.request_id, []), travel, work,
                                options, target, skip=k)
            if fit is None:
                continue
            added = route_travel_minutes(taken, travel) - before_k + fit[0]
            if best is None or added < best[0]:
                best = (added, k, taken, fit[1], fit[2])
        if best is not None:
            break
    if best is None:
        return False
    _, k, taken, j, moved = best
    proposal[k], proposal[j] = taken, moved
    return True


def _route_in_order(day: TechnicianDay, order: Sequence[JobRequirements], travel: TravelTimeProvider,
                    work: Mapping[int, JobRequirements], options: ReoptimizeOptions,
                    target: float) -> TechnicianDay | None:
    """``day`` (no pinned stops, no absence) with ``order`` visited in that order, each as early as its
    windows allow; None when that breaks a window, the shift or the utilisation target."""
    trial = copy_day(day)
    here, t = day.home, day.shift_start
    for job in order:
        arrival = t + timedelta(minutes=travel.minutes(here, job.location, t))
        w = next((w for w in job.windows if w.end >= arrival), None)
        if w is None:
            return None
        start = max(arrival, w.start)
        end = start + timedelta(minutes=job.duration_minutes)
        trial.stops.append(Stop(request_id=job.request_id, location=job.location, start=start, end=end, window=w,
                                priority=job.priority))
        here, t = job.location, end
    if not retime(trial, travel, work, options) or utilisation(trial, travel) > target + 1e-9:
        return None
    return trial


# ------------------------------------------------------------------------------------------ PyVRP columns


def _tokens_of_technician(day: TechnicianDay) -> frozenset[str]:
    tokens = {f"{s}>={lvl}" for s, top in day.skills.items() for lvl in range(1, top + 1)}
    tokens |= {f"cert:{c}" for c, expiry in day.certifications.items() if expiry >= day.shift_start.date()}
    return frozenset(tokens)


def _tokens_of_job(job: JobRequirements) -> frozenset[str]:
    return frozenset({f"{s}>={max(lvl, 1)}" for s, lvl in job.required_skills.items()}
                     | {f"cert:{c}" for c in job.required_certifications})


# Integer ticks per minute in the PyVRP model; durations round up, windows inwards.
SCALE = 10
# A job of median weight is worth this many minutes of driving to PyVRP (at most 5 times more for the most
# valuable): enough to serve rather than drive, small enough that PyVRP's penalties keep routes feasible.
PRIZE_MINUTES = 240.0


def pyvrp_routes(days: Sequence[TechnicianDay], shifts: Sequence[int], jobs: Sequence[JobRequirements],
                 travel: TravelTimeProvider, *, pinned_minutes: Mapping[int, float], target: float,
                 weight: Mapping[int, float], time_limit_seconds: float, seed: int = 0,
                 keep: frozenset[int] = frozenset(),
                 start_from: Mapping[int, Sequence[tuple[int, datetime]]] | None = None) -> dict[int, list[int]]:
    """PyVRP's prize-collecting proposal for one day: shift index -> request ids in route order.

    Each shift is a vehicle from its home, working at most the time the utilisation target leaves after its
    pinned work; skills with their levels and valid certifications are capabilities (a job is unreachable
    in the travel profile of a technician without them); each job's windows on the day are its time windows
    (several windows: a client group of copies); ``weight`` sets its prize; work to ``keep`` (already
    assigned to a shift of this day) is required. Absences at either end of a shift shorten it, and the target
    applies to the shift minus absences. The remaining rules (territories, an absence in the middle of a shift,
    the exact pinned times) are checked when the proposal becomes columns.

    The utilisation target is PyVRP's ``max_distance``: the "distance" of a leg is its travel plus the
    service at its end (so it counts work and travel as ``engine.dispatch.insertion.utilisation`` does, not waiting),
    and each prize is raised by the job's service so that the objective stays travel minus prizes.
    ``start_from`` (shift index -> (request id, start) of its current movable visits) is PyVRP's initial
    solution, so the search starts from the current plan.

    The model is built here rather than through engine.routing.solve because it needs per-vehicle working
    time and moderate prizes; it is a column generator, not the plan.
    """
    import math
    import warnings

    import numpy as np
    import pyvrp
    from pyvrp.exceptions import PenaltyBoundWarning
    from pyvrp.stop import MaxRuntime, MultipleCriteria, NoImprovement

    if not shifts or not jobs:
        return {}
    origin = min(days[k].shift_start for k in shifts)

    def tick(t: datetime) -> float:
        return (t - origin).total_seconds() / 60.0 * SCALE

    lo = min(tick(days[k].shift_start) for k in shifts)
    hi = max(tick(days[k].shift_end) for k in shifts)
    weights = sorted(weight.get(j.request_id, 1.0) for j in jobs)
    median = max(weights[len(weights) // 2], 1e-6)
    clients: list[pyvrp.Client] = []
    client_job: list[int] = []
    client_loc: list[int] = []
    groups: list[pyvrp.ClientGroup] = []
    n_depots = len(shifts)
    for n, j in enumerate(jobs):
        spans = [(max(math.ceil(tick(w.start)), lo), min(math.floor(tick(w.end)), hi)) for w in j.windows]
        spans = [(a, b) for a, b in spans if b >= a]
        if not spans:
            continue
        service = int(math.ceil(j.duration_minutes * SCALE))
        ratio = min(weight.get(j.request_id, 1.0) / median, 5.0)
        prize = int(PRIZE_MINUTES * SCALE * ratio) + service
        required = j.request_id in keep
        group = None
        if len(spans) > 1:
            group = len(groups)
            groups.append(pyvrp.ClientGroup(required=required))
        for a, b in spans:
            if group is not None:
                groups[group].add_client(len(clients))
            clients.append(pyvrp.Client(location=n_depots + len(clients), service_duration=service,
                                        tw_early=int(a - lo), tw_late=int(b - lo), prize=prize,
                                        required=required and group is None,
                                        group=group, name=str(j.request_id)))
            client_job.append(j.request_id)
            client_loc.append(n)
    if not clients:
        return {}
    homes = [days[k].home for k in shifts]
    places = homes + [j.location for j in jobs]
    base = np.array([[travel.minutes(a, b) for b in places] for a in places], dtype=float)
    nodes = list(range(n_depots)) + [n_depots + c for c in client_loc]
    mat = np.ceil(base[np.ix_(nodes, nodes)] * SCALE).astype(np.int64)
    service_at = np.array([0] * n_depots + [c.service_duration for c in clients], dtype=np.int64)
    dist = mat + service_at[None, :]
    np.fill_diagonal(dist, 0)
    unreachable = int(4 * (hi - lo) + 1)
    profile_of: dict[frozenset[str], int] = {}
    mats: list[np.ndarray] = []
    dmats: list[np.ndarray] = []
    job_tokens = {j.request_id: _tokens_of_job(j) for j in jobs}
    # The current visits of each shift, as copies of the clients (PyVRP's initial solution).
    current_visits: dict[int, list[int]] = {}
    if start_from:
        copies: dict[int, list[int]] = {}
        for c, rid in enumerate(client_job):
            copies.setdefault(rid, []).append(c)
        for i, k in enumerate(shifts):
            for rid, start in start_from.get(k, ()):
                t = tick(start) - lo
                for c in copies.get(rid, []):
                    if clients[c].tw_early <= t <= clients[c].tw_late:
                        current_visits.setdefault(i, []).append(c)
                        break
    vehicle_types = []
    for i, k in enumerate(shifts):
        d = days[k]
        tokens = _tokens_of_technician(d)
        if tokens not in profile_of:
            banned = [n_depots + c for c, rid in enumerate(client_job) if not job_tokens[rid] <= tokens]
            m, dm = mat.copy(), dist.copy()
            if banned:
                for x in (m, dm):
                    x[:, banned] = unreachable
                    x[banned, :] = unreachable
                    np.fill_diagonal(x, 0)
            profile_of[tokens] = len(mats)
            mats.append(m)
            dmats.append(dm)
        # Absences at either end of the shift narrow it; the target applies to the time left (the shift minus
        # absences, as engine.dispatch.insertion.utilisation measures it). An absence in the middle of the shift
        # is the columns' check's.
        available = d.available if d.available is not None else [TimeWindow(d.shift_start, d.shift_end)]
        first = min((a.start for a in available), default=d.shift_start)
        last = max((a.end for a in available), default=d.shift_start)
        work = max(d.available_minutes * target - pinned_minutes.get(k, 0.0), 0.0)
        # Each leg's travel and service round up to the tick, so a current route the exact check finds at the
        # target can be a few ticks over it in PyVRP's integers: PyVRP could not keep its required visits
        # feasible. The limit is at least the current route's own rounded length.
        path = [i] + [n_depots + c for c in current_visits.get(i, [])] + [i]
        legs = [int(dmats[profile_of[tokens]][a, b]) for a, b in zip(path, path[1:], strict=False)]
        current_length = sum(legs) if all(leg < unreachable for leg in legs) else 0
        vehicle_types.append(pyvrp.VehicleType(
            num_available=1, start_depot=i, end_depot=i, tw_early=int(math.ceil(tick(first) - lo)),
            tw_late=int(max(math.floor(tick(last) - lo), math.ceil(tick(first) - lo))),
            max_distance=max(int(work * SCALE), current_length),
            profile=profile_of[tokens], name=str(k)))
    depots = [pyvrp.Depot(location=i) for i in range(n_depots)]
    locations = [pyvrp.Location(x=0, y=0) for _ in nodes]
    data = pyvrp.ProblemData(locations, clients, depots, vehicle_types, dmats, mats, groups)  # type: ignore[arg-type]
    initial = None
    routes = [pyvrp.Route(data, visits, i) for i, visits in sorted(current_visits.items())]
    if routes:
        initial = pyvrp.Solution(data, routes)
    stop = MultipleCriteria([MaxRuntime(max(time_limit_seconds, 0.1)), NoImprovement(5_000)])
    with warnings.catch_warnings():
        # With most visits required and the routes near the target, most of PyVRP's trial moves are infeasible
        # and its penalties climb to their bound (PenaltyBoundWarning, "check the instance") even when the
        # solution it keeps is feasible; what matters is that solution, said below when it is not.
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        result = pyvrp.solve(data, stop, seed=seed, collect_stats=False, initial_solution=initial)
    if not result.best.is_feasible():
        logger.info("PyVRP's proposal for %s is infeasible (working time %d ticks over, time warp %d ticks): its "
                    "routes are cut to what fits", days[shifts[0]].shift_start.date(), result.best.excess_distance(),
                    result.best.time_warp())
    out: dict[int, list[int]] = {}
    for route in result.best.routes():
        visits = [client_job[a.idx] for a in route.schedule() if a.is_client()]
        if visits:
            out[shifts[route.vehicle_type()]] = visits
    return out


# ------------------------------------------------------------------------------------------ the model


def choose_columns(columns: Sequence[Column], n_shifts: int, must_serve: frozenset[int], *, balance_weight: float,
                   time_limit_seconds: float, mip_gap: float, executable: str) -> tuple[list[int], str]:
    """The set-partitioning choice: one column per shift, each job at most once (``must_serve`` exactly
    once). The current routes (source ``current``) are CBC's first incumbent.

    Returns
    -------
    (chosen column indexes, CBC status)

    Raises
    ------
    engine.cbc.CbcError
        If CBC is missing, fails, or stops without a solution.
    """
    import pyomo.environ as pyo

    by_shift: dict[int, list[int]] = {}
    by_job: dict[int, list[int]] = {}
    for c, col in enumerate(columns):
        by_shift.setdefault(col.shift, []).append(c)
        for j in col.jobs:
            by_job.setdefault(j, []).append(c)
    m = pyo.ConcreteModel(name="reoptimise_horizon")
    m.C = pyo.RangeSet(0, len(columns) - 1)
    m.x = pyo.Var(m.C, domain=pyo.Binary)
    m.u_max = pyo.Var(bounds=(0, None))
    m.K = pyo.Set(initialize=sorted(by_shift))
    m.J = pyo.Set(initialize=sorted(by_job))
    m.one_route = pyo.Constraint(m.K, rule=lambda m, k: sum(m.x[c] for c in by_shift[k]) == 1)

    def once(m: pyo.ConcreteModel, j: int) -> object:
        total = sum(m.x[c] for c in by_job[j])
        return total == 1 if j in must_serve else total <= 1

    m.once = pyo.Constraint(m.J, rule=once)
    m.balance = pyo.Constraint(m.K, rule=lambda m, k: m.u_max >= sum(columns[c].utilisation * m.x[c]
                                                                     for c in by_shift[k]))
    m.objective = pyo.Objective(expr=sum(columns[c].weight * m.x[c] for c in m.C) - balance_weight * m.u_max,
                                sense=pyo.maximize)
    for c in m.C:
        m.x[c].value = 1.0 if columns[c].source == "current" else 0.0
    m.u_max.value = max((col.utilisation for col in columns if col.source == "current"), default=0.0)
    status = cbc.solve(m, executable=executable, time_limit_seconds=time_limit_seconds, mip_gap=mip_gap,
                       warmstart=True)
    chosen = [c for c in m.C if m.x[c].value is not None and m.x[c].value > 0.5]
    return chosen, status


# ------------------------------------------------------------------------------------------ the plan


def reoptimize_horizon(days: Sequence[TechnicianDay], jobs: Mapping[int, JobRequirements],
                       travel: TravelTimeProvider, options: HorizonOptions, *,
                       pinned: frozenset[int] = frozenset(),
                       promised: frozenset[int] = frozenset()) -> HorizonPlan:
    """Propose a new plan for the horizon's shifts (``days`` is not changed).

    Parameters
    ----------
    days:
        Every shift of the horizon with its current route.
    jobs:
        The customers' own requirements (their own windows) of every non-fixed stop in ``days`` and of every
        unassigned request to try to place.
    pinned:
        Requests whose visit keeps its technician and window; fixed stops are pinned whatever this says.
    promised:
        Requests whose customer was told the visit's window: the visit keeps that window (unless
        ``options.base.allow_window_changes``) but may go to another technician.
    """
    started = time.perf_counter()
    base = options.base
    target = base.assignment.utilisation_target
    cost = base.assignment.travel_cost_per_minute
    pinned = pinned | {s.request_id for d in days for s in d.stops if s.fixed}
    current_shift = {s.request_id: k for k, d in enumerate(days) for s in d.stops}
    window_now = {s.request_id: s.window for d in days for s in d.stops if not s.fixed}
    must = frozenset(rid for rid in current_shift if rid not in pinned)
    # The work the model may move, with the windows it must start in: a promise is the window told.
    keep_window = pinned | (frozenset() if base.allow_window_changes else promised)
    work: dict[int, JobRequirements] = {}
    for rid, job in jobs.items():
        if rid in pinned and rid not in window_now:
            continue  # fixed work
        work[rid] = (dataclasses.replace(job, windows=[window_now[rid]]) if rid in keep_window and rid in window_now
                     else job)
    candidates = sorted((rid for rid in work if rid not in current_shift),
                        key=lambda r: (-served_weight(work[r]), r))
    conflicts = pinned_conflicts([_skeleton(d, pinned) for d in days])
    eligible: dict[int, list[int]] = {}
    why_not: dict[int, dict[int, list[str]]] = {}
    for rid, job in work.items():
        if rid in pinned:
            continue
        for k, d in enumerate(days):
            reasons = ineligibility_reasons(d, job, parts_policy=base.assignment.parts_policy)
            if reasons:
                why_not.setdefault(rid, {}).setdefault(d.technician_id, reasons)
            else:
                eligible.setdefault(rid, []).append(k)

    # The current routes, with movable visits free to move inside the windows they may start in.
    current: list[TechnicianDay] = []
    for d in days:
        c = copy_day(d)
        for s in c.stops:
            if not s.fixed and s.request_id not in pinned:
                s.window = _own_window(work.get(s.request_id), s.start, s.window)
        current.append(c)
    skeletons = [_skeleton(c, pinned) for c in current]
    columns: list[Column] = []
    seen: dict[tuple[int, tuple[tuple[int, datetime], ...]], int] = {}
    # source -> shift -> column: each source is one whole plan (a column shared by sources is stored once)
    plans: dict[str, dict[int, int]] = {}

    def add(k: int, day: TechnicianDay, source: str) -> None:
        key = (k, tuple((s.request_id, s.start) for s in day.stops))
        if key in seen:
            plans.setdefault(source, {})[k] = seen[key]
            return
        seen[key] = len(columns)
        plans.setdefault(source, {})[k] = len(columns)
        movable = frozenset(s.request_id for s in day.stops if not s.fixed and s.request_id not in pinned)
        w = sum(VALUE_SCALE * served_weight(work[j]) + max(work[j].estimated_value, 0.0)
                * (day.upsell_multiplier - 1.0) for j in movable)
        w -= cost * route_travel_minutes(day, travel)
        w -= base.assignment.change_penalty * sum(1 for j in movable if current_shift.get(j, k) != k)
        columns.append(Column(shift=k, day=day, source=source, jobs=movable, weight=w,
                              utilisation=utilisation(day, travel)))

    for k, cur in enumerate(current):
        add(k, cur, "current")
    for k, sk in enumerate(skeletons):
        add(k, sk, "skeleton")
    t_current = time.perf_counter()

    # The rescue plan: the current routes plus the unassigned requests, greedily.
    rescue = [copy_day(c) for c in current]
    for rid in candidates:
        best: tuple[float, int, TechnicianDay] | None = None
        for k in eligible.get(rid, []):
            ins = best_insertion(rescue[k], work[rid], travel)
            if ins is None or (best is not None and ins.added_travel_minutes >= best[0]):
                continue
            trial = _fits(rescue[k], work[rid], travel, work, base, target)
            if trial is not None:
                best = (ins.added_travel_minutes, k, trial)
        if best is not None:
            rescue[best[1]] = best[2]
    for k, r in enumerate(rescue):
        add(k, r, "rescue")
    t_rescue = time.perf_counter()

    # PyVRP's plan, day by day: the movable work of the day's windows, minus what earlier days took.
    by_date: dict[date, list[int]] = {}
    for k, d in enumerate(days):
        by_date.setdefault(d.shift_start.date(), []).append(k)
    search_budget = options.search_seconds()
    proposal = [copy_day(s) for s in skeletons]
    taken: set[int] = set()
    pinned_minutes = {k: sum(st.duration_minutes + st.travel_minutes for st in s.stops)
                      for k, s in enumerate(skeletons)}
    weight = {rid: served_weight(work[rid]) for rid in work}
    notes: list[str] = []
    for n, (_, shifts) in enumerate(sorted(by_date.items())):
        offered = [work[rid] for rid in sorted(work) if rid not in pinned and rid not in taken
                   and any(k in shifts for k in eligible.get(rid, []))]
        left = max(search_budget - (time.perf_counter() - t_rescue), 0.2)
        try:
            offered_ids = {j.request_id for j in offered}
            start_from = {k: [(st.request_id, st.start) for st in current[k].stops if st.request_id in offered_ids]
                          for k in shifts}
            routes = pyvrp_routes(days, shifts, offered, travel, pinned_minutes=pinned_minutes, target=target,
                                  weight=weight, time_limit_seconds=left / (len(by_date) - n), seed=options.seed,
                                  keep=frozenset(r for r in must if current_shift[r] in shifts),
                                  start_from=start_from)
        except Exception as exc:  # the proposal is optional: the current and rescue plans remain
            logger.warning("PyVRP proposal for %s failed: %s", days[shifts[0]].shift_start.date(), exc)
            notes.append(f"PyVRP failed on {days[shifts[0]].shift_start.date()}: {exc}")
            routes = {}
        for k, order in routes.items():
            usable = [work[rid] for rid in order if rid not in taken and k in eligible.get(rid, [])]
            simple = not proposal[k].stops and proposal[k].available in (None, [
                TimeWindow(proposal[k].shift_start, proposal[k].shift_end)])
            whole = _route_in_order(proposal[k], usable, travel, work, base, target) if simple else None
            if whole is not None:
                proposal[k] = whole
                taken.update(j.request_id for j in usable)
                continue
            for j in usable:
                trial = _fits(proposal[k], j, travel, work, base, target)
                if trial is not None:
                    proposal[k] = trial
                    taken.add(j.request_id)
    # What the proposal left out: promised-to-be-served work first, then the rest by weight.
    for rid in sorted((r for r in work if r not in pinned and r not in taken),
                      key=lambda r: (r not in must, -served_weight(work[r]), r)):
        best2 = _cheapest_fit(proposal, work[rid], eligible.get(rid, []), travel, work, base, target)
        if best2 is None and rid in must:
            # Work already assigned comes back before rescued requests: evict the least valuable rescued
            # ones of a route (up to three) until it fits.
            for k in eligible.get(rid, []):
                without = copy_day(proposal[k])
                lost_weight = 0.0
                evictable = sorted((st.request_id for st in without.stops if st.request_id not in must
                                    and st.request_id not in pinned and not st.fixed),
                                   key=lambda r: served_weight(work[r]))[:3]
                for ev in evictable:
                    without.stops = [st for st in without.stops if st.request_id != ev]
                    lost_weight += served_weight(work[ev])
                    if not retime(without, travel, work, base):
                        break
                    trial = _fits(without, work[rid], travel, work, base, target)
                    if trial is not None:
                        if best2 is None or lost_weight < best2[0]:
                            best2 = (lost_weight, k, trial)
                        break
            if best2 is not None:
                taken -= {st.request_id for st in proposal[best2[1]].stops} - {
                    st.request_id for st in best2[2].stops}
        if best2 is not None:
            proposal[best2[1]] = best2[2]
            taken.add(rid)
    # Assigned work still missing: its shift goes back to its current route, less what the proposal serves
    # elsewhere (a subset of a feasible route stays feasible). Before that, a missing request is placed by moving
    # one visit of a nearby route elsewhere when that makes room. Assigned work that a shift going back
    # displaces is put back by insertion (or one move) where it fits, and only otherwise sends its own shift
    # back too, so one request the proposal could not place costs a few shifts, not the whole proposal; at
    # worst the proposal becomes the current plan.
    missing = sorted(must - {st.request_id for p in proposal for st in p.stops})
    movable_work = frozenset(r for r in work if r not in pinned)
    missing = [rid for rid in missing if not _place_with_one_move(proposal, rid, eligible, movable_work, travel, work,
                                                                  base, target)]
    reverted = 0
    for _ in range(2 * len(days)):
        if not missing:
            break
        k = current_shift[missing.pop()]
        elsewhere = {st.request_id for j, p in enumerate(proposal) if j != k for st in p.stops}
        back = copy_day(current[k])
        back.stops = [st for st in back.stops if st.request_id not in elsewhere]
        if not retime(back, travel, work, base):
            back = copy_day(current[k])
            back.stops = [st for st in current[k].stops if st.request_id not in elsewhere]
            for st in back.stops:  # keep the current times: removing visits never breaks a route
                st.window = _own_window(work.get(st.request_id), st.start, st.window) \
                    if st.request_id not in pinned and not st.fixed else st.window
        displaced = {st.request_id for st in proposal[k].stops} - {st.request_id for st in back.stops}
        proposal[k] = back
        reverted += 1
        for rid in sorted(displaced & must, key=lambda r: (-served_weight(work[r]), r)):
            best3 = _cheapest_fit(proposal, work[rid], eligible.get(rid, []), travel, work, base, target)
            if best3 is not None:
                proposal[best3[1]] = best3[2]
            elif not _place_with_one_move(proposal, rid, eligible, movable_work, travel, work, base, target):
                missing.append(rid)
        served_now = {st.request_id for p in proposal for st in p.stops}
        missing = sorted(set(missing) - served_now)
    if reverted:
        logger.info("PyVRP proposal: %d shifts went back to their current routes, %d assigned requests still "
                    "missing", reverted, len(missing))
    for k, p in enumerate(proposal):
        add(k, p, "pyvrp")
    t_search = time.perf_counter()

    if options.assignment_columns:
        for _, shifts in sorted(by_date.items()):
            sub = [current[k] for k in shifts]
            sub_jobs = {rid: work[rid] for rid in work if rid not in pinned
                        and any(k in shifts for k in eligible.get(rid, []))}
            sub_jobs |= {s.request_id: work[s.request_id] for d in sub for s in d.stops
                         if not s.fixed and s.request_id in pinned and s.request_id in work}
            plan = reoptimize_day_plan(sub, sub_jobs, travel, dataclasses.replace(
                base, time_limit_seconds=max(base.time_limit_seconds * 0.1, 1.0)))
            for k, d in zip(shifts, plan.days, strict=True):
                add(k, d, "assignment")
    t_columns = time.perf_counter()

    sources: dict[str, int] = {}
    for col in columns:
        sources[col.source] = sources.get(col.source, 0) + 1
    solve_limit = max(base.time_limit_seconds - (t_columns - started), 1.0)
    try:
        chosen, status = choose_columns(columns, len(days), must, balance_weight=base.assignment.balance_weight,
                                        time_limit_seconds=solve_limit, mip_gap=base.mip_gap,
                                        executable=base.cbc_executable)
        message = "" if status == cbc.OPTIMAL else (
            f"CBC hit the {solve_limit:.0f} s time limit: the best combination found is used")
    except cbc.CbcError as exc:
        logger.error("set-partitioning model not solved, keeping the best whole plan: %s", exc)
        chosen, status = _best_whole_plan(columns, plans, must), "greedy_fallback"
        message = f"{exc}; the best of the whole plans (current, rescue, PyVRP) is used"
    t_solved = time.perf_counter()

    new_days = list(current)
    for ci in chosen:
        new_days[columns[ci].shift] = copy_day(columns[ci].day)
    windows: dict[int, TimeWindow] = {}
    shift_of_job: dict[int, int] = {}
    moves = 0
    for k, d in enumerate(new_days):
        for s in d.stops:
            if s.fixed:
                continue
            shift_of_job[s.request_id] = k
            moves += current_shift.get(s.request_id, k) != k
            old = window_now.get(s.request_id)
            if s.request_id in pinned and old is not None:
                s.window = old
            elif old is not None and old.start - _EPS <= s.start <= old.end + _EPS:
                s.window = old
            else:
                own = _own_window(jobs.get(s.request_id), s.start, s.window)
                s.window = promised_window(s.start, own, base.arrival_window_minutes,
                                           base.arrival_window_rounding_minutes)
            windows[s.request_id] = s.window
    unplaced: dict[int, tuple[str, dict[int, list[str]]]] = {}
    for rid in candidates:
        if rid in shift_of_job:
            continue
        if rid not in eligible:
            unplaced[rid] = ("no qualified technician on shift in the horizon", why_not.get(rid, {}))
        else:
            unplaced[rid] = (f"no qualified technician has room inside the customer's windows over the horizon "
                             f"under the {target:.0%} utilisation target",
                             {days[k].technician_id: ["no room in the route inside the customer's windows"]
                              for k in eligible[rid]})
    lost = sorted(must - set(shift_of_job))
    overloaded = [d.name for d, before in zip(new_days, days, strict=True)
                  if utilisation(d, travel) > max(target, utilisation(before, travel)) + 1e-9]
    valid = not lost and not overloaded
    if lost:
        message = f"{len(lost)} assigned visit(s) would be dropped ({', '.join(f'#{r}' for r in lost[:10])})"
    elif overloaded:
        message = f"the plan would put {', '.join(overloaded[:5])} over the {target:.0%} utilisation target"
    objective = sum(columns[c].weight for c in chosen)
    result = AssignmentResult(shift_of_job, status if status != cbc.OPTIMAL else "optimal", message, objective,
                              t_solved - t_columns, len(columns))
    timings = {"current": t_current - started, "rescue": t_rescue - t_current, "pyvrp": t_search - t_rescue,
               "assignment_columns": t_columns - t_search, "set_partitioning": t_solved - t_columns}
    return HorizonPlan(days=new_days, windows=windows, unplaced=unplaced, assignment=result, valid=valid,
                       message="; ".join([message, *notes]).strip("; "), timings_seconds=timings, moves=moves,
                       conflicts=conflicts, columns=sources)


def _best_whole_plan(columns: Sequence[Column], plans: Mapping[str, Mapping[int, int]],
                     must: frozenset[int]) -> list[int]:
    """Without CBC: the whole plan (one source's columns) with the highest objective serving ``must`` once."""
    best: tuple[float, list[int]] | None = None
    for source in ("current", "rescue", "pyvrp", "assignment"):
        picked = plans.get(source)
        if not picked:
            continue
        served = [j for c in picked.values() for j in columns[c].jobs]
        if len(served) != len(set(served)) or not must <= set(served):
            continue
        value = sum(columns[c].weight for c in picked.values())
        if best is None or value > best[0]:
            best = (value, sorted(picked.values()))
    assert best is not None  # the current plan always qualifies
    return best[1]


__all__ = ["Column", "HorizonOptions", "HorizonPlan", "choose_columns", "pinned_conflicts",
           "pyvrp_routes", "reoptimize_horizon"]
