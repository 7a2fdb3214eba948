"""The global assignment of the daily re-optimisation: which technician shift does which job (Pyomo + CBC).

The model is a generalised assignment problem over the sparse set of eligible (job, shift) pairs:

- ``x[p]`` binary: pair p = (job, shift) is used; each job is used at most once.
- capacity: per shift, the jobs' load (duration + an estimated leg) fits in ``shift minutes x utilisation
  target - fixed work``; per shift and per distinct deadline (the latest start a job allows), the load of the
  jobs that must start by then fits in the time before it (a necessary condition of the time windows).
- balance: ``u_max`` is at least every shift's estimated utilisation.
- objective (maximised, in dollars): ``VALUE_SCALE x served weight`` (value and priority: which jobs are
  served comes first), plus the upsell the technician's multiplier is expected to add, minus the travel
  estimate (distance from the technician's home: jobs cluster around the technicians who live near them)
  times the cost of a minute of driving, minus a small charge for moving a job off its current technician,
  minus ``balance_weight x u_max``.

``build_model(problem) -> ConcreteModel``, ``solve_model(model, ...)`` and ``extract(model)`` keep every Pyomo
object inside this module; ``solve_assignment`` is the entry point and falls back to ``greedy_assignment``
when CBC is missing or fails.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import cbc
from engine.dispatch.eligibility import ineligibility_reasons
from engine.travel import TravelTimeProvider
from models.domain import JobRequirements, TechnicianDay

logger = logging.getLogger(__name__)

# One dollar of served weight outweighs this many dollars of upsell, travel and balance: serving comes first.
VALUE_SCALE = 100.0
# Even a job with no estimated value is worth serving.
VALUE_FLOOR = 50.0


class AssignmentSolverError(RuntimeError):
    """CBC is missing, failed, or stopped without a usable assignment."""


def priority_factor(priority: int) -> float:
    """Priority 1 (emergency) weighs 4 times priority 10."""
    return 1.0 + (10 - min(max(priority, 1), 10)) / 3.0


def served_weight(job: JobRequirements) -> float:
    """What serving the job is worth, whoever serves it: (value + floor) x priority factor."""
    return (max(job.estimated_value, 0.0) + VALUE_FLOOR) * priority_factor(job.priority)


@dataclass(frozen=True)
class AssignmentOptions:
    """The rules of the assignment model."""

    utilisation_target: float = 0.85
    travel_cost_per_minute: float = 1.0
    # A job moved off its current technician costs this much (dollars): no churn for a minute of travel.
    change_penalty: float = 2.0
    balance_weight: float = 20.0
    # Capacity counts each job's leg as the travel from home, capped here (a leg inside a cluster is short).
    typical_leg_minutes: float = 20.0
    parts_policy: str = "detour"

    def __post_init__(self) -> None:
        if not 0 < self.utilisation_target <= 1:
            raise ValueError(f"utilisation_target must be in (0, 1] (got {self.utilisation_target})")
        for name in ("travel_cost_per_minute", "change_penalty", "balance_weight", "typical_leg_minutes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (got {getattr(self, name)})")


@dataclass(frozen=True)
class Pair:
    """One eligible (job, shift) pair and its coefficients."""

    job: int  # request id
    shift: int  # index into the problem's shifts
    load_minutes: float
    travel_minutes: float
    weight: float  # dollars: VALUE_SCALE x served weight + upsell - travel cost - change penalty


@dataclass(frozen=True)
class AssignmentProblem:
    """The sparse data the model is built from (plain data: tests and the greedy fallback use it too)."""

    shift_minutes: tuple[float, ...]
    fixed_minutes: tuple[float, ...]
    capacity_minutes: tuple[float, ...]
    pairs: tuple[Pair, ...]
    # (shift, deadline minute from the shift start, available minutes, pair indexes that must start by then)
    deadlines: tuple[tuple[int, float, float, tuple[int, ...]], ...]
    # request id -> why no shift can take it (only for jobs with no eligible pair)
    ineligible: Mapping[int, dict[int, list[str]]]
    balance_weight: float
    pairs_by_job: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    pairs_by_shift: Mapping[int, tuple[int, ...]] = field(default_factory=dict)


@dataclass
class AssignmentResult:
    """Which shift (index) each job goes to; ``status`` is optimal, time_limit or greedy_fallback."""

    shift_of_job: dict[int, int]
    status: str
    message: str = ""
    objective: float = 0.0
    solve_seconds: float = 0.0
    pairs: int = 0


def build_problem(days: Sequence[TechnicianDay], jobs: Sequence[JobRequirements], travel: TravelTimeProvider,
                  options: AssignmentOptions, *, current_shift: Mapping[int, int] | None = None,
                  must_serve: frozenset[int] = frozenset()) -> AssignmentProblem:
    """Eligibility, capacities and pair coefficients for ``jobs`` over the shifts ``days``.

    Parameters
    ----------
    days:
        The shifts of the day; only their fixed stops count as work already there.
    jobs:
        The movable jobs, with the windows they must start in.
    current_shift:
        request id -> index of the shift that has it now (moving it off costs ``change_penalty``).
    must_serve:
        Requests already promised to a customer: they outweigh every optional job.
    """
    current_shift = current_shift or {}
    shift_minutes = tuple(d.shift_minutes for d in days)
    fixed = tuple(sum(s.duration_minutes + s.travel_minutes for s in d.stops if s.fixed) for d in days)
    capacity = tuple(max(m * options.utilisation_target - f, 0.0) for m, f in zip(shift_minutes, fixed, strict=True))
    top_optional = max((served_weight(j) for j in jobs if j.request_id not in must_serve), default=0.0)
    pairs: list[Pair] = []
    ineligible: dict[int, dict[int, list[str]]] = {}
    for job in jobs:
        base = served_weight(job)
        if job.request_id in must_serve:
            # A promised visit outweighs any ten optional ones: re-optimisation rescues, it does not bump.
            base += 10.0 * top_optional
        why: dict[int, list[str]] = {}
        n_before = len(pairs)
        for k, day in enumerate(days):
            reasons = ineligibility_reasons(day, job, parts_policy=options.parts_policy)
            if reasons:
                why[day.technician_id] = reasons
                continue
            leg = travel.minutes(day.home, job.location)
            weight = (VALUE_SCALE * base + max(job.estimated_value, 0.0) * (day.upsell_multiplier - 1.0)
                      - options.travel_cost_per_minute * leg)
            if job.request_id in current_shift and current_shift[job.request_id] != k:
                weight -= options.change_penalty
            pairs.append(Pair(job=job.request_id, shift=k, travel_minutes=leg, weight=weight,
                              load_minutes=job.duration_minutes + min(leg, options.typical_leg_minutes)))
        if len(pairs) == n_before:
            ineligible[job.request_id] = why
    by_job: dict[int, list[int]] = {}
    by_shift: dict[int, list[int]] = {}
    for i, p in enumerate(pairs):
        by_job.setdefault(p.job, []).append(i)
        by_shift.setdefault(p.shift, []).append(i)
    # Deadlines: the jobs that must start by minute L of shift k need their load before L (+ the last job).
    latest = {j.request_id: max(w.end for w in j.windows) for j in jobs}
    deadlines: list[tuple[int, float, float, tuple[int, ...]]] = []
    for k, idx in by_shift.items():
        day = days[k]
        cutoffs = sorted({latest[pairs[i].job] for i in idx if latest[pairs[i].job] < day.shift_end})
        for cut in cutoffs:
            members = tuple(i for i in idx if latest[pairs[i].job] <= cut)
            if len(members) < 2:
                continue
            before = (cut - day.shift_start).total_seconds() / 60.0
            fixed_before = sum(s.duration_minutes for s in day.stops if s.fixed and s.start < cut)
            longest = max(pairs[i].load_minutes for i in members)
            deadlines.append((k, before, max(before - fixed_before, 0.0) + longest, members))
    return AssignmentProblem(
        shift_minutes=shift_minutes, fixed_minutes=fixed, capacity_minutes=capacity, pairs=tuple(pairs),
        deadlines=tuple(deadlines), ineligible=ineligible, balance_weight=options.balance_weight,
        pairs_by_job={j: tuple(v) for j, v in by_job.items()},
        pairs_by_shift={k: tuple(v) for k, v in by_shift.items()})


def build_model(problem: AssignmentProblem) -> Any:
    """The assignment MIP (see the module docstring).

    Returns
    -------
    pyomo.environ.ConcreteModel
        With the problem kept on ``model._problem`` for ``extract``.
    """
    import pyomo.environ as pyo

    pairs = problem.pairs
    m = pyo.ConcreteModel(name="reoptimise_assignment")
    m._problem = problem
    m.PAIRS = pyo.Set(initialize=range(len(pairs)))
    m.JOBS = pyo.Set(initialize=sorted(j for j, idx in problem.pairs_by_job.items() if len(idx) > 1))
    m.SHIFTS = pyo.Set(initialize=sorted(problem.pairs_by_shift))
    m.DEADLINES = pyo.Set(initialize=range(len(problem.deadlines)))
    m.x = pyo.Var(m.PAIRS, domain=pyo.Binary)
    m.u_max = pyo.Var(bounds=(0, None))

    m.job_once = pyo.Constraint(m.JOBS, rule=lambda m, j: sum(m.x[p] for p in problem.pairs_by_job[j]) <= 1)

    def load(m: Any, idx: Sequence[int]) -> Any:
        return sum(pairs[p].load_minutes * m.x[p] for p in idx)

    m.capacity = pyo.Constraint(m.SHIFTS, rule=lambda m, k: load(m, problem.pairs_by_shift[k])
                                <= problem.capacity_minutes[k])
    m.deadline = pyo.Constraint(m.DEADLINES, rule=lambda m, d: load(m, problem.deadlines[d][3])
                                <= problem.deadlines[d][2])

    def utilisation(m: Any, k: int) -> Any:
        minutes = max(problem.shift_minutes[k], 1.0)
        return m.u_max >= (problem.fixed_minutes[k] + load(m, problem.pairs_by_shift[k])) / minutes

    m.balance = pyo.Constraint(m.SHIFTS, rule=utilisation)
    m.objective = pyo.Objective(expr=sum(pairs[p].weight * m.x[p] for p in m.PAIRS)
                                - problem.balance_weight * m.u_max, sense=pyo.maximize)
    return m


def solve_model(model: Any, *, time_limit_seconds: float | None = None, mip_gap: float = 0.0,
                executable: str = "cbc") -> str:
    """Solve with CBC (engine.cbc) and load the solution. Returns ``optimal`` or ``time_limit``.

    Raises
    ------
    AssignmentSolverError
        If CBC is missing, fails, or stops without a feasible assignment.
    """
    try:
        return cbc.solve(model, executable=executable, time_limit_seconds=time_limit_seconds, mip_gap=mip_gap)
    except cbc.CbcError as exc:
        raise AssignmentSolverError(str(exc)) from exc


def extract(model: Any) -> dict[int, int]:
    """request id -> shift index of the used pairs of a solved model (plain data)."""
    problem: AssignmentProblem = model._problem
    out: dict[int, int] = {}
    for p, var in model.x.items():
        if var.value is not None and var.value > 0.5:
            out[problem.pairs[p].job] = problem.pairs[p].shift
    return out


def objective_of(problem: AssignmentProblem, shift_of_job: Mapping[int, int]) -> float:
    """The model's objective for an assignment (to compare the greedy and the exact answer)."""
    weight = {(p.job, p.shift): p for p in problem.pairs}
    load = [0.0] * len(problem.shift_minutes)
    total = 0.0
    for j, k in shift_of_job.items():
        p = weight[(j, k)]
        total += p.weight
        load[k] += p.load_minutes
    u = max(((problem.fixed_minutes[k] + load[k]) / max(problem.shift_minutes[k], 1.0)
             for k in problem.pairs_by_shift), default=0.0)
    return total - problem.balance_weight * u


