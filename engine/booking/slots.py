"""The slot optimiser: the value-maximising assignment of jobs to (technician, time slot) pairs.

Problem (issue 3a): technicians with an upsell multiplier, ordered slots, jobs with a value and a first
slot ``min_slot``. Each job is done at most once, each (technician, slot) holds at most one job, the
technician must be available in the slot and eligible for the job, and the slot must be >= ``min_slot``.
Maximise the sum of ``value(job) * multiplier(technician)``.

Because the weight does not depend on the slot, each technician's slots form a chain: a job enters
technician t's chain at t's first available slot >= ``min_slot`` and may then move to any later available
slot. That is a min-cost-flow network, so its LP relaxation is integral (see docs/slots.md). Backends:

- ``flow`` (default): OR-Tools' exact integer min-cost-flow on that network.
- ``pyomo``: the same network as a Pyomo LP solved by CBC (CLP simplex gives a vertex, hence integral,
  optimum); the path for side constraints and the cross-check of ``flow``.
- ``greedy``: the dispatcher's baseline (highest value first, best multiplier, earliest free slot).

Per Egret: ``build_model(problem) -> ConcreteModel``, ``solve_model(model)``, ``extract(model)``; no Pyomo
object leaves the module. ``solve`` picks a backend and never loses work: if the solver is missing or
fails, it returns the greedy plan with status ``fallback_greedy`` and a message saying why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

BACKENDS = ("flow", "pyomo", "greedy")

# Costs go to OR-Tools as integers: weight x COST_SCALE, rounded. With values in cents and multipliers
# to 4 decimals the products are exact multiples of 1e-6, so the rounding is exact; otherwise the plan
# reports a bound on what the rounding can cost (``SlotPlan.gap_bound``).
COST_SCALE = 10**6
INTEGRALITY_TOLERANCE = 1e-6


class SlotSolverError(RuntimeError):
    """The solver is missing, failed, or returned something that is not an acceptable plan."""


# --------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SlotTechnician:
    """A technician: an upsell multiplier (> 0) and the slots in which they are available."""

    id: str
    multiplier: float
    available_slots: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"technician id must be a non-empty string (got {self.id!r})")
        if not _is_number(self.multiplier) or not math.isfinite(self.multiplier) or self.multiplier <= 0:
            raise ValueError(f"technician {self.id}: multiplier must be a finite number > 0 "
                             f"(got {self.multiplier!r})")
        for s in self.available_slots:
            if not _is_int(s):
                raise ValueError(f"technician {self.id}: available_slots must hold integers (got {s!r})")
        object.__setattr__(self, "available_slots", tuple(sorted(set(self.available_slots))))


@dataclass(frozen=True)
class SlotJob:
    """A job: an estimated value (>= 0), the first slot it may take, the technicians who may do it."""

    id: str
    value: float
    min_slot: int
    eligible_technicians: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"job id must be a non-empty string (got {self.id!r})")
        if not _is_number(self.value) or not math.isfinite(self.value) or self.value < 0:
            raise ValueError(f"job {self.id}: value must be a finite number >= 0 (got {self.value!r})")
        if not _is_int(self.min_slot):
            raise ValueError(f"job {self.id}: min_slot must be an integer (got {self.min_slot!r})")
        for t in self.eligible_technicians:
            if not isinstance(t, str):
                raise ValueError(f"job {self.id}: eligible_technicians must hold technician ids (got {t!r})")
        object.__setattr__(self, "eligible_technicians", tuple(dict.fromkeys(self.eligible_technicians)))


@dataclass(frozen=True)
class SlotProblem:
    """A slot-assignment instance. Slots are 0-based indexes ``0 .. slots-1``.

    Raises
    ------
    ValueError
        Naming the field when a slot is out of range, an id is duplicated, or a job names an unknown
        technician.
    """

    slots: int
    technicians: tuple[SlotTechnician, ...]
    jobs: tuple[SlotJob, ...]

    def __post_init__(self) -> None:
        if not _is_int(self.slots) or self.slots < 1:
            raise ValueError(f"slots must be an integer >= 1 (got {self.slots!r})")
        object.__setattr__(self, "technicians", tuple(self.technicians))
        object.__setattr__(self, "jobs", tuple(self.jobs))
        tech_ids: set[str] = set()
        for tech in self.technicians:
            if tech.id in tech_ids:
                raise ValueError(f"technicians: duplicate id {tech.id!r}")
            tech_ids.add(tech.id)
            for s in tech.available_slots:
                if not 0 <= s < self.slots:
                    raise ValueError(f"technician {tech.id}: available_slots has {s}, "
                                     f"outside 0..{self.slots - 1}")
        job_ids: set[str] = set()
        for job in self.jobs:
            if job.id in job_ids:
                raise ValueError(f"jobs: duplicate id {job.id!r}")
            job_ids.add(job.id)
            if not 0 <= job.min_slot < self.slots:
                raise ValueError(f"job {job.id}: min_slot {job.min_slot} outside 0..{self.slots - 1}")
            for t in job.eligible_technicians:
                if t not in tech_ids:
                    raise ValueError(f"job {job.id}: eligible_technicians names unknown technician {t!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlotProblem:
        """Parse the JSON instance format (see docs/slots.md).

        Raises
        ------
        ValueError
            Naming the missing or malformed field.
        """
        if not isinstance(data, Mapping):
            raise ValueError("instance must be a JSON object")
        slots = _field(data, "slots", "instance")
        techs_raw = _list_field(data, "technicians", "instance")
        jobs_raw = _list_field(data, "jobs", "instance")
        technicians = []
        for i, t in enumerate(techs_raw):
            where = f"technicians[{i}]"
            if not isinstance(t, Mapping):
                raise ValueError(f"{where} must be an object")
            technicians.append(SlotTechnician(
                id=_field(t, "id", where),
                multiplier=_field(t, "multiplier", where),
                available_slots=tuple(_list_field(t, "available_slots", where)),
            ))
        jobs = []
        for i, j in enumerate(jobs_raw):
            where = f"jobs[{i}]"
            if not isinstance(j, Mapping):
                raise ValueError(f"{where} must be an object")
            jobs.append(SlotJob(
                id=_field(j, "id", where),
                value=_field(j, "value", where),
                min_slot=_field(j, "min_slot", where),
                eligible_technicians=tuple(_list_field(j, "eligible_technicians", where)),
            ))
        return cls(slots=slots, technicians=tuple(technicians), jobs=tuple(jobs))


@dataclass(frozen=True)
class Assignment:
    """Job ``job`` is done by technician ``technician`` in slot ``slot``."""

    job: str
    technician: str
    slot: int


@dataclass(frozen=True)
class SlotPlan:
    """A solver's answer. It reports its status instead of raising.

    ``status`` is ``optimal`` (proven optimum), ``feasible`` (a time limit stopped the solver; the best
    plan it found), ``greedy`` (the greedy backend was asked for) or ``fallback_greedy`` (the solver was
    missing or failed, ``message`` says how, and the greedy plan is returned instead).
    ``gap_bound`` bounds how far ``objective`` can be below the optimum (0 for a proven optimum with exact
    costs; see ``COST_SCALE``); ``None`` when unknown.
    """

    status: str
    objective: float
    assignments: tuple[Assignment, ...]
    backend: str
    message: str = ""
    gap_bound: float | None = 0.0
    timings_seconds: dict[str, float] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer printed by ``truckroll optimize-slots``."""
        out: dict[str, Any] = {
            "status": self.status,
            "objective": round(self.objective, 6),
            "assignments": [{"job": a.job, "technician": a.technician, "slot": a.slot}
                            for a in self.assignments],
            "backend": self.backend,
        }
        if self.message:
            out["message"] = self.message
        if self.gap_bound is None or self.gap_bound > 0:
            out["gap_bound"] = self.gap_bound
        return out


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _field(data: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in data:
        raise ValueError(f"{where}: missing field {name!r}")
    return data[name]


def _list_field(data: Mapping[str, Any], name: str, where: str) -> list[Any]:
    value = _field(data, name, where)
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where}: field {name!r} must be a list")
    return list(value)


