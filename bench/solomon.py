"""``truckroll bench solomon``: the route optimiser on the Solomon VRPTW set, against best-known solutions.

Each instance runs in its own worker process (at most ``--workers`` at a time; 2 on the 2-core development
machine). Distances are recomputed in double precision from the returned routes and every plan goes through
the independent feasibility checker. ``--peers vroom,ortools`` runs VROOM (exploration level 5) and OR-Tools
(guided local search, same time limit) on the same instances in the same run; ``--scaling 200,400,1000``
adds randomly generated Gehring-Homberger-like instances of those sizes.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import typer

from cli.app import bench_app, console, fail

DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "solomon"
PEER_SCALE = 1000  # integer ticks per minute for the peers (durations rounded up, as in our solver)


def instance_class(name: str) -> str:
    """Solomon class of an instance name: ``RC104`` -> ``RC1``."""
    letters = name.rstrip("0123456789")
    return letters + name[len(letters)]


def _scaled(problem: Any) -> tuple[Any, list[list[int]]]:
    from engine.routing.problem import travel_table

    table = travel_table(problem)
    nodes = [0] + [table.job_node(j) for j in range(len(problem.jobs))]
    minutes = table.minutes[[[a] for a in nodes], nodes]
    return table, [[int(math.ceil(x * PEER_SCALE - 1e-7)) for x in row] for row in minutes]


def _run_vroom(problem: Any, time_limit: float) -> dict[int, list[int]]:
    import vroom

    _, durations = _scaled(problem)
    inp = vroom.Input()
    inp.set_durations_matrix("car", durations)
    cap = problem.technicians[0].capacity
    for k, tech in enumerate(problem.technicians):
        inp.add_vehicle(vroom.Vehicle(k, start=0, end=0, capacity=[int(cap)],
                                      time_window=vroom.TimeWindow(int(tech.shift[0] * PEER_SCALE),
                                                                   int(tech.shift[1] * PEER_SCALE))))
    for j, job in enumerate(problem.jobs):
        a, b = job.time_windows[0]
        inp.add_job(vroom.Job(j + 1, j + 1, default_service=int(math.ceil(job.duration * PEER_SCALE)),
                              delivery=[int(job.demand)],
                              time_windows=[vroom.TimeWindow(int(math.ceil(a * PEER_SCALE)),
                                                             int(b * PEER_SCALE))]))
    sol = inp.solve(exploration_level=5, nb_threads=1)
    orders: dict[int, list[int]] = {}
    for row in sol.routes.itertuples():
        if row.type == "job":
            orders.setdefault(int(row.vehicle_id), []).append(int(row.id) - 1)
    return orders


def _run_ortools(problem: Any, time_limit: float) -> dict[int, list[int]]:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    table, durations = _scaled(problem)
    n, fleet = len(durations), len(problem.technicians)
    costs = [[int(round(x * PEER_SCALE)) for x in row]
             for row in table.minutes[[[a] for a in [0] + [table.job_node(j) for j in range(n - 1)]],
                                      [0] + [table.job_node(j) for j in range(n - 1)]]]
    service = [0] + [int(math.ceil(j.duration * PEER_SCALE)) for j in problem.jobs]
    manager = pywrapcp.RoutingIndexManager(n, fleet, 0)
    routing = pywrapcp.RoutingModel(manager)
    cost_cb = routing.RegisterTransitCallback(
        lambda a, b: costs[manager.IndexToNode(a)][manager.IndexToNode(b)])
    time_cb = routing.RegisterTransitCallback(
        lambda a, b: service[manager.IndexToNode(a)] + durations[manager.IndexToNode(a)][manager.IndexToNode(b)])
    routing.SetArcCostEvaluatorOfAllVehicles(cost_cb)
    shift = problem.technicians[0].shift
    horizon = int(shift[1] * PEER_SCALE)
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    dim = routing.GetDimensionOrDie("time")
    for j, job in enumerate(problem.jobs):
        a, b = job.time_windows[0]
        dim.CumulVar(manager.NodeToIndex(j + 1)).SetRange(int(math.ceil(a * PEER_SCALE)), int(b * PEER_SCALE))
    for v in range(fleet):
        dim.CumulVar(routing.Start(v)).SetRange(int(shift[0] * PEER_SCALE), horizon)
        dim.CumulVar(routing.End(v)).SetRange(int(shift[0] * PEER_SCALE), horizon)
    demand = [0] + [int(j.demand) for j in problem.jobs]
    dem_cb = routing.RegisterUnaryTransitCallback(lambda a: demand[manager.IndexToNode(a)])
    routing.AddDimensionWithVehicleCapacity(dem_cb, 0, [int(problem.technicians[0].capacity)] * fleet, True, "load")
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(int(time_limit * 1000))
    sol = routing.SolveWithParameters(params)
    orders: dict[int, list[int]] = {}
    if sol is None:
        return orders
    for v in range(fleet):
        idx = routing.Start(v)
        idx = sol.Value(routing.NextVar(idx))
        while not routing.IsEnd(idx):
            orders.setdefault(v, []).append(manager.IndexToNode(idx) - 1)
            idx = sol.Value(routing.NextVar(idx))
    return orders


def _run_one(solver: str, name: str, path: str, time_limit: float, seed: int) -> dict[str, Any]:
    """Solve one instance with one solver in a worker process; return the figures (no exceptions leak)."""
    from engine.routing.check import check_answer
    from engine.routing.peers import plan_answer
    from engine.routing.solomon import read_solomon
    from engine.routing.solver import solve

    problem = read_solomon(path) if path else generate_instance(int(name.split("-")[1]), seed)
    start = time.perf_counter()
    try:
        if solver == "truckroll":
            answer = solve(problem, time_limit_seconds=time_limit, seed=seed)
        elif solver == "truckroll-vroom-start":
            answer = solve(problem, time_limit_seconds=time_limit, seed=seed, start="vroom")
        elif solver == "truckroll-noSP":
            answer = solve(problem, time_limit_seconds=time_limit, seed=seed, recombine_routes=False)
        elif solver == "vroom":
            answer = plan_answer(problem, _run_vroom(problem, time_limit), 0.0)
        elif solver == "ortools":
            answer = plan_answer(problem, _run_ortools(problem, time_limit), 0.0)
        elif solver == "greedy":
            from engine.routing.greedy import greedy_plan
            from engine.routing.problem import travel_table

            plan = greedy_plan(problem, travel_table(problem), range(len(problem.jobs)))
            answer = plan_answer(problem, {t: o for t, o in plan.orders.items() if o}, 0.0, status="greedy")
        else:
            raise ValueError(f"unknown solver {solver}")
    except Exception as exc:  # a benchmark row, not a crash
        return {"solver": solver, "instance": name, "error": str(exc), "seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    issues = check_answer(problem, answer)
    return {"solver": solver, "instance": name, "jobs": len(problem.jobs), "distance": answer.distance,
            "routes": len(answer.routes), "unassigned": len(answer.unassigned), "feasible": not issues,
            "status": answer.status, "seconds": seconds}


def generate_instance(n_jobs: int, seed: int) -> Any:
    """A random Gehring-Homberger-like VRPTW instance (RC type: half clustered, half uniform customers).

    The square grows with sqrt(n) so route lengths stay comparable; a quarter of n vehicles of capacity 200;
    demands 10-30; service 10 minutes; each job has a 60-180-minute window placed so that a direct trip
    from the depot can meet it.
    """
    from engine.routing.problem import Job, Problem, Technician, Travel

    rng = random.Random(seed * 7919 + n_jobs)
    side = 100.0 * math.sqrt(n_jobs / 100.0)
    depot = (side / 2, side / 2)
    horizon = 1000.0 * math.sqrt(n_jobs / 100.0) ** 0.5
    centres = [(rng.uniform(0, side), rng.uniform(0, side)) for _ in range(max(3, n_jobs // 40))]
    jobs = []
    for k in range(n_jobs):
        if k % 2:
            cx, cy = rng.choice(centres)
            x, y = min(max(rng.gauss(cx, side / 25), 0), side), min(max(rng.gauss(cy, side / 25), 0), side)
        else:
            x, y = rng.uniform(0, side), rng.uniform(0, side)
        d = math.dist(depot, (x, y))
        width = rng.uniform(60, 180)
        latest_start = horizon - d - 10
        centre = rng.uniform(d, max(d, latest_start))
        a, b = max(d, centre - width / 2), min(latest_start, centre + width / 2)
        jobs.append(Job(id=str(k + 1), location=(x, y), duration=10.0, time_windows=((a, max(a, b)),),
                        demand=float(rng.randint(10, 30))))
    techs = tuple(Technician(id=f"v{k}", start=depot, end=depot, shift=(0.0, horizon), capacity=200.0)
                  for k in range(max(1, n_jobs // 4)))
    return Problem(technicians=techs, jobs=tuple(jobs), travel=Travel("euclidean"), objective="min_travel")


@bench_app.command("solomon")
def bench_solomon(
    instances: str = typer.Option("", help="Comma-separated names or prefixes (C1,R101,RC2); default all 56."),
    time_limit: float = typer.Option(5.0, "--time-limit", help="Seconds per instance."),
    workers: int = typer.Option(2, help="Instances solved in parallel (at most the number of cores)."),
    directory: Path = typer.Option(DEFAULT_DIR, "--dir", help="Folder with the Solomon files and bks.csv."),
    peers: str = typer.Option("", help="Also run these on the same instances: vroom, ortools, "
                                       "truckroll-noSP (no set partitioning), truckroll-vroom-start "
                                       "(VROOM's plan as the start), greedy."),
    peer_instances: str = typer.Option("", help="Instances for the peers (default: the same as ours)."),
    scaling: str = typer.Option("", help="Also run generated instances of these sizes, e.g. 200,400,1000."),
    scaling_only: bool = typer.Option(False, help="Run only the generated scaling instances."),
    seed: int = typer.Option(0, help="Search seed."),
    output: Path | None = typer.Option(None, "--json", help="Write every row to this JSON file."),
) -> None:
    """Average gap to the distance-only best-known solutions, per instance and per class."""
    import os

    from engine.routing.solomon import read_bks

    if not (directory / "bks.csv").exists():
        raise fail(f"no bks.csv in {directory}")
    workers = max(1, min(workers, os.cpu_count() or 1))
    bks = read_bks(directory / "bks.csv")

    def pick(spec: str) -> list[str]:
        names = sorted(bks)
        if not spec:
            return names
        wanted = [s.strip().upper() for s in spec.split(",") if s.strip()]
        chosen = [n for n in names if any(n == w or (n.startswith(w) and n[len(w):].isdigit() and
                                                     len(n) - len(w) <= 2) for w in wanted)]
        if not chosen:
            raise fail(f"no instance matches {spec!r}")
        return chosen

    ours = [] if scaling_only else pick(instances)
    peer_list = [p.strip() for p in peers.split(",") if p.strip()]
    theirs = pick(peer_instances) if peer_instances else ours
    jobs: list[tuple[str, str, str]] = [("truckroll", n, str(directory / f"{n}.txt")) for n in ours]
    jobs += [(p, n, str(directory / f"{n}.txt")) for n in theirs for p in peer_list]
    sizes = [int(s) for s in scaling.split(",") if s.strip()]
    jobs += [(s, f"gen-{n}", "") for n in sizes for s in ["truckroll", "greedy"]]
    rows: list[dict[str, Any]] = []
    wall = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_run_one, s, n, p, time_limit, seed) for s, n, p in jobs]
        for fut in futures:
            row = fut.result()
            if row["instance"] in bks and "distance" in row:
                row["bks"] = bks[row["instance"]]
                row["gap_pct"] = 100.0 * (row["distance"] / row["bks"] - 1.0)
            rows.append(row)
            _print_row(row)
    console.print(f"wall time {time.perf_counter() - wall:.0f} s, {workers} workers, limit {time_limit:g} s")
    _summary(rows)
    if output:
        output.write_text(json.dumps(rows, indent=1))


def _print_row(row: dict[str, Any]) -> None:
    if "error" in row:
        console.print(f"{row['solver']:>14} {row['instance']:>9}  ERROR {row['error']}", soft_wrap=True)
        return
    gap = f"{row['gap_pct']:+6.2f}%" if "gap_pct" in row else "       "
    console.print(f"{row['solver']:>14} {row['instance']:>9} jobs {row['jobs']:4d} dist {row['distance']:9.2f} "
                  f"{gap} routes {row['routes']:3d} unassigned {row['unassigned']:3d} "
                  f"feasible {row['feasible']!s:5} {row['status']:>10} {row['seconds']:6.2f} s", soft_wrap=True)


def _summary(rows: list[dict[str, Any]]) -> None:
    for solver in dict.fromkeys(r["solver"] for r in rows):
        every = [r for r in rows if r["solver"] == solver and "gap_pct" in r]
        # Gaps only mean something for complete, feasible plans; the others are counted apart.
        mine = [r for r in every if r["feasible"] and not r["unassigned"]]
        if not mine:
            continue
        gaps = [r["gap_pct"] for r in mine]
        classes: dict[str, list[float]] = {}
        for r in mine:
            classes.setdefault(instance_class(r["instance"]), []).append(r["gap_pct"])
        per_class = ", ".join(f"{c} {statistics.fmean(g):+.2f}%" for c, g in sorted(classes.items()))
        infeasible = len(every) - len(mine)
        console.print(f"[bold]{solver}[/]: {len(mine)} instances, average gap {statistics.fmean(gaps):+.2f}%, "
                      f"median {statistics.median(gaps):+.2f}%, worst {max(gaps):+.2f}%; "
                      f"seconds per instance median {statistics.median(r['seconds'] for r in mine):.2f}, "
                      f"max {max(r['seconds'] for r in mine):.2f}; infeasible or incomplete (left out) {infeasible}",
                      soft_wrap=True)
        console.print(f"  per class: {per_class}", soft_wrap=True)