def greedy_assignment(problem: AssignmentProblem) -> dict[int, int]:
    """Pairs by weight, best first, while the shift's capacity and deadlines allow (the fallback)."""
    load = [0.0] * len(problem.shift_minutes)
    deadline_load = [0.0] * len(problem.deadlines)
    deadlines_of_pair: dict[int, list[int]] = {}
    for d, (_, _, _, members) in enumerate(problem.deadlines):
        for p in members:
            deadlines_of_pair.setdefault(p, []).append(d)
    out: dict[int, int] = {}
    for p in sorted(range(len(problem.pairs)), key=lambda p: -problem.pairs[p].weight):
        pair = problem.pairs[p]
        if pair.job in out or load[pair.shift] + pair.load_minutes > problem.capacity_minutes[pair.shift] + 1e-9:
            continue
        ds = deadlines_of_pair.get(p, [])
        if any(deadline_load[d] + pair.load_minutes > problem.deadlines[d][2] + 1e-9 for d in ds):
            continue
        out[pair.job] = pair.shift
        load[pair.shift] += pair.load_minutes
        for d in ds:
            deadline_load[d] += pair.load_minutes
    return out


def solve_assignment(problem: AssignmentProblem, *, time_limit_seconds: float = 30.0, mip_gap: float = 0.0,
                     executable: str = "cbc") -> AssignmentResult:
    """Assign jobs to shifts with CBC; if CBC is missing or fails, with the greedy rule (flagged).

    Raises
    ------
    ValueError
        If ``time_limit_seconds`` is not positive or ``mip_gap`` is outside [0, 1).
    """
    if not time_limit_seconds > 0:
        raise ValueError(f"time_limit_seconds must be > 0 (got {time_limit_seconds})")
    if not 0 <= mip_gap < 1:
        raise ValueError(f"mip_gap must be in [0, 1) (got {mip_gap})")
    started = time.perf_counter()
    if not problem.pairs:
        return AssignmentResult({}, "optimal", "no movable job has an eligible technician", 0.0, 0.0, 0)
    try:
        model = build_model(problem)
        status = solve_model(model, time_limit_seconds=time_limit_seconds, mip_gap=mip_gap, executable=executable)
        chosen = extract(model)
    except AssignmentSolverError as exc:
        logger.error("assignment model not solved, using the greedy assignment: %s", exc)
        chosen = greedy_assignment(problem)
        return AssignmentResult(chosen, "greedy_fallback", f"{exc}; greedy assignment used",
                                objective_of(problem, chosen), time.perf_counter() - started, len(problem.pairs))
    message = "" if status == "optimal" else (
        f"CBC hit the {time_limit_seconds:g} s time limit: the best feasible assignment found is used")
    return AssignmentResult(chosen, status, message, objective_of(problem, chosen), time.perf_counter() - started,
                            len(problem.pairs))