# ------------------------------------------------------------------------------------ sparse index


@dataclass(frozen=True)
class _Network:
    """Sparse index sets for the chain network, computed once per problem.

    A chain node is (technician, position in that technician's sorted available slots). A pair p is a
    usable (job, technician) combination; it enters the technician's chain at ``pair_node[p]``, the node
    of the technician's first available slot >= the job's ``min_slot``. Pairs with no such slot are left
    out: they can never be assigned.
    """

    node_tech: list[int]          # chain node -> technician index
    node_slot: list[int]          # chain node -> slot
    node_has_next: list[bool]     # chain node -> a later chain node of the same technician exists
    pair_job: list[int]
    pair_tech: list[int]
    pair_node: list[int]
    pair_weight: list[float]
    pairs_by_job: list[list[int]]
    pairs_by_node: list[list[int]]


def _network(problem: SlotProblem) -> _Network:
    tech_index = {t.id: i for i, t in enumerate(problem.technicians)}
    node_tech: list[int] = []
    node_slot: list[int] = []
    node_has_next: list[bool] = []
    # entry_node[t][k]: chain node of t's first available slot >= k, or -1
    entry_node: list[list[int]] = []
    for ti, tech in enumerate(problem.technicians):
        first = len(node_slot)
        avail = tech.available_slots
        for pos, s in enumerate(avail):
            node_tech.append(ti)
            node_slot.append(s)
            node_has_next.append(pos + 1 < len(avail))
        table = [-1] * problem.slots
        pos = len(avail)  # walks down to the first position with avail[pos] >= k
        for k in range(problem.slots - 1, -1, -1):
            while pos > 0 and avail[pos - 1] >= k:
                pos -= 1
            table[k] = first + pos if pos < len(avail) else -1
        entry_node.append(table)
    pair_job: list[int] = []
    pair_tech: list[int] = []
    pair_node: list[int] = []
    pair_weight: list[float] = []
    pairs_by_job: list[list[int]] = [[] for _ in problem.jobs]
    pairs_by_node: list[list[int]] = [[] for _ in node_slot]
    multipliers = [t.multiplier for t in problem.technicians]
    for ji, job in enumerate(problem.jobs):
        for tid in job.eligible_technicians:
            ti = tech_index[tid]
            node = entry_node[ti][job.min_slot]
            if node < 0:
                continue
            p = len(pair_job)
            pair_job.append(ji)
            pair_tech.append(ti)
            pair_node.append(node)
            pair_weight.append(job.value * multipliers[ti])
            pairs_by_job[ji].append(p)
            pairs_by_node[node].append(p)
    return _Network(node_tech, node_slot, node_has_next, pair_job, pair_tech, pair_node, pair_weight,
                    pairs_by_job, pairs_by_node)


