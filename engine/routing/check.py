"""Double-precision schedules and an independent feasibility checker for routing answers.

Every route the solver returns is re-timed here from the visit order alone, in double precision, so that the
integer scaling inside the search can never leak a late arrival into the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.routing.problem import (
    Answer,
    Job,
    Problem,
    Route,
    Stop,
    Technician,
    TravelTable,
    normalise,
    travel_table,
)

EPS = 1e-6


def allowed(technician: Technician, job: Job) -> bool:
    """True when the technician has the job's skills and is one the job may go to (``job.technicians``)."""
    return job.skills <= technician.skills and (not job.technicians or technician.id in job.technicians)


def refusal(technician: Technician, job: Job) -> str:
    """Why ``technician`` may not take ``job`` (empty when allowed)."""
    if not job.skills <= technician.skills:
        return f"technician {technician.id} lacks skills {sorted(job.skills - technician.skills)}"
    if job.technicians and technician.id not in job.technicians:
        return f"technician {technician.id} is not one the job may go to"
    return ""


def capacity_ok(technician: Technician, demand: float) -> bool:
    """True when a van of this technician can carry ``demand``."""
    return technician.capacity is None or demand <= technician.capacity + EPS


def window_start(job: Job, arrival: float) -> float | None:
    """Earliest service start at or after ``arrival`` inside one of the job's windows (None if too late)."""
    if not job.time_windows:
        return arrival
    for early, late in job.time_windows:
        if arrival <= late + EPS:
            return max(arrival, early)
    return None


def schedule_route(
    problem: Problem, table: TravelTable, tech_index: int, job_indices: Sequence[int]
) -> Route | str:
    """Time a visit order in double precision (earliest starts, no needless wait before the first stop).

    Parameters
    ----------
    problem, table:
        The problem and its travel table.
    tech_index:
        Index of the technician in ``problem.technicians``.
    job_indices:
        Indices of the jobs in visiting order.

    Returns
    -------
    Route | str
        The timed route, or a message saying which rule the order breaks (skills, capacity, window, shift).
    """
    tech = problem.technicians[tech_index]
    minutes, distance, clock = table.minutes, table.distance, table.clock
    load = work = 0.0
    node = table.start_node(tech_index)
    t = tech.shift[0]
    stops: list[Stop] = []
    travel = dist = service = wait = 0.0
    for j in job_indices:
        job = problem.jobs[j]
        why = refusal(tech, job)
        if why:
            return f"job {job.id}: {why}"
        load += job.demand
        nxt = table.job_node(j)
        arrival = t + clock[node, nxt]
        start = window_start(job, arrival)
        if start is None:
            return f"job {job.id}: arrival {arrival:.3f} is after every time window"
        travel += minutes[node, nxt]
        work += clock[node, nxt] + (job.duration if job.kind == "job" else 0.0)  # an absence is not work
        dist += distance[node, nxt]
        wait += start - arrival
        service += job.duration
        stops.append(Stop(job=job.id, arrival=arrival, start=start, end=start + job.duration, kind=job.kind))
        t = start + job.duration
        node = nxt
    if not capacity_ok(tech, load):
        return f"technician {tech.id}: load {load:g} exceeds capacity {tech.capacity:g}"
    end = table.end_node(tech_index)
    return_time = t + clock[node, end]
    travel += minutes[node, end]
    dist += distance[node, end]
    if stops:
        work += clock[node, end]
    if return_time > tech.shift[1] + EPS:
        return f"technician {tech.id}: returns at {return_time:.3f}, after the shift end {tech.shift[1]:g}"
    if tech.max_work_minutes is not None and work > tech.max_work_minutes + EPS:
        return (f"technician {tech.id}: {work:.1f} working minutes, over the maximum of "
                f"{tech.max_work_minutes:g}")
    departure = tech.shift[0]
    if stops:
        # Leave later instead of waiting at the first stop; later stops keep their times.
        first_wait = stops[0].start - stops[0].arrival
        departure += first_wait
        wait -= first_wait
        s0 = stops[0]
        stops[0] = Stop(job=s0.job, arrival=s0.start, start=s0.start, end=s0.end, kind=s0.kind)
    return Route(technician=tech.id, stops=tuple(stops), departure=departure, return_time=return_time,
                 travel_minutes=travel, distance=dist, service_minutes=service, wait_minutes=wait, work_minutes=work)


