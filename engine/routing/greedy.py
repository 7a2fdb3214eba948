"""Greedy cheapest insertion in double precision: the fallback plan, the repair step and workload balancing.

Insertion feasibility is checked in O(1) per position with the classic forward earliest-end / backward
latest-start bounds; a stop keeps the time window it was scheduled in, which is conservative for jobs with
several windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.routing.check import EPS, allowed, capacity_ok, schedule_route, window_start
from engine.routing.problem import Problem, Route, TravelTable


@dataclass
class _Bounds:
    nodes: list[int]          # start node, job nodes..., end node
    end_times: list[float]    # earliest end of service at each node (departure for the start node)
    latest: list[float]       # latest start of service keeping the rest feasible (inf for the start)
    load: float


def _bounds(problem: Problem, table: TravelTable, ti: int, jobs: Sequence[int], route: Route) -> _Bounds:
    tech = problem.technicians[ti]
    nodes = [table.start_node(ti)] + [table.job_node(j) for j in jobs] + [table.end_node(ti)]
    end_times = [tech.shift[0]] + [s.end for s in route.stops] + [route.return_time]
    latest = [0.0] * len(nodes)
    latest[-1] = tech.shift[1]
    for k in range(len(nodes) - 2, 0, -1):
        job = problem.jobs[jobs[k - 1]]
        start = route.stops[k - 1].start
        close = next((b for a, b in job.time_windows if a - EPS <= start <= b + EPS), float("inf"))
        latest[k] = min(close, latest[k + 1] - table.clock[nodes[k], nodes[k + 1]] - job.duration)
    latest[0] = float("inf")
    return _Bounds(nodes, end_times, latest, sum(problem.jobs[j].demand for j in jobs))


class Plan:
    """Routes being built: visit orders per technician with their double-precision schedules."""

    def __init__(self, problem: Problem, table: TravelTable, orders: dict[int, list[int]] | None = None) -> None:
        self.problem, self.table = problem, table
        self.orders: dict[int, list[int]] = {t: [] for t in range(len(problem.technicians))}
        self.routes: dict[int, Route] = {}
        self._bounds: dict[int, _Bounds] = {}
        for t, order in (orders or {}).items():
            self.orders[t] = list(order)
        for t in self.orders:
            route = schedule_route(problem, table, t, self.orders[t])
            if isinstance(route, str):
                raise ValueError(f"infeasible starting route: {route}")
            self._set(t, route)

    def _set(self, t: int, route: Route) -> None:
        self.routes[t] = route
        self._bounds[t] = _bounds(self.problem, self.table, t, self.orders[t], route)

    def work_minutes(self, t: int) -> float:
        """Travel on company time + service minutes of technician ``t`` (the utilisation numerator)."""
        return self.routes[t].work_minutes

    def best_insertion(self, j: int, techs: Sequence[int] | None = None) -> tuple[float, int, int] | None:
        """Cheapest feasible (extra travel minutes, technician, position) for job ``j``, or None."""
        job = self.problem.jobs[j]
        u = self.table.job_node(j)
        m, c = self.table.minutes, self.table.clock
        best: tuple[float, int, int] | None = None
        for t in techs if techs is not None else self.orders:
            tech = self.problem.technicians[t]
            if not allowed(tech, job):
                continue
            b = self._bounds[t]
            if not capacity_ok(tech, b.load + job.demand):
                continue
            for k in range(len(b.nodes) - 1):
                p, q = b.nodes[k], b.nodes[k + 1]
                delta = m[p, u] + m[u, q] - m[p, q]
                if best is not None and delta >= best[0]:
                    continue
                if tech.max_work_minutes is not None:
                    legs = c[p, u] + c[u, q] - (c[p, q] if len(b.nodes) > 2 else 0.0)
                    if self.routes[t].work_minutes + legs + job.duration > tech.max_work_minutes + EPS:
                        continue
                start = window_start(job, b.end_times[k] + c[p, u])
                if start is None:
                    continue
                # Arriving at the next node no later than its latest start keeps the rest of the route feasible.
                if start + job.duration + c[u, q] > b.latest[k + 1] + EPS:
                    continue
                best = (delta, t, k)
        return best

    def insert(self, j: int, t: int, k: int) -> bool:
        """Insert job ``j`` at position ``k`` of technician ``t``; False (no change) if it would be infeasible."""
        order = self.orders[t][:k] + [j] + self.orders[t][k:]
        route = schedule_route(self.problem, self.table, t, order)
        if isinstance(route, str):
            return False
        self.orders[t] = order
        self._set(t, route)
        return True

    def remove(self, t: int, k: int) -> bool:
        """Remove the stop at position ``k`` of technician ``t``; False (no change) if that breaks the route."""
        order = self.orders[t][:k] + self.orders[t][k + 1:]
        route = schedule_route(self.problem, self.table, t, order)
        if isinstance(route, str):
            return False
        self.orders[t] = order
        self._set(t, route)
        return True


def greedy_plan(problem: Problem, table: TravelTable, jobs: Sequence[int], plan: Plan | None = None) -> Plan:
    """Insert ``jobs`` one by one at their cheapest feasible place (most valuable, then tightest, first).

    Jobs that fit nowhere stay out of the plan; the caller reports them as unassigned.
    """
    plan = plan or Plan(problem, table)

    def key(j: int) -> tuple[bool, float, float]:
        job = problem.jobs[j]
        close = job.time_windows[-1][1] if job.time_windows else float("inf")
        return (job.pinned is None, -job.weight, close)

    for j in sorted(jobs, key=key):
        spot = plan.best_insertion(j)
        if spot is not None:
            plan.insert(j, spot[1], spot[2])
    return plan


def balance_workload(plan: Plan, travel_budget_minutes: float, max_moves: int = 200) -> int:
    """Move jobs from the busiest technician to others while that lowers the busiest one's working minutes.

    A move is accepted only when the extra travel fits in ``travel_budget_minutes`` (shared over all moves),
    so balancing never costs more than that. Returns the number of moves made.
    """
    moves = 0
    spent = 0.0
    m = plan.table.minutes
    while moves < max_moves:
        work = {t: plan.work_minutes(t) for t in plan.orders}
        busiest = max(work, key=lambda t: work[t])
        nodes = [plan.table.start_node(busiest)] + [plan.table.job_node(j) for j in plan.orders[busiest]]
        nodes.append(plan.table.end_node(busiest))
        best: tuple[float, int, int, int] | None = None  # (new peak, position, target, target position)
        for k, j in enumerate(plan.orders[busiest]):
            p, u, q = nodes[k], nodes[k + 1], nodes[k + 2]
            saving = m[p, u] + m[u, q] - m[p, q]
            others = [t for t in plan.orders if t != busiest and work[t] < work[busiest]]
            spot = plan.best_insertion(j, others)
            if spot is None:
                continue
            delta, target, pos = spot
            extra = delta - saving
            if spent + max(extra, 0.0) > travel_budget_minutes + EPS:
                continue
            job_work = plan.problem.jobs[j].duration
            peak = max(work[busiest] - saving - job_work, work[target] + delta + job_work)
            if peak < work[busiest] - EPS and (best is None or peak < best[0]):
                best = (peak, k, target, pos)
        if best is None:
            break
        _, k, target, pos = best
        j = plan.orders[busiest][k]
        before = plan.routes[busiest].travel_minutes + plan.routes[target].travel_minutes
        if not plan.remove(busiest, k):
            break
        if not plan.insert(j, target, pos):
            plan.insert(j, busiest, k)
            break
        spent += max(plan.routes[busiest].travel_minutes + plan.routes[target].travel_minutes - before, 0.0)
        moves += 1
    return moves
