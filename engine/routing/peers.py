"""VROOM and OR-Tools on our routing problems: the peers of the benchmarks, and VROOM as the optimiser's start.

Both take a :class:`engine.routing.problem.Problem` (normalised here) and return visit orders per technician
index; the caller times them with our own double-precision scheduler. Durations are integer ticks
(``PEER_SCALE`` per minute, rounded up, as in our solver); costs are travel minutes rounded to nearest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

PEER_SCALE = 1000


def vroom_available() -> bool:
    try:
        import vroom  # noqa: F401
    except ImportError:
        return False
    return True


def _ticks(problem: Any) -> tuple[Any, Any, Any]:
    """The travel table, integer durations (clock, rounded up) and costs (travel, rounded) as int64 arrays."""
    import numpy as np

    from engine.routing.problem import travel_table

    table = travel_table(problem)
    dur = np.ceil(table.clock * PEER_SCALE - 1e-7).astype(np.int64)
    cost = np.rint(table.minutes * PEER_SCALE).astype(np.int64)
    return table, dur, cost


def _skill_ids(problem: Any) -> tuple[list[set[int]], list[set[int]]]:
    """Capabilities as VROOM's integer skills; a job limited to some technicians gets a skill only they have."""
    names: dict[Any, int] = {}

    def sid(x: Any) -> int:
        return names.setdefault(x, len(names) + 1)

    job_sets = []
    for j in problem.jobs:
        s = {sid(x) for x in j.skills}
        if j.technicians:
            s.add(sid(("only", j.technicians)))
        job_sets.append(s)
    tech_sets = []
    for t in problem.technicians:
        s = {sid(x) for x in t.skills}
        s |= {sid(("only", j.technicians)) for j in problem.jobs if j.technicians and t.id in j.technicians}
        tech_sets.append(s)
    return tech_sets, job_sets


def _priorities(problem: Any) -> list[int]:
    top = max((j.weight for j in problem.jobs), default=0.0) or 1.0
    return [100 if j.pinned is not None else max(0, min(100, int(round(100 * j.weight / top))))
            for j in problem.jobs]


def run_vroom(problem: Any, time_limit: float, exploration: int = 5, only: Sequence[int] | None = None
              ) -> dict[int, list[int]]:
    """VROOM on the problem: skills, technicians allowed, several windows, shifts from home, priorities from
    the jobs' weights (value x (1 + priority)), travel policies through the clock matrix. Not expressible: a
    maximum working time. ``only``: the job indices to give it (default all)."""
    from datetime import timedelta

    import vroom

    from engine.routing.problem import normalise

    problem = normalise(problem)
    table, dur, cost = _ticks(problem)
    inp = vroom.Input()
    inp.set_durations_matrix("car", dur)
    inp.set_costs_matrix("car", cost)
    tech_sets, job_sets = _skill_ids(problem)
    for k, tech in enumerate(problem.technicians):
        if tech.shift[1] <= tech.shift[0]:
            continue
        inp.add_vehicle(vroom.Vehicle(
            k, start=table.start_node(k), end=table.end_node(k), skills=tech_sets[k],
            time_window=vroom.TimeWindow(int(math.ceil(tech.shift[0] * PEER_SCALE)),
                                         int(tech.shift[1] * PEER_SCALE))))
    prio = _priorities(problem)
    for j in range(len(problem.jobs)) if only is None else only:
        job = problem.jobs[j]
        windows = [vroom.TimeWindow(int(math.ceil(a * PEER_SCALE - 1e-7)), max(int(b * PEER_SCALE),
                                                                               int(math.ceil(a * PEER_SCALE - 1e-7))))
                   for a, b in job.time_windows]
        inp.add_job(vroom.Job(j + 1, table.job_node(j), default_service=int(math.ceil(job.duration * PEER_SCALE)),
                              skills=job_sets[j], priority=prio[j], time_windows=windows))
    sol = inp.solve(exploration_level=exploration, nb_threads=1, timeout=timedelta(seconds=time_limit))
    orders: dict[int, list[int]] = {}
    for row in sol.routes.itertuples():
        if row.type == "job":
            orders.setdefault(int(row.vehicle_id), []).append(int(row.id) - 1)
    return orders


