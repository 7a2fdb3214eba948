"""Plain-data routing problem and answer, with JSON parsing that validates every field.

Times are minutes from an origin the caller chooses (the daily re-optimisation uses minutes from the start
of the day). A place is ``[x, y]`` for Euclidean travel, ``[lat, lon]`` for haversine travel, or an integer
row of the matrix for matrix travel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Objective = Literal["default", "min_travel"]
Metric = Literal["euclidean", "haversine", "matrix"]
Place = tuple[float, float] | int

OBJECTIVES: tuple[str, ...] = ("default", "min_travel")
TRAVEL_OWNERS: tuple[str, ...] = ("company", "technician", "partial")
METRICS: tuple[str, ...] = ("euclidean", "haversine", "matrix")
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Travel:
    """How travel minutes and distances between places are measured.

    ``euclidean``: distance in coordinate units, minutes = distance / ``speed`` (units per minute, default 1,
    as in the Solomon benchmarks). ``haversine``: great-circle kilometres on ``[lat, lon]``, minutes at
    ``speed_kmh``. ``matrix``: ``minutes[i][j]`` given explicitly (``distances`` optional, else = minutes).
    """

    metric: Metric = "euclidean"
    speed: float = 1.0
    speed_kmh: float = 40.0
    minutes: tuple[tuple[float, ...], ...] | None = None
    distances: tuple[tuple[float, ...], ...] | None = None


@dataclass(frozen=True)
class Technician:
    """A technician (vehicle): start and end place, shift ``(start, end)`` in minutes, van capacity, skills."""

    id: str
    start: Place
    end: Place
    shift: tuple[float, float]
    capacity: float | None = None
    skills: frozenset[str] = frozenset()
    max_work_minutes: float | None = None
    absences: tuple[tuple[float, float], ...] = ()
    outbound: str = "company"
    outbound_own_minutes: float = 0.0
    inbound: str = "company"
    inbound_own_minutes: float = 0.0

    def company_minutes(self, leg: float, direction: str) -> float:
        """The part of the first (``"out"``) or last (``"in"``) leg that is working time under the travel policy:
        all of it (``company``), none (``technician``: they arrive at the first job when the shift starts), or
        all but the first ``*_own_minutes`` (``partial``)."""
        owner, own = ((self.outbound, self.outbound_own_minutes) if direction == "out"
                      else (self.inbound, self.inbound_own_minutes))
        if owner == "technician":
            return 0.0
        if owner == "partial":
            return max(0.0, leg - own)
        return leg


@dataclass(frozen=True)
class Pin:
    """A stop that keeps its technician and its start time (locked or in-progress work)."""

    technician: str
    start: float


@dataclass(frozen=True)
class Job:
    """A job (client visit). Service must start inside one of ``time_windows``; none means any time.

    ``technicians``: the only technicians who may take it (empty = anyone with the skills), as the caller's
    rules decide. ``pinned``: keep this technician and start time. ``kind`` is ``"absence"`` for the stops
    :func:`normalise` makes of absences in the middle of a shift.
    """

    id: str
    location: Place
    duration: float = 0.0
    time_windows: tuple[tuple[float, float], ...] = ()
    demand: float = 0.0
    skills: frozenset[str] = frozenset()
    priority: float = 0.0
    value: float = 1.0
    technicians: frozenset[str] = frozenset()
    pinned: Pin | None = None
    kind: str = "job"

    @property
    def weight(self) -> float:
        """What serving this job is worth under the default objective: ``value x (1 + priority)``."""
        return self.value * (1.0 + self.priority)


@dataclass(frozen=True)
class Problem:
    """A daily routing problem: who can go where, when, with what."""

    technicians: tuple[Technician, ...]
    jobs: tuple[Job, ...]
    travel: Travel = Travel()
    objective: Objective = "default"

    def job(self, job_id: str) -> Job:
        return self._jobs_by_id[job_id]

    def technician(self, technician_id: str) -> Technician:
        return self._technicians_by_id[technician_id]

    @property
    def _jobs_by_id(self) -> dict[str, Job]:
        cached = self.__dict__.get("_jobs_cache")
        if cached is None:
            cached = {j.id: j for j in self.jobs}
            object.__setattr__(self, "_jobs_cache", cached)
        return cached

    @property
    def _technicians_by_id(self) -> dict[str, Technician]:
        cached = self.__dict__.get("_techs_cache")
        if cached is None:
            cached = {t.id: t for t in self.technicians}
            object.__setattr__(self, "_techs_cache", cached)
        return cached


@dataclass(frozen=True)
class Stop:
    """One visit on a route: when the technician arrives, starts and finishes the job (minutes).

    ``kind`` is ``"absence"`` for an absence in the middle of the shift (the technician is at home then)."""

    job: str
    arrival: float
    start: float
    end: float
    kind: str = "job"


@dataclass(frozen=True)
class Route:
    """A technician's day: departure, stops in order, return, and the minutes spent."""

    technician: str
    stops: tuple[Stop, ...]
    departure: float
    return_time: float
    travel_minutes: float
    distance: float
    service_minutes: float
    wait_minutes: float
    work_minutes: float = 0.0  # travel on company time + service (the utilisation numerator)