def _assign_slots(problem: SlotProblem, jobs_by_tech: Mapping[int, Sequence[int]]) -> tuple[Assignment, ...]:
    """Turn "technician t does these jobs" into concrete slots.

    Per technician, jobs in increasing ``min_slot`` take the earliest free available slot >= it. This
    never fails when the job set fits the chain (the flow is feasible): if job j found no slot, let s* be
    the last free available slot before min_slot(j). Every job holding a slot after s* has min_slot > s*
    (else it would have taken s* or earlier, which was free when it was placed), so those jobs plus j
    exceed the available slots after s* -- violating the chain's capacity on the suffix after s*.

    Raises
    ------
    SlotSolverError
        If a job set does not fit (a solver returned an infeasible flow).
    """
    out: list[Assignment] = []
    for ti, job_indexes in jobs_by_tech.items():
        tech = problem.technicians[ti]
        free = list(tech.available_slots)  # sorted; short (<= slots), so list.pop is cheap
        for ji in sorted(job_indexes, key=lambda j: (problem.jobs[j].min_slot, j)):
            job = problem.jobs[ji]
            pos = _bisect_left(free, job.min_slot)
            if pos == len(free):
                raise SlotSolverError(f"technician {tech.id} cannot fit job {job.id}: the flow is infeasible")
            out.append(Assignment(job=job.id, technician=tech.id, slot=free.pop(pos)))
    out.sort(key=lambda a: (a.technician, a.slot))
    return tuple(out)