def run_ortools(problem: Any, time_limit: float) -> dict[int, list[int]]:
    """OR-Tools routing (guided local search): skills and allowed technicians as allowed vehicles, several
    windows (the gaps removed from the time variable), shifts from home, the maximum working time as a span
    limit, prize-collecting through disjunction penalties (our prizes)."""
    import numpy as np
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    from engine.routing.check import allowed
    from engine.routing.problem import normalise

    problem = normalise(problem)
    table, dur_arr, cost_arr = _ticks(problem)
    dur, cost = dur_arr.tolist(), cost_arr.tolist()  # plain ints for the Python callbacks
    m, n = len(problem.technicians), len(problem.jobs)
    starts = [table.start_node(k) for k in range(m)]
    ends = [table.end_node(k) for k in range(m)]
    manager = pywrapcp.RoutingIndexManager(2 * m + n, m, starts, ends)
    routing = pywrapcp.RoutingModel(manager)
    service = [0] * (2 * m) + [int(math.ceil(j.duration * PEER_SCALE)) for j in problem.jobs]
    cost_cb = routing.RegisterTransitCallback(lambda a, b: cost[manager.IndexToNode(a)][manager.IndexToNode(b)])
    time_cb = routing.RegisterTransitCallback(
        lambda a, b: service[manager.IndexToNode(a)] + dur[manager.IndexToNode(a)][manager.IndexToNode(b)])
    routing.SetArcCostEvaluatorOfAllVehicles(cost_cb)
    horizon = int(max(max(t.shift[1] for t in problem.technicians),
                      max((b for j in problem.jobs for _, b in j.time_windows), default=0)) * PEER_SCALE) + 1
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    dim = routing.GetDimensionOrDie("time")
    mins = np.asarray(cost, dtype=float)
    job_nodes = [table.job_node(j) for j in range(n)]
    reach = float(mins[:, job_nodes].max() + mins[job_nodes, :].max()) + 1 if n else 1.0
    positive = [j.weight for j in problem.jobs if j.weight > 0] or [1.0]
    for j, job in enumerate(problem.jobs):
        idx = manager.NodeToIndex(table.job_node(j))
        windows = [(int(math.ceil(a * PEER_SCALE - 1e-7)), int(b * PEER_SCALE)) for a, b in job.time_windows]
        windows = [(a, max(a, b)) for a, b in windows]
        if windows:
            dim.CumulVar(idx).SetRange(windows[0][0], windows[-1][1])
            for (_, b1), (a2, _) in zip(windows, windows[1:], strict=False):
                if a2 > b1 + 1:
                    dim.CumulVar(idx).RemoveInterval(b1 + 1, a2 - 1)
        banned = [k for k, t in enumerate(problem.technicians) if not allowed(t, job)]
        if banned:  # (SetAllowedVehiclesForIndex does not take a Python list in this OR-Tools build)
            routing.VehicleVar(idx).RemoveValues(banned)
        if job.pinned is None:
            routing.AddDisjunction([idx], int(max(job.weight, 0) / min(positive) * reach))
    for k, tech in enumerate(problem.technicians):
        dim.CumulVar(routing.Start(k)).SetRange(int(math.ceil(tech.shift[0] * PEER_SCALE)),
                                                max(int(tech.shift[1] * PEER_SCALE), 0))
        dim.CumulVar(routing.End(k)).SetRange(int(math.ceil(tech.shift[0] * PEER_SCALE)),
                                              max(int(tech.shift[1] * PEER_SCALE), 0))
        if tech.max_work_minutes is not None:
            dim.SetSpanUpperBoundForVehicle(int(tech.max_work_minutes * PEER_SCALE), k)
        routing.AddVariableMinimizedByFinalizer(dim.CumulVar(routing.Start(k)))
        routing.AddVariableMinimizedByFinalizer(dim.CumulVar(routing.End(k)))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(int(time_limit * 1000))
    sol = routing.SolveWithParameters(params)
    orders: dict[int, list[int]] = {}
    if sol is None:
        return orders
    for k in range(m):
        idx = sol.Value(routing.NextVar(routing.Start(k)))
        while not routing.IsEnd(idx):
            orders.setdefault(k, []).append(manager.IndexToNode(idx) - 2 * m)
            idx = sol.Value(routing.NextVar(idx))
    return orders