@dataclass(frozen=True)
class Unassigned:
    """A job left out of the plan and why, in a dispatcher's words."""

    job: str
    reason: str


@dataclass(frozen=True)
class Answer:
    """The plan: routes, unassigned jobs with reasons, totals, and how the solver got there.

    ``status`` is ``"solved"`` (search stopped on its own), ``"time_limit"`` (the best feasible plan found when
    the time limit hit), or ``"greedy_fallback"`` (the optimiser failed; a greedy plan was used).
    """

    status: str
    objective: str
    routes: tuple[Route, ...]
    unassigned: tuple[Unassigned, ...]
    travel_minutes: float
    distance: float
    value_served: float
    utilisation: dict[str, float]
    runtime_seconds: float
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The answer as JSON-ready plain data (the format ``truckroll solve`` prints)."""
        return {
            "status": self.status,
            "objective": self.objective,
            "routes": [
                {
                    "technician": r.technician,
                    "departure": _r(r.departure),
                    "return": _r(r.return_time),
                    "travel_minutes": _r(r.travel_minutes),
                    "distance": _r(r.distance),
                    "stops": [
                        {"job": s.job, "arrival": _r(s.arrival), "start": _r(s.start), "end": _r(s.end)}
                        | ({"kind": s.kind} if s.kind != "job" else {})
                        for s in r.stops
                    ],
                }
                for r in self.routes
            ],
            "unassigned": [{"job": u.job, "reason": u.reason} for u in self.unassigned],
            "totals": {
                "travel_minutes": _r(self.travel_minutes),
                "distance": _r(self.distance),
                "jobs_served": sum(1 for r in self.routes for s in r.stops if s.kind == "job"),
                "jobs_unassigned": len(self.unassigned),
                "value_served": _r(self.value_served),
                "utilisation": {k: round(v, 4) for k, v in self.utilisation.items()},
            },
            "solver": {"runtime_seconds": round(self.runtime_seconds, 3), "notes": list(self.notes)},
        }


def _r(x: float) -> float:
    return round(x, 4)


# ---------------------------------------------------------------- parsing


def _number(value: Any, name: str, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (got {value!r})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum:g} (got {value!r})")
    return float(value)


def _place(value: Any, name: str, metric: str, n_matrix: int) -> Place:
    if metric == "matrix":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n_matrix:
            raise ValueError(f"{name} must be a row index of travel.minutes in [0, {n_matrix}) (got {value!r})")
        return value
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"{name} must be a pair [x, y] (or [lat, lon]) (got {value!r})")
    a, b = (_number(v, name) for v in value)
    if metric == "haversine" and not (-90 <= a <= 90 and -180 <= b <= 180):
        raise ValueError(f"{name} must be [lat, lon] in degrees (got {value!r})")
    return (a, b)


def _skills(value: Any, name: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, Sequence) or isinstance(value, str) or not all(isinstance(s, str) for s in value):
        raise ValueError(f"{name} must be a list of strings (got {value!r})")
    return frozenset(value)


def _matrix(value: Any, name: str) -> tuple[tuple[float, ...], ...]:
    if not isinstance(value, Sequence) or not value:
        raise ValueError(f"{name} must be a non-empty square list of lists")
    n = len(value)
    rows = []
    for i, row in enumerate(value):
        if not isinstance(row, Sequence) or len(row) != n:
            raise ValueError(f"{name} must be square: row {i} has not {n} entries")
        rows.append(tuple(_number(x, f"{name}[{i}]", minimum=0) for x in row))
    return tuple(rows)


def _travel(value: Any) -> Travel:
    if value is None:
        return Travel()
    if not isinstance(value, Mapping):
        raise ValueError("travel must be an object such as {\"metric\": \"euclidean\"}")
    metric = value.get("metric", "euclidean")
    if metric not in METRICS:
        raise ValueError(f"travel.metric must be one of {', '.join(METRICS)} (got {metric!r})")
    speed = _number(value.get("speed", 1.0), "travel.speed", minimum=1e-9)
    speed_kmh = _number(value.get("speed_kmh", 40.0), "travel.speed_kmh", minimum=1e-9)
    minutes = distances = None
    if metric == "matrix":
        if "minutes" not in value:
            raise ValueError("travel.minutes is required when travel.metric is 'matrix'")
        minutes = _matrix(value["minutes"], "travel.minutes")
        if value.get("distances") is not None:
            distances = _matrix(value["distances"], "travel.distances")
            if len(distances) != len(minutes):
                raise ValueError("travel.distances must have the same size as travel.minutes")
    return Travel(metric=metric, speed=speed, speed_kmh=speed_kmh, minutes=minutes, distances=distances)


def _window(value: Any, name: str) -> tuple[float, float]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"{name} must be a pair [earliest, latest] (got {value!r})")
    a, b = _number(value[0], name), _number(value[1], name)
    if a > b:
        raise ValueError(f"{name} must have earliest <= latest (got {value!r})")
    return (a, b)


def problem_from_json(data: Any) -> Problem:
    """Build a :class:`Problem` from parsed JSON.

    Parameters
    ----------
    data:
        The decoded JSON object (see docs/routing.md for the format).

    Returns
    -------
    Problem
        The validated problem.

    Raises
    ------
    ValueError
        When a field is missing or malformed; the message names the field (e.g. ``jobs[3].time_windows[0]``).
    """
    if not isinstance(data, Mapping):
        raise ValueError("the problem must be a JSON object")
    objective = data.get("objective", "default")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)} (got {objective!r})")
    travel = _travel(data.get("travel"))
    n_matrix = len(travel.minutes) if travel.minutes is not None else 0

    raw_techs = data.get("technicians")
    if not isinstance(raw_techs, Sequence) or isinstance(raw_techs, str) or not raw_techs:
        raise ValueError("technicians must be a non-empty list")
    techs: list[Technician] = []
    for i, t in enumerate(raw_techs):
        name = f"technicians[{i}]"
        if not isinstance(t, Mapping):
            raise ValueError(f"{name} must be an object")
        for key in ("id", "start", "shift"):
            if key not in t:
                raise ValueError(f"{name}.{key} is required")
        start = _place(t["start"], f"{name}.start", travel.metric, n_matrix)
        end = _place(t.get("end", t["start"]), f"{name}.end", travel.metric, n_matrix)
        shift = _window(t["shift"], f"{name}.shift")
        capacity = t.get("capacity")
        max_work = t.get("max_work_minutes")
        raw_absences = t.get("absences") or []
        if not isinstance(raw_absences, Sequence) or isinstance(raw_absences, str):
            raise ValueError(f"{name}.absences must be a list of [start, end] pairs")
        policy = t.get("travel_policy") or {}
        if not isinstance(policy, Mapping):
            raise ValueError(f"{name}.travel_policy must be an object such as {{\"outbound\": \"partial\", "
                             "\"outbound_own_minutes\": 30}")
        for key in ("outbound", "inbound"):
            if policy.get(key, "company") not in TRAVEL_OWNERS:
                raise ValueError(f"{name}.travel_policy.{key} must be one of {', '.join(TRAVEL_OWNERS)} "
                                 f"(got {policy.get(key)!r})")
        techs.append(Technician(
            id=str(t["id"]), start=start, end=end, shift=shift,
            capacity=None if capacity is None else _number(capacity, f"{name}.capacity", minimum=0),
            skills=_skills(t.get("skills"), f"{name}.skills"),
            max_work_minutes=None if max_work is None else _number(max_work, f"{name}.max_work_minutes", minimum=0),
            absences=tuple(sorted(_window(a, f"{name}.absences[{k}]") for k, a in enumerate(raw_absences))),
            outbound=policy.get("outbound", "company"),
            outbound_own_minutes=_number(policy.get("outbound_own_minutes", 0), f"{name}.travel_policy."
                                         "outbound_own_minutes", minimum=0),
            inbound=policy.get("inbound", "company"),
            inbound_own_minutes=_number(policy.get("inbound_own_minutes", 0), f"{name}.travel_policy."
                                        "inbound_own_minutes", minimum=0),
        ))
    _unique([t.id for t in techs], "technicians")
    tech_ids = frozenset(t.id for t in techs)

    raw_jobs = data.get("jobs")
    if not isinstance(raw_jobs, Sequence) or isinstance(raw_jobs, str):
        raise ValueError("jobs must be a list")
    jobs: list[Job] = []
    for i, j in enumerate(raw_jobs):
        name = f"jobs[{i}]"
        if not isinstance(j, Mapping):
            raise ValueError(f"{name} must be an object")
        for key in ("id", "location"):
            if key not in j:
                raise ValueError(f"{name}.{key} is required")
        windows = j.get("time_windows") or []
        if not isinstance(windows, Sequence) or isinstance(windows, str):
            raise ValueError(f"{name}.time_windows must be a list of [earliest, latest] pairs")
        allowed = _skills(j.get("technicians"), f"{name}.technicians")
        unknown = sorted(allowed - tech_ids)
        if unknown:
            raise ValueError(f"{name}.technicians names unknown technicians: {', '.join(unknown)}")
        pin = j.get("pinned")
        pinned = None
        if pin is not None:
            if not isinstance(pin, Mapping) or "technician" not in pin or "start" not in pin:
                raise ValueError(f"{name}.pinned must be an object {{\"technician\": ID, \"start\": MINUTE}}")
            if str(pin["technician"]) not in tech_ids:
                raise ValueError(f"{name}.pinned.technician {pin['technician']!r} is not a technician of the problem")
            pinned = Pin(str(pin["technician"]), _number(pin["start"], f"{name}.pinned.start"))
        jobs.append(Job(
            id=str(j["id"]),
            location=_place(j["location"], f"{name}.location", travel.metric, n_matrix),
            duration=_number(j.get("duration", 0), f"{name}.duration", minimum=0),
            time_windows=tuple(sorted(_window(w, f"{name}.time_windows[{k}]") for k, w in enumerate(windows))),
            demand=_number(j.get("demand", 0), f"{name}.demand", minimum=0),
            skills=_skills(j.get("skills"), f"{name}.skills"),
            priority=_number(j.get("priority", 0), f"{name}.priority", minimum=0),
            value=_number(j.get("value", 1), f"{name}.value", minimum=0),
            technicians=allowed, pinned=pinned,
        ))
    _unique([j.id for j in jobs], "jobs")
    return Problem(technicians=tuple(techs), jobs=tuple(jobs), travel=travel, objective=objective)


def problem_to_json(problem: Problem) -> dict[str, Any]:
    """The problem as the JSON :func:`problem_from_json` reads (what ``truckroll scenario generate`` writes)."""
    tr = problem.travel
    travel: dict[str, Any] = {"metric": tr.metric}
    if tr.metric == "euclidean":
        travel["speed"] = tr.speed
    elif tr.metric == "haversine":
        travel["speed_kmh"] = tr.speed_kmh
    else:
        travel["minutes"] = [[round(x, 4) for x in row] for row in tr.minutes or ()]
        if tr.distances is not None:
            travel["distances"] = [[round(x, 4) for x in row] for row in tr.distances]

    def place(p: Place) -> Any:
        return p if isinstance(p, int) else list(p)

    techs = []
    for t in problem.technicians:
        d: dict[str, Any] = {"id": t.id, "start": place(t.start), "end": place(t.end), "shift": list(t.shift),
                             "skills": sorted(t.skills)}
        if t.capacity is not None:
            d["capacity"] = t.capacity
        if t.max_work_minutes is not None:
            d["max_work_minutes"] = round(t.max_work_minutes, 4)
        if t.absences:
            d["absences"] = [list(a) for a in t.absences]
        if (t.outbound, t.inbound) != ("company", "company"):
            d["travel_policy"] = {"outbound": t.outbound, "outbound_own_minutes": t.outbound_own_minutes,
                                  "inbound": t.inbound, "inbound_own_minutes": t.inbound_own_minutes}
        techs.append(d)
    jobs = []
    for j in problem.jobs:
        if j.kind != "job":
            continue
        d = {"id": j.id, "location": place(j.location), "duration": j.duration,
             "time_windows": [list(w) for w in j.time_windows], "skills": sorted(j.skills), "value": j.value,
             "priority": j.priority}
        if j.demand:
            d["demand"] = j.demand
        if j.technicians:
            d["technicians"] = sorted(j.technicians)
        if j.pinned is not None:
            d["pinned"] = {"technician": j.pinned.technician, "start": j.pinned.start}
        jobs.append(d)
    return {"objective": problem.objective, "travel": travel, "technicians": techs, "jobs": jobs}


def normalise(problem: Problem) -> Problem:
    """The problem with absences and pins written into plain constraints (idempotent).

    - An absence at the start or the end of a shift moves the shift's start or end; one in the middle becomes
      a stop of kind ``"absence"`` at the technician's start place (home), pinned to that technician at the
      absence's start and lasting until its end. A technician absent all shift keeps an empty shift.
    - A pinned job may go only to its technician and must start at its pinned time.

    Raises
    ------
    ValueError
        When a pinned stop cannot be kept: it falls outside its technician's shift or in an absence (the
        message names the job and the technician).
    """
    if problem.__dict__.get("_normalised"):
        return problem
    techs: list[Technician] = []
    extra: list[Job] = []
    cut: dict[str, tuple[tuple[float, float], tuple[tuple[float, float], ...]]] = {}
    for t in problem.technicians:
        a, b = t.shift
        middle: list[tuple[float, float]] = []
        for x, y in sorted(t.absences):
            if y <= a or x >= b:
                continue
            if x <= a:
                a = max(a, y)
            elif y >= b:
                b = min(b, x)
            else:
                middle.append((x, y))
        if a >= b:
            a = b = t.shift[0]
            middle = []
        middle = [(x, y) for x, y in middle if a < x and y < b]
        cut[t.id] = ((a, b), tuple(sorted(t.absences)))
        for k, (x, y) in enumerate(middle):
            extra.append(Job(id=f"absence:{t.id}:{k + 1}", location=t.start, duration=y - x, time_windows=((x, x),),
                             value=0.0, technicians=frozenset({t.id}), pinned=Pin(t.id, x), kind="absence"))
        techs.append(Technician(id=t.id, start=t.start, end=t.end, shift=(a, b), capacity=t.capacity,
                                skills=t.skills, max_work_minutes=t.max_work_minutes, absences=(),
                                outbound=t.outbound, outbound_own_minutes=t.outbound_own_minutes,
                                inbound=t.inbound, inbound_own_minutes=t.inbound_own_minutes))
    jobs: list[Job] = []
    for j in problem.jobs:
        if j.pinned is not None and j.kind == "job":
            tid, s = j.pinned.technician, j.pinned.start
            if tid not in cut:
                raise ValueError(f"pinned stop {j.id}: technician {tid} is not in the problem")
            (a, b), absences = cut[tid]
            for x, y in absences:
                if s < y and s + j.duration > x:
                    raise ValueError(f"pinned stop {j.id} cannot be kept: technician {tid} is absent from "
                                     f"{x:g} to {y:g} and the stop is pinned at {s:g}-{s + j.duration:g}")
            if s < a or s + j.duration > b:
                raise ValueError(f"pinned stop {j.id} cannot be kept: it is pinned at {s:g}-{s + j.duration:g}, "
                                 f"outside the shift of technician {tid} ({a:g}-{b:g})")
            j = Job(id=j.id, location=j.location, duration=j.duration, time_windows=((s, s),), demand=j.demand,
                    skills=j.skills, priority=j.priority, value=j.value, technicians=frozenset({tid}),
                    pinned=j.pinned, kind=j.kind)
        jobs.append(j)
    out = Problem(technicians=tuple(techs), jobs=tuple(jobs) + tuple(extra), travel=problem.travel,
                  objective=problem.objective)
    object.__setattr__(out, "_normalised", True)
    return out


def absence_minutes(problem: Problem, technician: str) -> float:
    """Minutes of the absence stops of ``technician`` in a normalised problem."""
    return sum(j.duration for j in problem.jobs if j.kind == "absence" and j.pinned is not None
               and j.pinned.technician == technician)


def available_minutes(problem: Problem, technician: Technician) -> float:
    """The shift less its absences (the utilisation denominator), in a normalised problem."""
    return max(technician.shift[1] - technician.shift[0] - absence_minutes(problem, technician.id), 0.0)


def _unique(ids: list[str], name: str) -> None:
    seen: set[str] = set()
    for x in ids:
        if x in seen:
            raise ValueError(f"{name}: id {x!r} appears twice")
        seen.add(x)


# ---------------------------------------------------------------- travel


@dataclass(frozen=True)
class TravelTable:
    """Travel minutes and distances between the problem's places, in double precision.

    Node order: technician starts, technician ends, then jobs (``start_node(t)``, ``end_node(t)``,
    ``job_node(j)``).
    """

    minutes: np.ndarray
    distance: np.ndarray
    n_technicians: int
    time: np.ndarray | None = None  # minutes on the clock: first and last legs under the travel policies

    @property
    def clock(self) -> np.ndarray:
        """Travel minutes as they count for timing and working time (``time``, else ``minutes``)."""
        return self.minutes if self.time is None else self.time

    def start_node(self, t: int) -> int:
        return t

    def end_node(self, t: int) -> int:
        return self.n_technicians + t

    def job_node(self, j: int) -> int:
        return 2 * self.n_technicians + j


def travel_table(problem: Problem) -> TravelTable:
    """Compute the double-precision travel minutes and distances between every pair of the problem's places."""
    places: list[Place] = [t.start for t in problem.technicians] + [t.end for t in problem.technicians]
    places += [j.location for j in problem.jobs]
    tr = problem.travel
    if tr.metric == "matrix":
        assert tr.minutes is not None
        idx = np.array(places, dtype=np.int64)
        minutes = np.asarray(tr.minutes, dtype=float)[np.ix_(idx, idx)]
        dist_src = tr.distances if tr.distances is not None else tr.minutes
        distance = np.asarray(dist_src, dtype=float)[np.ix_(idx, idx)]
        np.fill_diagonal(minutes, 0.0)
        np.fill_diagonal(distance, 0.0)
    else:
        xy = np.array(places, dtype=float).reshape(-1, 2)
        if tr.metric == "euclidean":
            diff = xy[:, None, :] - xy[None, :, :]
            distance = np.sqrt((diff**2).sum(axis=-1))
            minutes = distance / tr.speed
        else:
            lat, lon = np.radians(xy[:, 0]), np.radians(xy[:, 1])
            h = (np.sin((lat[None, :] - lat[:, None]) / 2) ** 2
                 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin((lon[None, :] - lon[:, None]) / 2) ** 2)
            distance = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
            minutes = distance / tr.speed_kmh * 60.0
    n = len(problem.technicians)
    clock = None
    if any((t.outbound, t.inbound) != ("company", "company") for t in problem.technicians):
        clock = minutes.copy()
        for k, t in enumerate(problem.technicians):
            clock[k, :] = [t.company_minutes(x, "out") for x in minutes[k, :]]
            clock[:, n + k] = [t.company_minutes(x, "in") for x in minutes[:, n + k]]
    return TravelTable(minutes=minutes, distance=distance, n_technicians=n, time=clock)