def _bisect_left(xs: list[int], x: int) -> int:
    lo, hi = 0, len(xs)
    while lo < hi:
        mid = (lo + hi) // 2
        if xs[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def plan_objective(problem: SlotProblem, assignments: Sequence[Assignment]) -> float:
    """The sum of value x multiplier over ``assignments``."""
    mult = {t.id: t.multiplier for t in problem.technicians}
    value = {j.id: j.value for j in problem.jobs}
    return math.fsum(value[a.job] * mult[a.technician] for a in assignments)


def check_plan(problem: SlotProblem, assignments: Sequence[Assignment]) -> None:
    """Check every rule of the problem on ``assignments``.

    Raises
    ------
    ValueError
        Naming the first broken rule.
    """
    techs = {t.id: t for t in problem.technicians}
    jobs = {j.id: j for j in problem.jobs}
    seen_jobs: set[str] = set()
    seen_cells: set[tuple[str, int]] = set()
    for a in assignments:
        job, tech = jobs.get(a.job), techs.get(a.technician)
        if job is None or tech is None:
            raise ValueError(f"assignment {a}: unknown job or technician")
        if a.job in seen_jobs:
            raise ValueError(f"job {a.job} is assigned more than once")
        if (a.technician, a.slot) in seen_cells:
            raise ValueError(f"technician {a.technician} has two jobs in slot {a.slot}")
        if a.technician not in job.eligible_technicians:
            raise ValueError(f"technician {a.technician} is not eligible for job {a.job}")
        if a.slot not in tech.available_slots:
            raise ValueError(f"technician {a.technician} is not available in slot {a.slot}")
        if a.slot < job.min_slot:
            raise ValueError(f"job {a.job} is in slot {a.slot}, before its min_slot {job.min_slot}")
        seen_jobs.add(a.job)
        seen_cells.add((a.technician, a.slot))


# ------------------------------------------------------------------------------------------ greedy


def solve_greedy(problem: SlotProblem) -> SlotPlan:
    """The dispatcher's baseline: jobs by value (highest first), each to the eligible technician with the
    highest multiplier who still has a free available slot >= its ``min_slot``, in the earliest such slot.
    """
    tech_index = {t.id: i for i, t in enumerate(problem.technicians)}
    free = [list(t.available_slots) for t in problem.technicians]
    out: list[Assignment] = []
    order = sorted(range(len(problem.jobs)), key=lambda j: (-problem.jobs[j].value, j))
    for ji in order:
        job = problem.jobs[ji]
        candidates = sorted((tech_index[t] for t in job.eligible_technicians),
                            key=lambda t: (-problem.technicians[t].multiplier, t))
        for ti in candidates:
            pos = _bisect_left(free[ti], job.min_slot)
            if pos < len(free[ti]):
                out.append(Assignment(job.id, problem.technicians[ti].id, free[ti].pop(pos)))
                break
    out.sort(key=lambda a: (a.technician, a.slot))
    return SlotPlan(status="greedy", objective=plan_objective(problem, out), assignments=tuple(out),
                    backend="greedy", gap_bound=None)


# ------------------------------------------------------------------------------------- flow backend


def solve_flow(problem: SlotProblem) -> SlotPlan:
    """The exact backend: OR-Tools' integer min-cost-flow on the chain network.

    Nodes: one per job (supply 1), one per (technician, available slot), one sink (demand = #jobs).
    Arcs: job -> its entry node on each eligible technician's chain (capacity 1, cost -weight); chain
    node -> next chain node of the same technician (capacity #jobs, cost 0); chain node -> sink
    (capacity 1); job -> sink (capacity 1, cost 0: the job stays unassigned).

    Raises
    ------
    SlotSolverError
        If OR-Tools is missing or does not report an optimum.
    """
    import time

    import numpy as np

    started = time.perf_counter()
    try:
        from ortools.graph.python import min_cost_flow
    except ImportError as exc:  # pragma: no cover - ortools is a dependency
        raise SlotSolverError(f"OR-Tools is not installed ({exc})") from exc
    net = _network(problem)
    built_index = time.perf_counter()
    n_jobs, n_nodes, n_pairs = len(problem.jobs), len(net.node_slot), len(net.pair_job)
    sink = n_jobs + n_nodes
    weights = np.asarray(net.pair_weight, dtype=np.float64)
    scale = _cost_scale(float(weights.max()) if n_pairs else 0.0, n_jobs + n_nodes + 1)
    scaled = weights * scale
    costs = -np.rint(scaled).astype(np.int64)
    rounding = float(np.abs(scaled + costs).max()) / scale if n_pairs else 0.0
    chain_from = np.flatnonzero(np.asarray(net.node_has_next, dtype=bool))
    jobs = np.arange(n_jobs, dtype=np.int64)
    nodes = np.arange(n_nodes, dtype=np.int64)
    tails = np.concatenate([np.asarray(net.pair_job, dtype=np.int64), n_jobs + chain_from,
                            n_jobs + nodes, jobs])
    heads = np.concatenate([n_jobs + np.asarray(net.pair_node, dtype=np.int64), n_jobs + chain_from + 1,
                            np.full(n_nodes, sink, dtype=np.int64), np.full(n_jobs, sink, dtype=np.int64)])
    caps = np.concatenate([np.ones(n_pairs, dtype=np.int64), np.full(len(chain_from), n_jobs, dtype=np.int64),
                           np.ones(n_nodes + n_jobs, dtype=np.int64)])
    unit_costs = np.concatenate([costs, np.zeros(len(chain_from) + n_nodes + n_jobs, dtype=np.int64)])
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, unit_costs)
    mcf.set_nodes_supplies(np.append(jobs, sink), np.append(np.ones(n_jobs, dtype=np.int64), -n_jobs))
    built = time.perf_counter()
    status = mcf.solve()
    solved = time.perf_counter()
    if status != mcf.OPTIMAL:
        raise SlotSolverError(f"OR-Tools min-cost-flow ended with status {status}")
    used = np.flatnonzero(mcf.flows(np.arange(n_pairs, dtype=np.int64)) > 0)
    jobs_by_tech: dict[int, list[int]] = {}
    for p in used:
        jobs_by_tech.setdefault(net.pair_tech[p], []).append(net.pair_job[p])
    assignments = _assign_slots(problem, jobs_by_tech)
    done = time.perf_counter()
    # Both the found plan and the true optimum lose at most `rounding` per assignment to the rounding.
    # Below 1e-9 per arc the "error" is float noise in weight x scale, not a real rounding.
    gap = 2 * rounding * min(n_jobs, n_nodes) if rounding > 1e-9 else 0.0
    return SlotPlan(status="optimal", objective=plan_objective(problem, assignments), assignments=assignments,
                    backend="flow", gap_bound=gap,
                    timings_seconds={"index": built_index - started, "build": built - built_index,
                                     "solve": solved - built, "extract": done - solved})