def check_answer(problem: Problem, answer: Answer) -> list[str]:
    """List every way the answer breaks the problem's rules; an empty list means feasible.

    Checks, in double precision with a 1e-6 tolerance: each job is routed or unassigned exactly once; skills;
    van capacity; travel times between consecutive stops; service starts inside a window; service lasts the
    job's duration; departure no earlier than the shift start; return to the end place by the shift end; the
    technicians each job may go to; pinned stops (and absences) kept by their technician at their time; the
    maximum working minutes; the reported travel and distance match the stops. Travel policies move the
    first and last legs on the clock as they do in the solver.
    """
    problem = normalise(problem)
    table = travel_table(problem)
    clock = table.clock
    job_index = {j.id: k for k, j in enumerate(problem.jobs)}
    tech_index = {t.id: k for k, t in enumerate(problem.technicians)}
    problems: list[str] = []
    seen: dict[str, str] = {}
    used_techs: set[str] = set()
    for route in answer.routes:
        if route.technician not in tech_index:
            problems.append(f"route for unknown technician {route.technician}")
            continue
        if route.technician in used_techs:
            problems.append(f"technician {route.technician} has two routes")
        used_techs.add(route.technician)
        ti = tech_index[route.technician]
        tech = problem.technicians[ti]
        node, t = table.start_node(ti), route.departure
        load = travel = dist = work = 0.0
        if route.departure < tech.shift[0] - EPS:
            problems.append(f"technician {tech.id} leaves at {route.departure:g}, before the shift start")
        for stop in route.stops:
            if stop.job not in job_index:
                problems.append(f"route of {tech.id} visits unknown job {stop.job}")
                continue
            if stop.job in seen:
                problems.append(f"job {stop.job} is visited twice")
            seen[stop.job] = tech.id
            jj = job_index[stop.job]
            job = problem.jobs[jj]
            nxt = table.job_node(jj)
            why = refusal(tech, job)
            if why:
                problems.append(f"job {job.id}: {why}")
            load += job.demand
            earliest = t + clock[node, nxt]
            work += clock[node, nxt] + (job.duration if job.kind == "job" else 0.0)
            travel += table.minutes[node, nxt]
            dist += table.distance[node, nxt]
            if stop.arrival < earliest - EPS:
                problems.append(f"job {job.id}: arrival {stop.arrival:.4f} before it can be reached ({earliest:.4f})")
            if stop.start < stop.arrival - EPS:
                problems.append(f"job {job.id}: starts before arrival")
            if job.time_windows and not any(a - EPS <= stop.start <= b + EPS for a, b in job.time_windows):
                problems.append(f"job {job.id}: starts at {stop.start:.4f}, outside its time windows")
            if abs(stop.end - stop.start - job.duration) > EPS:
                problems.append(f"job {job.id}: service does not last its duration")
            t, node = stop.end, nxt
        end = table.end_node(ti)
        back = t + clock[node, end]
        work += clock[node, end] if route.stops else 0.0
        if tech.max_work_minutes is not None and work > tech.max_work_minutes + EPS:
            problems.append(f"technician {tech.id}: {work:.2f} working minutes, over {tech.max_work_minutes:g}")
        travel += table.minutes[node, end]
        dist += table.distance[node, end]
        if route.return_time < back - EPS:
            problems.append(f"technician {tech.id}: return {route.return_time:.4f} before it can be reached")
        if max(back, route.return_time) > tech.shift[1] + EPS:
            problems.append(f"technician {tech.id}: back at {back:.4f}, after the shift end {tech.shift[1]:g}")
        if not capacity_ok(tech, load):
            problems.append(f"technician {tech.id}: load {load:g} exceeds capacity {tech.capacity:g}")
        if abs(travel - route.travel_minutes) > 1e-4 or abs(dist - route.distance) > 1e-4:
            problems.append(f"technician {tech.id}: reported travel/distance do not match the stops")
    for u in answer.unassigned:
        if u.job in seen:
            problems.append(f"job {u.job} is both routed and unassigned")
        seen[u.job] = ""
    for j in problem.jobs:
        if j.pinned is not None and seen.get(j.id) != j.pinned.technician:
            problems.append(f"pinned stop {j.id} is not kept by technician {j.pinned.technician}")
    missing = [j.id for j in problem.jobs if j.id not in seen]
    if missing:
        problems.append(f"jobs neither routed nor unassigned: {', '.join(missing[:10])}")
    return problems