# ---------------------------------------------------------------- a peer's orders as an answer


def plan_answer(problem: Any, orders: dict[int, list[int]], runtime: float, status: str = "peer",
                left_out: str = "not served", reasons: dict[int, str] | None = None) -> Any:
    """Time ``orders`` (technician index -> job indices) with our scheduler; routes it rejects are dropped.

    Every job not served is unassigned: with the screening's reason when no technician can do it alone
    (``engine.routing.solver.job_refusal``), else ``reasons[j]`` or ``left_out``."""
    from engine.routing.check import schedule_route
    from engine.routing.greedy import Plan
    from engine.routing.problem import Unassigned, normalise, travel_table
    from engine.routing.solver import answer_from_plan, job_refusal, technician_kinds

    problem = normalise(problem)
    table = travel_table(problem)
    given = {t: order for t, order in orders.items() if order}
    kept = {t: order for t, order in given.items() if not isinstance(schedule_route(problem, table, t, order), str)}
    broken = len(given) - len(kept)
    plan = Plan(problem, table, kept)
    served = {j for order in kept.values() for j in order}
    kinds = technician_kinds(problem)
    unassigned = [Unassigned(j.id, job_refusal(problem, table, k, kinds) or (reasons or {}).get(k, left_out))
                  for k, j in enumerate(problem.jobs) if k not in served]
    return answer_from_plan(problem, plan, unassigned, status, runtime,
                            [f"{broken} routes broke the rules and were dropped"] if broken else [])


def capped_orders(problem: Any, orders: dict[int, list[int]]) -> dict[int, list[int]]:
    """A peer's orders with the stops that break our rules (the working-time cap) taken out, least valuable
    first (the optimiser's own repair step)."""
    return capped_orders_dropped(problem, orders)[0]


def capped_orders_dropped(problem: Any, orders: dict[int, list[int]]) -> tuple[dict[int, list[int]], list[int]]:
    """:func:`capped_orders` and the job indices taken out."""
    from engine.routing.problem import normalise, travel_table
    from engine.routing.solver import repair_orders

    problem = normalise(problem)
    plan, dropped = repair_orders(problem, travel_table(problem), orders)
    return {t: o for t, o in plan.orders.items() if o}, dropped


def vroom_answer(problem: Any, time_limit: float, exploration: int = 5) -> Any:
    """VROOM's plan of the problem as our answer (``truckroll solve --solver vroom``, ``truckroll bench day``):
    :func:`run_vroom`; when a technician has a maximum working time (which VROOM cannot express), the stops
    over it taken out, least valuable first (:func:`capped_orders`); re-timed by our scheduler
    (:func:`plan_answer`). Status ``"vroom"``; ``runtime_seconds`` covers all of it."""
    import time
    from dataclasses import replace

    from engine.routing.problem import normalise

    t0 = time.perf_counter()
    problem = normalise(problem)
    orders = run_vroom(problem, time_limit, exploration=exploration)
    notes: list[str] = []
    reasons: dict[int, str] = {}
    if any(t.max_work_minutes is not None for t in problem.technicians):
        orders, dropped = capped_orders_dropped(problem, orders)
        reasons = {j: "taken out of VROOM's plan: over the technician's maximum working time (VROOM cannot "
                      "express one)" for j in dropped}
        if dropped:
            notes.append(f"{len(dropped)} stops over a maximum working time taken out of VROOM's plan")
    answer = plan_answer(problem, orders, 0.0, "vroom", left_out="left out by VROOM", reasons=reasons)
    return replace(answer, runtime_seconds=time.perf_counter() - t0, notes=(
        f"VROOM (pyvroom), exploration level {exploration}, {time_limit:g} s", *notes, *answer.notes))