def _cost_scale(max_weight: float, n_nodes: int) -> int:
    """The largest power of ten <= COST_SCALE that keeps OR-Tools' internal cost arithmetic in int64.

    OR-Tools multiplies costs by (#nodes + 1) for cost scaling and sums them along paths, so keep
    max cost x nodes^2 well under 2^62.
    """
    scale = COST_SCALE
    limit = 2**62 / max(1, n_nodes) ** 2
    while scale > 1 and max_weight * scale > limit:
        scale //= 10
    return scale


# ------------------------------------------------------------------------------------ pyomo backend


def build_model(problem: SlotProblem) -> Any:
    """The chain network as a Pyomo LP (the relaxation is integral: the matrix is a network matrix).

    Variables: ``x[p]`` in [0, 1], job-technician pair p is used; ``to_sink[n]`` in [0, 1], chain node n's
    slot is filled; ``carry[n]`` >= 0, jobs passed on from node n to the technician's next available slot.

    Returns
    -------
    pyomo.environ.ConcreteModel
        With the sparse index kept on ``model._network`` for ``extract``.
    """
    import pyomo.environ as pyo
    from pyomo.core.expr.numeric_expr import LinearExpression

    net = _network(problem)
    m = pyo.ConcreteModel(name="slot_assignment")
    m._network = net
    m.PAIRS = pyo.RangeSet(0, len(net.pair_job) - 1)
    m.NODES = pyo.RangeSet(0, len(net.node_slot) - 1)
    m.CARRY = pyo.Set(initialize=[n for n, nxt in enumerate(net.node_has_next) if nxt], ordered=False)
    m.JOBS = pyo.Set(initialize=[j for j, ps in enumerate(net.pairs_by_job) if len(ps) > 1], ordered=False)
    m.x = pyo.Var(m.PAIRS, bounds=(0, 1))
    m.to_sink = pyo.Var(m.NODES, bounds=(0, 1))
    m.carry = pyo.Var(m.CARRY, bounds=(0, None))

    x, to_sink, carry = m.x, m.to_sink, m.carry
    # LinearExpression skips Pyomo's generic expression building: the model is ~100k variables.
    m.job_once = pyo.Constraint(m.JOBS, rule=lambda _, j: LinearExpression(
        constant=0, linear_coefs=[1] * len(net.pairs_by_job[j]),
        linear_vars=[x[p] for p in net.pairs_by_job[j]]) <= 1)

    def balance(_: Any, n: int) -> Any:
        vars_ = [x[p] for p in net.pairs_by_node[n]]
        coefs = [1] * len(vars_)
        if n > 0 and net.node_has_next[n - 1] and net.node_tech[n - 1] == net.node_tech[n]:
            vars_.append(carry[n - 1])
            coefs.append(1)
        vars_.append(to_sink[n])
        coefs.append(-1)
        if net.node_has_next[n]:
            vars_.append(carry[n])
            coefs.append(-1)
        return LinearExpression(constant=0, linear_coefs=coefs, linear_vars=vars_) == 0

    m.balance = pyo.Constraint(m.NODES, rule=balance)
    m.value = pyo.Objective(expr=LinearExpression(constant=0, linear_coefs=list(net.pair_weight),
                                                  linear_vars=[x[p] for p in m.PAIRS]), sense=pyo.maximize)
    return m