def check_answer_json(problem: Problem, data: dict, tolerance: float = 1e-3) -> list[str]:
    """Check an answer as ``truckroll solve`` prints it (``Answer.to_json``, times rounded to 4 decimals): each
    route's visit order is re-timed by :func:`schedule_route` and must match the printed times within
    ``tolerance``; the re-timed answer with the printed unassigned jobs must pass :func:`check_answer`; the
    totals must match the routes. An empty list means feasible and consistent."""
    from engine.routing.problem import Unassigned

    problem = normalise(problem)
    table = travel_table(problem)
    job_index = {j.id: k for k, j in enumerate(problem.jobs)}
    tech_index = {t.id: k for k, t in enumerate(problem.technicians)}
    issues: list[str] = []
    routes: list[Route] = []

    def close(a: float, b: float) -> bool:
        return abs(a - b) <= tolerance

    for r in data.get("routes", []):
        tid = r.get("technician")
        if tid not in tech_index:
            issues.append(f"route for unknown technician {tid}")
            continue
        unknown = [s["job"] for s in r["stops"] if s["job"] not in job_index]
        if unknown:
            issues.append(f"route of {tid} visits unknown jobs {', '.join(unknown)}")
            continue
        route = schedule_route(problem, table, tech_index[tid], [job_index[s["job"]] for s in r["stops"]])
        if isinstance(route, str):
            issues.append(f"route of {tid}: {route}")
            continue
        printed = [(s["arrival"], s["start"], s["end"]) for s in r["stops"]]
        ours = [(s.arrival, s.start, s.end) for s in route.stops]
        if not (close(r["departure"], route.departure) and close(r["return"], route.return_time)
                and close(r["travel_minutes"], route.travel_minutes) and close(r["distance"], route.distance)
                and all(close(a, b) for p, o in zip(printed, ours, strict=True) for a, b in zip(p, o, strict=True))):
            issues.append(f"route of {tid}: the printed times or travel differ from the re-timed route")
        routes.append(route)
    unassigned = tuple(Unassigned(u["job"], u.get("reason", "")) for u in data.get("unassigned", []))
    issues += [f"unassigned job {u.job} has no reason" for u in unassigned if not u.reason.strip()]
    answer = Answer(status=str(data.get("status")), objective=str(data.get("objective")), routes=tuple(routes),
                    unassigned=unassigned, travel_minutes=sum(r.travel_minutes for r in routes),
                    distance=sum(r.distance for r in routes), value_served=0.0, utilisation={},
                    runtime_seconds=0.0)
    issues += check_answer(problem, answer)
    totals = data.get("totals", {})
    served = [s.job for r in routes for s in r.stops if s.kind == "job"]
    value = sum(problem.jobs[job_index[j]].value for j in served)
    if not (close(totals.get("travel_minutes", -1), answer.travel_minutes)
            and close(totals.get("distance", -1), answer.distance)
            and totals.get("jobs_served") == len(served) and totals.get("jobs_unassigned") == len(unassigned)
            and close(totals.get("value_served", -1), value)):
        issues.append("the totals do not match the routes")
    return issues
