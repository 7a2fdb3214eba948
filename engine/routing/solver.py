"""The daily route optimiser: a VROOM start, PyVRP's iterated local search, then a Pyomo/CBC set-partitioning step.

0. Normalising (``problem.normalise``): absences at a shift's edge move the shift, absences inside it become
   stops at home pinned to their technician; pinned jobs keep their technician and start time. A pinned stop
   that cannot be kept is a ``ValueError`` naming it, never a silent drop.
1. Screening: jobs no technician may do (skills, the allowed technicians, van capacity, windows outside every
   reachable shift) are set aside as unassigned with that reason.
2. Start: VROOM's plan (pyvroom, within 30-60% of the budget, 80% under 4 s) made to keep every rule in double
   precision, completed by greedy insertion; greedy insertion alone without pyvroom. It is feasible, so the
   search always holds a feasible plan (the empty plan is feasible too under the default objective).
3. Search: PyVRP on integer data (minutes x ``SCALE``; travel and service durations rounded *up*, windows
   and shifts rounded *inwards*, so an integer-feasible route is feasible in double precision). Jobs a
   technician may not take (skills, allowed technicians, pins) are unreachable in that technician's travel
   profile; several time windows are copies of the job in a mutually exclusive client group; the maximum
   working time is the vehicle's maximum distance, the distance then measuring work (travel on company
   time + service); travel policies change the first and last legs on the clock (the duration matrix).
   The default objective is prize-collecting: each job's prize
   is its weight over the smallest weight times a bound on the travel any one job can add (``prizes_for``),
   so leaving a job out never pays for itself in travel and PyVRP's bounded penalties keep infeasible plans
   from paying either.
4. Recombination (budgets of 4 s and more): every feasible route met during the search goes into a pool, and
   a set-partitioning model (Pyomo, solved by CBC) picks the best combination. The search's best plan is in
   the pool, so this step never makes the plan worse.
5. Answer: every route is re-timed and checked in double precision; under the default objective, a
   workload-balancing pass moves jobs off the busiest technician within a small travel budget.
If the optimiser fails, the starting plan is returned instead (status ``greedy_fallback``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from engine.routing.check import allowed, capacity_ok, schedule_route
from engine.routing.greedy import Plan, balance_workload, greedy_plan
from engine.routing.problem import (
    Answer,
    Problem,
    Route,
    TravelTable,
    Unassigned,
    available_minutes,
    normalise,
    travel_table,
)

logger = logging.getLogger(__name__)

SCALE = 1000  # integer ticks per minute inside the search
DEMAND_SCALE = 1000  # integer ticks per unit of van stock
BALANCE_TRAVEL_BUDGET = 0.01  # workload balancing may add at most 1% to total travel (default objective)
POOL_SHARE = 0.15  # share of the time limit kept for the set-partitioning step
MAX_POOL_ROUTES = 3000
CONSTRUCT_SHARE = 0.3  # share of the time limit VROOM may take to build the starting plan ...
SHORT_CONSTRUCT_SHARE = 0.8  # ... under SHORT_BUDGET, where VROOM's plan is most of what can be had ...
LARGE_CONSTRUCT_SHARE = 0.6  # ... and at most, from SHORT_BUDGET, so that VROOM's level 1 can finish
VROOM_LEVEL1_SECONDS = 1.6e-5  # seconds x jobs^-2 of VROOM's exploration level 1 (vroom_level1_seconds)
VROOM_LEVEL_OVERRUN = 6.0
# The VROOM start is used when its level 1 would take at most this many times its share: beyond it VROOM's
# constructions overrun the budget (at 100 technicians x 450 jobs and 1 s: 1.7 s) and greedy insertion starts.
VROOM_START_OVERRUN = 3.0
MIN_TRAVEL_ALL_JOBS_SECONDS = 0.25  # least time worth a min_travel search for a plan with every job
SHORT_BUDGET = 4.0  # seconds; below it the set-partitioning step is skipped (its pool is too thin to pay)


class SolverError(RuntimeError):
    """The optimiser could not produce a plan (the caller falls back to the greedy plan)."""


@dataclass
class _Model:
    """What the integer PyVRP model needs to map its answer back to the problem."""

    data: object  # pyvrp.ProblemData
    client_job: list[int]  # PyVRP client index -> job index
    windows: list[tuple[float, float]]  # PyVRP client index -> the job's window it stands for
    type_techs: list[list[int]]  # vehicle type -> technician indices
    prizes: dict[int, int]  # job index -> prize used


def screen_jobs(problem: Problem, table: TravelTable) -> tuple[list[int], list[Unassigned]]:
    """Split jobs into those some technician could do alone and those nobody can, with the reason.

    Returns
    -------
    (eligible job indices, unassigned jobs with reasons)
    """
    eligible: list[int] = []
    out: list[Unassigned] = []
    techs = technician_kinds(problem)
    for j, job in enumerate(problem.jobs):
        reason = job_refusal(problem, table, j, techs)
        if reason is None:
            eligible.append(j)
        else:
            out.append(Unassigned(job.id, reason))
    return eligible, out


def technician_kinds(problem: Problem) -> list[int]:
    """One representative technician index of each kind: identical technicians behave alike, so one of each
    kind is enough to screen jobs with."""
    kinds: dict[tuple, int] = {}
    for t, tech in enumerate(problem.technicians):
        kinds.setdefault((tech.start, tech.end, tech.shift, tech.capacity, tech.skills, tech.max_work_minutes,
                          tech.outbound, tech.outbound_own_minutes, tech.inbound, tech.inbound_own_minutes), t)
    return sorted(kinds.values())


def job_refusal(problem: Problem, table: TravelTable, j: int, techs: Sequence[int]) -> str | None:
    """Why no technician can do job ``j`` alone (skills, the allowed technicians, van capacity, windows
    outside every reachable shift), or None when one can. ``techs``: :func:`technician_kinds`."""
    job = problem.jobs[j]
    pool = techs if not job.technicians else [t for t, tech in enumerate(problem.technicians)
                                              if tech.id in job.technicians]
    skilled = [t for t in pool if allowed(problem.technicians[t], job)]
    if not skilled:
        if job.technicians and any(job.skills <= problem.technicians[t].skills for t in techs):
            return ("none of the technicians it may go to (" + ", ".join(sorted(job.technicians))
                    + ") has the skills " + ", ".join(sorted(job.skills)))
        return f"no technician has the skills {', '.join(sorted(job.skills))}"
    roomy = [t for t in skilled if capacity_ok(problem.technicians[t], job.demand)]
    if not roomy:
        return f"demand {job.demand:g} exceeds the van capacity of every technician with the skills"
    if any(not isinstance(schedule_route(problem, table, t, [j]), str) for t in roomy):
        return None
    overlaps = any(
        a <= problem.technicians[t].shift[1] and b >= problem.technicians[t].shift[0]
        for t in roomy for a, b in job.time_windows
    )
    if job.time_windows and not overlaps:
        return "every time window lies outside the shifts of the technicians who can do it"
    return ("no technician who can do it can reach it, finish it inside a time window and get back "
            "by the end of the shift")


def prizes_for(problem: Problem, cost: np.ndarray, client_job: Sequence[int], n_depots: int,
               scale: float = 1.0) -> dict[int, int]:
    """Integer prizes of the default objective, in the same ticks as the travel cost.

    A job's prize is ``weight / w_min x D`` where ``w_min`` is the smallest positive weight and ``D`` bounds
    the travel any single job can add to a route (its longest way in plus its longest way out, over every job):
    leaving a job out can never pay for itself in travel, and a job worth twice another is worth twice the
    prize. ``scale`` multiplies every prize (the number of jobs + 1 when the count of jobs served comes first:
    then leaving a job out never pays even for the whole plan's travel). Prizes stay small enough for PyVRP's
    time-warp and load penalties (at most 100,000 per tick) to make
    an infeasible plan never pay, which the old ``weight x (a bound on all travel)`` scaling broke (the search
    ended on infeasible plans: "the search found no feasible plan").
    """
    jobs = sorted(set(client_job))
    weights = {j: problem.jobs[j].weight for j in jobs}
    positive = [w for w in weights.values() if w > 0]
    if not positive:
        return {j: 0 for j in jobs}
    idx = np.arange(n_depots, n_depots + len(client_job))
    reach = cost[:, idx].max(axis=0) + cost[idx, :].max(axis=1) if len(idx) else np.zeros(0)
    d = float(reach.max()) + 1.0 if len(reach) else 1.0
    w_min = min(positive)
    # Keep the largest prize x the number of jobs well inside 64 bits.
    ratio = min(max(positive) / w_min * scale, 1e12 / max(d * max(len(jobs), 1), 1.0))
    return {j: int(round(min(w / w_min * scale, ratio) * d)) for j, w in weights.items()}


def check_pins(problem: Problem, table: TravelTable, unassigned: Sequence[Unassigned]) -> None:
    """Raise ``ValueError`` naming every pinned stop (or absence) that cannot be kept: its technician cannot do
    it, or a technician's pinned stops cannot all be reached at their times."""
    why = {u.job: u.reason for u in unassigned}
    bad = [f"{j.id} ({why[j.id]})" for j in problem.jobs if j.pinned is not None and j.id in why]
    if bad:
        raise ValueError("pinned stops that cannot be kept: " + "; ".join(bad))
    for t, tech in enumerate(problem.technicians):
        mine = sorted((j for j, job in enumerate(problem.jobs) if job.pinned is not None
                       and job.pinned.technician == tech.id), key=lambda j: problem.jobs[j].time_windows[0][0])
        if mine:
            route = schedule_route(problem, table, t, mine)
            if isinstance(route, str):
                names = ", ".join(problem.jobs[j].id for j in mine)
                raise ValueError(f"pinned stops of technician {tech.id} ({names}) cannot all be kept: {route}")


def build_model(problem: Problem, table: TravelTable, jobs: Sequence[int], prize_scale: float = 1.0) -> _Model:
    """Build the integer PyVRP model for the eligible ``jobs`` (see the module docstring for the mapping)."""
    import pyvrp

    techs = problem.technicians
    offset = min([t.shift[0] for t in techs] + [a for j in jobs for a, _ in problem.jobs[j].time_windows])
    horizon_end = max([t.shift[1] for t in techs] + [b for j in jobs for _, b in problem.jobs[j].time_windows])
    horizon = int(math.ceil((horizon_end - offset) * SCALE)) + 1

    def tick_up(x: float) -> int:
        return int(math.ceil((x - offset) * SCALE - 1e-7))

    def tick_down(x: float) -> int:
        return int(math.floor((x - offset) * SCALE + 1e-7))

    # Depots: one per distinct technician start/end node; clients: one per (job, window).
    depot_nodes: list[int] = []
    depot_of: dict[tuple, int] = {}

    def depot_for(node: int, key: tuple) -> int:
        if key not in depot_of:
            depot_of[key] = len(depot_nodes)
            depot_nodes.append(node)
        return depot_of[key]

    # A depot's first or last leg runs on the clock under its technician's travel policy; technicians with
    # company-time legs share one depot per place, the others get their own.
    starts = [depot_for(table.start_node(t), (tech.start,) if tech.outbound == "company"
                       else ("out", tech.start, tech.outbound, tech.outbound_own_minutes))
              for t, tech in enumerate(techs)]
    ends = [depot_for(table.end_node(t), (tech.end,) if tech.inbound == "company"
                      else ("in", tech.end, tech.inbound, tech.inbound_own_minutes))
            for t, tech in enumerate(techs)]
    use_load = any(problem.jobs[j].demand > 0 for j in jobs)

    client_nodes: list[int] = []
    client_job: list[int] = []
    clients: list[pyvrp.Client] = []
    groups: list[pyvrp.ClientGroup] = []
    prizes: dict[int, int] = {}
    specs: list[tuple[int, int | None, int, int, bool]] = []
    client_windows: list[tuple[float, float]] = []
    n_depots = len(depot_nodes)
    for j in jobs:
        job = problem.jobs[j]
        windows = job.time_windows or ((offset, horizon_end),)
        required = problem.objective == "min_travel" or job.pinned is not None
        group = None
        if len(windows) > 1:
            group = len(groups)
            groups.append(pyvrp.ClientGroup(required=required, name=job.id))
        for a, b in windows:
            idx = len(specs)  # the PyVRP client index this window copy will have
            if group is not None:
                groups[group].add_client(idx)
            early, late = max(tick_up(a), 0), min(tick_down(b), horizon)
            specs.append((j, group, early, min(late, early) if late < early else late,
                          required and group is None))
            client_nodes.append(table.job_node(j))
            client_job.append(j)
            client_windows.append((a, b))

    nodes = np.array(depot_nodes + client_nodes, dtype=np.int64)
    minutes = table.minutes[np.ix_(nodes, nodes)]
    # The search minimises travel minutes (the objective); rounding to nearest keeps the cost unbiased,
    # while durations (on the clock, after the travel policies) round up so that every integer-feasible
    # route is feasible in double precision.
    base_cost = np.rint(minutes * SCALE).astype(np.int64)
    base_time = np.ceil(table.clock[np.ix_(nodes, nodes)] * SCALE - 1e-7).astype(np.int64)
    if problem.objective == "default":
        prizes = prizes_for(problem, base_cost, client_job, n_depots, scale=prize_scale)
    service = [int(math.ceil(problem.jobs[j].duration * SCALE - 1e-7)) for j in client_job]
    # With a maximum working time, PyVRP's distance measures work: travel on company time (rounded up) plus
    # the service of the stop driven to (absences are not work), capped by the vehicle's max_distance. The
    # cost is that distance, so each job's prize carries its service minutes back: cost - prizes is still
    # travel - prizes.
    work_mode = any(t.max_work_minutes is not None for t in techs)
    work_ticks = [0] * len(client_job)
    if work_mode:
        work_ticks = [service[c] if problem.jobs[j].kind == "job" else 0 for c, j in enumerate(client_job)]
        base_cost = base_time.copy()
        base_cost[:, n_depots:] += np.asarray(work_ticks, dtype=np.int64)[None, :]
        np.fill_diagonal(base_cost, 0)
    for c, (j, group, early, late, req) in enumerate(specs):
        job = problem.jobs[j]
        clients.append(pyvrp.Client(
            location=n_depots + c,
            delivery=[int(math.ceil(job.demand * DEMAND_SCALE - 1e-7))] if use_load else [],
            service_duration=service[c],
            tw_early=early, tw_late=late, prize=prizes.get(j, 0) + (work_ticks[c] if prizes else 0),
            required=req, group=group, name=job.id,
        ))

    # One profile per distinct set of jobs a technician may not take (skills, the caller's allowed technicians,
    # pins): those jobs are unreachable in the technician's profile.
    unreachable = 4 * horizon
    profile_of: dict[tuple[int, ...], int] = {}
    tech_profile: list[int] = []
    cost_mats: list[np.ndarray] = []
    time_mats: list[np.ndarray] = []
    for tech in techs:
        banned = [n_depots + c for c, j in enumerate(client_job) if not allowed(tech, problem.jobs[j])]
        key = tuple(banned)
        if key in profile_of:
            tech_profile.append(profile_of[key])
            continue
        cost, dur = base_cost, base_time
        if banned:
            cost, dur = base_cost.copy(), base_time.copy()
            cost[:, banned] = unreachable
            dur[:, banned] = unreachable
            np.fill_diagonal(cost, 0)
            np.fill_diagonal(dur, 0)
        profile_of[key] = len(cost_mats)
        tech_profile.append(profile_of[key])
        cost_mats.append(cost)
        time_mats.append(dur)

    # Identical technicians share one vehicle type.
    type_key: dict[tuple, int] = {}
    type_techs: list[list[int]] = []
    for t, tech in enumerate(techs):
        tkey = (starts[t], ends[t], tech.shift, tech.capacity, tech_profile[t], tech.max_work_minutes)
        if tkey not in type_key:
            type_key[tkey] = len(type_techs)
            type_techs.append([])
        type_techs[type_key[tkey]].append(t)
    total_demand = sum(c.delivery[0] for c in clients) if use_load else 0
    vehicle_types = []
    for members in type_techs:
        tech = techs[members[0]]
        capacity = []
        if use_load:
            capacity = [total_demand + 1 if tech.capacity is None
                        else int(math.floor(tech.capacity * DEMAND_SCALE + 1e-7))]
        # The maximum working time caps the route's work (travel on company time + service; see above).
        cap: dict[str, int] = {} if tech.max_work_minutes is None else {"max_distance": max(int(math.floor(
            tech.max_work_minutes * SCALE + 1e-7)), 0)}
        vehicle_types.append(pyvrp.VehicleType(
            num_available=len(members), capacity=capacity, start_depot=starts[members[0]],
            end_depot=ends[members[0]], tw_early=max(tick_up(tech.shift[0]), 0),
            tw_late=min(tick_down(tech.shift[1]), horizon), profile=tech_profile[members[0]], name=tech.id,
            **cap,  # type: ignore[arg-type]
        ))
    depots = [pyvrp.Depot(location=d, tw_early=0, tw_late=horizon) for d in range(n_depots)]
    locations = [pyvrp.Location(x=0, y=0) for _ in range(len(nodes))]
    # PyVRP's stubs type matrices as ndarray[int]; ours are int64 ndarrays, which is what it accepts.
    data = pyvrp.ProblemData(locations, clients, depots, vehicle_types, cost_mats, time_mats,  # type: ignore[arg-type]
                             groups)
    return _Model(data=data, client_job=client_job, windows=client_windows, type_techs=type_techs, prizes=prizes)


class _RoutePool:
    """Collects distinct feasible routes met by the search (callbacks are PyVRP's public hook)."""

    def __init__(self, model: _Model, slack: float = 0.01) -> None:
        self.model = model
        self.slack = slack
        self.routes: dict[tuple[int, tuple[int, ...]], int] = {}

    def add_solution(self, solution: object, cost: float, best_cost: float) -> None:
        if not solution.is_feasible() or cost > best_cost * (1 + self.slack):  # type: ignore[attr-defined]
            return
        for route in solution.routes():  # type: ignore[attr-defined]
            visits = tuple(a.idx for a in route.schedule() if a.is_client())
            key = (route.vehicle_type(), visits)
            if key not in self.routes:
                self.routes[key] = route.distance() - route.prizes()


def _callbacks(pool: _RoutePool) -> object:
    from pyvrp.IteratedLocalSearch import IteratedLocalSearchCallbacks

    class Collect(IteratedLocalSearchCallbacks):
        def on_iteration(self, current, candidate, best, cost_evaluator):  # type: ignore[no-untyped-def]
            if len(pool.routes) < MAX_POOL_ROUTES * 3:
                pool.add_solution(candidate, cost_evaluator.cost(candidate), cost_evaluator.cost(best))

        def on_best(self, best):  # type: ignore[no-untyped-def]
            pool.add_solution(best, 0.0, 1.0)

    return Collect()


def recombine(model: _Model, pool: _RoutePool, time_limit_seconds: float,
              incumbent: set[tuple[int, tuple[int, ...]]], *,
              cbc_executable: str = "cbc") -> list[tuple[int, list[int]]] | None:
    """Pick the cheapest compatible set of pooled routes with a Pyomo set-partitioning model solved by CBC.

    Each job (or group of window copies) is served at most once (exactly once under ``min_travel``), each
    vehicle type is used at most ``num_available`` times; the cost is travel minus prizes. Returns
    ``(vehicle type, client visits)`` per route, or None when CBC is missing or does not finish.
    """
    import pyomo.environ as pyo

    data = model.data
    columns = sorted(pool.routes.items(), key=lambda kv: (kv[0] not in incumbent, kv[1]))[:MAX_POOL_ROUTES]
    if len(columns) < 2:
        return None
    jobs_of_col = [sorted({model.client_job[c] for c in visits}) for (_, visits), _ in columns]
    cols_of_job: dict[int, list[int]] = {}
    for r, js in enumerate(jobs_of_col):
        for j in js:
            cols_of_job.setdefault(j, []).append(r)
    cols_of_type: dict[int, list[int]] = {}
    for r, ((vt, _), _) in enumerate(columns):
        cols_of_type.setdefault(vt, []).append(r)
    required = any(c.required for c in data.clients()) or any(g.required for g in data.groups())  # type: ignore

    m = pyo.ConcreteModel()
    m.R = pyo.RangeSet(0, len(columns) - 1)
    m.x = pyo.Var(m.R, domain=pyo.Binary)
    m.J = pyo.Set(initialize=sorted(cols_of_job))
    m.T = pyo.Set(initialize=sorted(cols_of_type))
    if required:
        m.serve = pyo.Constraint(m.J, rule=lambda m, j: sum(m.x[r] for r in cols_of_job[j]) == 1)
    else:
        m.serve = pyo.Constraint(m.J, rule=lambda m, j: sum(m.x[r] for r in cols_of_job[j]) <= 1)
    m.fleet = pyo.Constraint(m.T, rule=lambda m, t: sum(m.x[r] for r in cols_of_type[t])
                             <= len(model.type_techs[t]))
    m.cost = pyo.Objective(expr=sum(float(columns[r][1]) * m.x[r] for r in m.R), sense=pyo.minimize)
    for r, (key, _) in enumerate(columns):
        m.x[r].value = 1.0 if key in incumbent else 0.0
    from engine import cbc

    # The incumbent (the search's best plan) as a warm start lets CBC prune from the first node. A time-limited
    # answer is a feasible combination of feasible routes, so it is used as it is.
    try:
        cbc.solve(m, executable=cbc_executable, time_limit_seconds=max(time_limit_seconds, 0.1), warmstart=True)
    except cbc.CbcError:
        return None
    chosen = [r for r in m.R if pyo.value(m.x[r]) > 0.5]
    return [(columns[r][0][0], list(columns[r][0][1])) for r in chosen]


def initial_solution(model: _Model, plan: Plan) -> object | None:
    """A plan in double precision (the greedy one) as a PyVRP solution to start the search from.

    Returns the solution when it is feasible on the integer data (it nearly always is), else the empty plan
    when that is feasible (no required jobs), else None (PyVRP then starts from a random solution).
    """
    import pyvrp

    data = model.data
    client_of: dict[tuple[int, float, float], int] = {}
    for c, (j, win) in enumerate(zip(model.client_job, model.windows, strict=True)):
        client_of[(j, win[0], win[1])] = c
    type_of = {t: vt for vt, ts in enumerate(model.type_techs) for t in ts}
    routes = []
    for t, order in plan.orders.items():
        if not order:
            continue
        visits = []
        for j, stop in zip(order, plan.routes[t].stops, strict=True):
            job = plan.problem.jobs[j]
            windows = job.time_windows or ()
            w: tuple[float, float] | None = next((x for x in windows if x[0] - 1e-6 <= stop.start <= x[1] + 1e-6), None)
            key = (j, w[0], w[1]) if w is not None else next((k for k in client_of if k[0] == j), None)
            if key is None or key not in client_of:
                return None
            visits.append(client_of[key])
        routes.append(pyvrp.Route(data, visits, type_of[t]))  # type: ignore[call-overload]
    for candidate in (routes, []):
        try:
            sol = pyvrp.Solution(data, candidate)  # type: ignore[arg-type]
        except (ValueError, RuntimeError):
            continue
        if sol.is_feasible():
            return sol
    return None


def vroom_level1_seconds(n_jobs: int) -> float:
    """About how long VROOM's exploration level 1 takes for ``n_jobs`` jobs on this machine (0.06 s at 55 jobs,
    0.17 s at 106, 0.86 s at 242, 3.6 s at 449)."""
    return VROOM_LEVEL1_SECONDS * n_jobs ** 2


def vroom_exploration(n_jobs: int, seconds: float) -> int:
    """VROOM's exploration level (1-5) for ``n_jobs`` jobs within ``seconds``.

    Each level about doubles VROOM's work over level 1 (:func:`vroom_level1_seconds`). VROOM honours its timeout, and a
    level cut short still ends well when its full run would take up to ``VROOM_LEVEL_OVERRUN`` times the time
    given; beyond that a lower level finishing its search is better (docs/benchmarks.md, "The VROOM start").
    """
    level1 = vroom_level1_seconds(n_jobs)
    level = 1
    while level < 5 and level1 * 2 ** level <= VROOM_LEVEL_OVERRUN * seconds:
        level += 1
    return level


def construct_seconds(n_jobs: int, time_limit_seconds: float) -> float:
    """The time the VROOM start may take: 80% of the budget under ``SHORT_BUDGET``; from it 30%, or enough for
    VROOM's level 1 (:func:`vroom_level1_seconds`) up to 60% on large days, where PyVRP's search does a few
    hundred iterations a second and VROOM's plan is worth more than search time (docs/benchmarks.md)."""
    if time_limit_seconds < SHORT_BUDGET:
        return time_limit_seconds * SHORT_CONSTRUCT_SHARE
    return max(time_limit_seconds * CONSTRUCT_SHARE,
               min(vroom_level1_seconds(n_jobs), time_limit_seconds * LARGE_CONSTRUCT_SHARE))


def construct(problem: Problem, table: TravelTable, jobs: Sequence[int], seconds: float) -> tuple[Plan, str]:
    """The starting plan: VROOM's (when pyvroom is installed) made to keep every rule, else greedy insertion.

    VROOM builds strong plans within a second or two (regret insertion + local search) but cannot express a
    maximum working time: stops breaking a rule in double precision are taken out, then every job not in the
    plan is offered to greedy insertion. Any VROOM failure falls back to the greedy plan.
    """
    from engine.routing.peers import run_vroom, vroom_available

    if seconds > 0 and vroom_available() and jobs:
        try:
            orders = run_vroom(problem, seconds, exploration=vroom_exploration(len(jobs), seconds), only=jobs)
            plan, dropped = repair_orders(problem, table, orders)
            served = {j for o in plan.orders.values() for j in o}
            greedy_plan(problem, table, [j for j in jobs if j not in served], plan)
            return plan, "VROOM" + (f" (repaired: {len(dropped)} stops out)" if dropped else "")
        except Exception as exc:  # a starting plan only: the greedy one will do
            logger.warning("VROOM start failed, using greedy insertion: %s", exc)
    return greedy_plan(problem, table, jobs), "greedy"


def _search(problem: Problem, table: TravelTable, jobs: Sequence[int], search_seconds: float,
            pool_seconds: float, seed: int, start: Plan | None = None, cbc_executable: str = "cbc",
            prize_scale: float = 1.0) -> tuple[dict[int, list[int]], bool, list[str]]:
    """Run PyVRP (+ recombination); return job orders per technician, whether the time limit hit, notes."""
    import pyvrp
    from pyvrp.IteratedLocalSearch import IteratedLocalSearchParams
    from pyvrp.stop import MaxRuntime, MultipleCriteria, NoImprovement

    t0 = time.perf_counter()
    model = build_model(problem, table, jobs, prize_scale)
    pool = _RoutePool(model)
    init = initial_solution(model, start) if start is not None else None
    if init is not None:
        pool.add_solution(init, 0.0, 1.0)
    params = pyvrp.SolveParams(ils=IteratedLocalSearchParams(callbacks=_callbacks(pool)))  # type: ignore
    left = max(search_seconds - (time.perf_counter() - t0), 0.05)
    stop = MultipleCriteria([MaxRuntime(left), NoImprovement(20_000)])
    result = pyvrp.solve(model.data, stop, seed=seed, collect_stats=False, params=params,  # type: ignore
                         initial_solution=init)  # type: ignore[arg-type]
    notes = [f"search: {result.num_iterations} iterations in {result.runtime:.2f} s"
             + (" from the start plan" if init is not None else "")]
    hit_limit = result.runtime >= left * 0.98
    best = result.best
    if not best.is_feasible():
        raise SolverError("the search found no feasible plan")
    routes = [(r.vehicle_type(), [a.idx for a in r.schedule() if a.is_client()]) for r in best.routes()]
    pool.add_solution(best, 0.0, 1.0)
    if pool_seconds > 0 and len(pool.routes) > len(routes):
        t0 = time.perf_counter()
        try:
            picked = recombine(model, pool, pool_seconds - 0.45, {(vt, tuple(v)) for vt, v in routes},
                               cbc_executable=cbc_executable)
        except Exception as exc:  # CBC trouble must not lose the search's plan
            logger.warning("set partitioning failed: %s", exc)
            picked = None
        if picked is not None:
            old = sum(pool.routes[(vt, tuple(v))] for vt, v in routes)
            new = sum(pool.routes[(vt, tuple(v))] for vt, v in picked)
            notes.append(f"set partitioning over {len(pool.routes)} pooled routes: "
                         f"{old / SCALE:.3f} -> {new / SCALE:.3f} in {time.perf_counter() - t0:.2f} s")
            if new <= old:
                routes = picked
    # Map vehicle types back to technicians.
    free = [list(ts) for ts in model.type_techs]
    orders: dict[int, list[int]] = {}
    for vt, visits in routes:
        if not visits:
            continue
        t = free[vt].pop(0)
        orders[t] = [model.client_job[c] for c in visits]
    return orders, hit_limit, notes


def repair_orders(problem: Problem, table: TravelTable, orders: dict[int, list[int]]
                  ) -> tuple[Plan, list[int]]:
    """Drop stops that break a double-precision check (the search's plans: should not happen; a peer's plan:
    the rules it cannot express), least valuable first; return the plan and the dropped jobs."""
    dropped: list[int] = []
    clean: dict[int, list[int]] = {}
    for t, order in orders.items():
        order = list(order)
        while order and isinstance(schedule_route(problem, table, t, order), str):
            # Remove the least valuable stop whose removal gives a feasible route (pinned ones last), else the
            # last one.
            for k in sorted(range(len(order)), key=lambda k: (problem.jobs[order[k]].pinned is not None,
                                                               problem.jobs[order[k]].weight)):
                trial = order[:k] + order[k + 1:]
                if not isinstance(schedule_route(problem, table, t, trial), str):
                    dropped.append(order.pop(k))
                    break
            else:
                dropped.append(order.pop())
        clean[t] = order
    return Plan(problem, table, clean), dropped


def solve(problem: Problem, time_limit_seconds: float = 5.0, *, seed: int = 0,
          recombine_routes: bool = True, start: str = "auto", cbc_executable: str = "cbc") -> Answer:
    """Plan the day: assign jobs to technicians and order each route.

    Parameters
    ----------
    problem:
        The routing problem (see :func:`engine.routing.problem.problem_from_json`).
    time_limit_seconds:
        Wall-clock budget for the optimiser (screening and answer building add a little).
    seed:
        Seed of the search, for reproducible plans.
    recombine_routes:
        Run the Pyomo/CBC set-partitioning step over the pooled routes (on by default).
    start:
        The search's starting plan: ``"vroom"`` (VROOM's plan made to keep every rule, within
        :func:`construct_seconds`; greedy when pyvroom is missing), ``"greedy"`` (greedy insertion only), or
        ``"auto"``: VROOM when its level 1 would take at most ``VROOM_START_OVERRUN`` times its share
        (:func:`construct_seconds`), else greedy (at 100 technicians, 450 jobs and 1 s VROOM's constructions
        overrun the budget; see docs/benchmarks.md).
    cbc_executable:
        The CBC binary of the set-partitioning step (the ``cbc_executable`` setting, passed by the caller).

    Returns
    -------
    Answer
        Routes timed in double precision, unassigned jobs with reasons, totals. ``status`` says whether the
        search stopped on its own (``solved``), at the time limit (``time_limit``, the best plan found) or
        failed and a greedy plan was used (``greedy_fallback``).

    Raises
    ------
    ValueError
        If ``time_limit_seconds`` is not positive.
    """
    if not time_limit_seconds > 0:
        raise ValueError(f"time_limit_seconds must be > 0 (got {time_limit_seconds})")
    if start not in ("auto", "vroom", "greedy"):
        raise ValueError(f"start must be 'auto', 'vroom' or 'greedy' (got {start!r})")
    if start == "auto":
        fits = vroom_level1_seconds(len(problem.jobs)) <= VROOM_START_OVERRUN * construct_seconds(
            len(problem.jobs), time_limit_seconds)
        start = "vroom" if fits else "greedy"
    t0 = time.perf_counter()
    if recombine_routes and time_limit_seconds >= SHORT_BUDGET:
        # Importing Pyomo takes most of a second: done first, inside the budget, so the split below is right.
        import pyomo.environ  # noqa: F401
    if start == "vroom":
        from engine.routing.peers import vroom_available

        vroom_available()  # the same for pyvroom (and pandas, which it loads)
    problem = normalise(problem)  # absences and pins as plain constraints; raises on a pin that cannot be kept
    table = travel_table(problem)
    eligible, unassigned = screen_jobs(problem, table)
    check_pins(problem, table, unassigned)
    notes: list[str] = []
    status = "solved"
    short = time_limit_seconds < SHORT_BUDGET
    pool_seconds = time_limit_seconds * POOL_SHARE if recombine_routes and not short else 0.0
    first: Plan | None = None
    try:
        if not eligible:
            orders: dict[int, list[int]] = {}
        else:
            # The starting plan (VROOM's or greedy insertion's) is feasible, so the search always holds a
            # feasible plan, and good, which matters when the budget is a second or two.
            share = 0.0 if start != "vroom" else construct_seconds(len(eligible), time_limit_seconds)
            spent = time.perf_counter() - t0
            first, how = construct(problem, table, eligible, min(share, time_limit_seconds - pool_seconds - spent))
            placed = sum(len(o) for o in first.orders.values())
            notes.append(f"start: {how} plan serving {placed} jobs after {time.perf_counter() - t0:.2f} s")
            planned: dict[int, list[int]] | None = None
            if problem.objective == "min_travel" and placed < len(eligible):
                # The start could not place every job. Either a plan with every job exists (the search often
                # finds it from its own random start) or none does, and "every job required" would end without a
                # plan (the greedy fallback). Half the time for the first; if it finds none, the rest serves as
                # many jobs as fit, then the least travel: each job gets the same prize, more than the travel
                # of the whole plan (prizes_for with scale n + 1), so leaving one out never pays.
                half = (time_limit_seconds - pool_seconds - (time.perf_counter() - t0)) / 2
                try:
                    if half < MIN_TRAVEL_ALL_JOBS_SECONDS:
                        # No time for both searches (each builds its model): the start's jobs, better placed.
                        raise SolverError("no time to look for a plan with every job")
                    found, _, found_notes = _search(problem, table, eligible, half, 0.0, seed, start=first,
                                                    cbc_executable=cbc_executable)
                    # Found: the other half goes on from that plan (below).
                    first = repair_orders(problem, table, found)[0]
                    notes += found_notes
                except SolverError as exc:
                    notes.append(f"min_travel: {exc} (the start placed {placed} of {len(eligible)}); searching "
                                 f"for the most jobs that fit, then the least travel")
                    equal = replace(problem, objective="default", jobs=tuple(
                        job if job.pinned is not None else replace(job, value=1.0, priority=0.0)
                        for job in problem.jobs))
                    left = max(time_limit_seconds - pool_seconds - (time.perf_counter() - t0), 0.05)
                    planned, hit_limit, more = _search(equal, table, eligible, left, pool_seconds, seed,
                                                      start=first, cbc_executable=cbc_executable,
                                                      prize_scale=len(eligible) + 1.0)
            if planned is None:
                search_seconds = max(time_limit_seconds - pool_seconds - (time.perf_counter() - t0), 0.05)
                planned, hit_limit, more = _search(problem, table, eligible, search_seconds, pool_seconds, seed,
                                                  start=first, cbc_executable=cbc_executable)
            orders = planned
            notes += more
            status = "time_limit" if hit_limit else "solved"
        plan, dropped = repair_orders(problem, table, orders)
        if dropped:
            notes.append(f"repair: {len(dropped)} stops failed the double-precision check and were re-inserted")
            greedy_plan(problem, table, dropped, plan)
    except Exception as exc:  # any optimiser failure: keep working with a greedy plan
        logger.warning("route optimiser failed, using the greedy plan: %s", exc)
        notes.append(f"optimiser failed ({exc}); greedy insertion plan used")
        status = "greedy_fallback"
        plan = first if first is not None else greedy_plan(problem, table, eligible)
    served = {j for order in plan.orders.values() for j in order}
    if problem.objective == "default" and served:
        budget = BALANCE_TRAVEL_BUDGET * sum(r.travel_minutes for r in plan.routes.values())
        moves = balance_workload(plan, budget)
        if moves:
            notes.append(f"workload balancing: {moves} jobs moved")
    for j in eligible:
        if j not in served:
            reason = ("no room left: the technicians' time and van stock are taken by the other jobs"
                      if problem.objective == "min_travel" else
                      "left out: there is not room for every job and the others are worth more or save travel")
            unassigned.append(Unassigned(problem.jobs[j].id, reason))
    return answer_from_plan(problem, plan, unassigned, status, time.perf_counter() - t0, notes)


def answer_from_plan(problem: Problem, plan: Plan, unassigned: Sequence[Unassigned], status: str, runtime: float,
                     notes: Sequence[str]) -> Answer:
    """The answer of a plan: its non-empty routes, the unassigned jobs in job order, totals and utilisation."""
    routes: list[Route] = [plan.routes[t] for t in sorted(plan.routes) if plan.orders[t]]
    utilisation = {}
    for t, tech in enumerate(problem.technicians):
        length = available_minutes(problem, tech)
        utilisation[tech.id] = plan.work_minutes(t) / length if length > 0 and plan.orders[t] else 0.0
    order = {j.id: k for k, j in enumerate(problem.jobs)}
    return Answer(
        status=status,
        objective=problem.objective,
        routes=tuple(routes),
        unassigned=tuple(sorted(unassigned, key=lambda u: order[u.job])),
        travel_minutes=sum(r.travel_minutes for r in routes),
        distance=sum(r.distance for r in routes),
        value_served=sum(problem.jobs[j].value for o in plan.orders.values() for j in o),  # absences: 0
        utilisation=utilisation,
        runtime_seconds=runtime,
        notes=tuple(notes),
    )