def solve_model(model: Any, time_limit_seconds: float | None = None, mip_gap: float = 0.0,
                solver: str = "cbc") -> str:
    """Solve ``model`` with CBC; load the solution. Returns ``optimal`` or ``feasible`` (time limit).

    If the LP optimum is not integral (CBC returned a non-vertex point, which its simplex does not do), the
    pair variables are made binary and the model is solved again as a MIP.

    Raises
    ------
    SlotSolverError
        If the solver is missing, fails, or stops without a usable plan.
    """
    import pyomo.environ as pyo

    from engine import cbc

    status = "optimal"
    for attempt in ("lp", "mip"):
        try:
            got = cbc.solve(model, executable=solver, time_limit_seconds=time_limit_seconds, mip_gap=mip_gap)
        except cbc.CbcError as exc:
            raise SlotSolverError(str(exc)) from exc
        if got == cbc.TIME_LIMIT and attempt == "lp":
            raise SlotSolverError(f"{solver} stopped at its time limit before the LP optimum")
        status = "optimal" if got == cbc.OPTIMAL else "feasible"
        if all(_near_integer(v.value) for v in model.x.values()):
            return status
        logger.warning("LP optimum is fractional; solving again with binary pair variables")
        for v in model.x.values():
            v.domain = pyo.Binary
    raise SlotSolverError(f"{solver} returned a fractional plan")


def _near_integer(value: float | None) -> bool:
    return value is not None and abs(value - round(value)) <= INTEGRALITY_TOLERANCE


def extract(model: Any) -> dict[int, list[int]]:
    """The used pairs of a solved model as ``{technician index: [job indexes]}`` (plain data)."""
    net: _Network = model._network
    jobs_by_tech: dict[int, list[int]] = {}
    for p, var in model.x.items():
        if var.value is not None and var.value > 0.5:
            jobs_by_tech.setdefault(net.pair_tech[p], []).append(net.pair_job[p])
    return jobs_by_tech


def solve_pyomo(problem: SlotProblem, time_limit_seconds: float | None = None, mip_gap: float = 0.0,
                solver: str = "cbc") -> SlotPlan:
    """``build_model`` -> ``solve_model`` -> ``extract`` -> concrete slots.

    Raises
    ------
    SlotSolverError
        See ``solve_model``.
    """
    import time

    started = time.perf_counter()
    if not problem.jobs or not any(t.available_slots for t in problem.technicians):
        return SlotPlan(status="optimal", objective=0.0, assignments=(), backend="pyomo")
    model = build_model(problem)
    if len(model.PAIRS) == 0:
        return SlotPlan(status="optimal", objective=0.0, assignments=(), backend="pyomo")
    built = time.perf_counter()
    status = solve_model(model, time_limit_seconds=time_limit_seconds, mip_gap=mip_gap, solver=solver)
    solved = time.perf_counter()
    assignments = _assign_slots(problem, extract(model))
    done = time.perf_counter()
    return SlotPlan(status=status, objective=plan_objective(problem, assignments), assignments=assignments,
                    backend="pyomo", gap_bound=0.0 if status == "optimal" else None,
                    message="" if status == "optimal" else "time limit reached: best feasible plan found",
                    timings_seconds={"build": built - started, "solve": solved - built,
                                     "extract": done - solved})


# -------------------------------------------------------------------------------------------- entry


def solve(problem: SlotProblem, backend: str = "flow", time_limit_seconds: float | None = None,
          mip_gap: float = 0.0, cbc_executable: str = "cbc") -> SlotPlan:
    """The slot plan for ``problem`` from ``backend`` (``flow``, ``pyomo`` or ``greedy``).

    Never loses work: if the backend's solver is missing or fails, the greedy plan is returned with status
    ``fallback_greedy`` and a message saying why.

    Parameters
    ----------
    time_limit_seconds, mip_gap:
        Passed to CBC (``pyomo`` backend). The ``flow`` backend is exact and has no time limit.
    cbc_executable:
        The CBC binary (``settings.cbc_executable``) for the ``pyomo`` backend.

    Raises
    ------
    ValueError
        If ``backend`` is unknown or ``time_limit_seconds`` / ``mip_gap`` is out of range.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
    if time_limit_seconds is not None and not time_limit_seconds > 0:
        raise ValueError(f"time_limit_seconds must be > 0 (got {time_limit_seconds})")
    if not 0 <= mip_gap < 1:
        raise ValueError(f"mip_gap must be in [0, 1) (got {mip_gap})")
    if backend == "greedy":
        return solve_greedy(problem)
    try:
        if backend == "flow":
            return solve_flow(problem)
        return solve_pyomo(problem, time_limit_seconds=time_limit_seconds, mip_gap=mip_gap, solver=cbc_executable)
    except SlotSolverError as exc:
        logger.error("slot optimiser backend %s failed, using the greedy plan: %s", backend, exc)
        greedy = solve_greedy(problem)
        return SlotPlan(status="fallback_greedy", objective=greedy.objective, assignments=greedy.assignments,
                        backend="greedy", message=f"{backend} backend failed ({exc}); greedy plan returned",
                        gap_bound=None)
