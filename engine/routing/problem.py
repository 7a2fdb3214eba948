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


@dataclass(frozen=True)
class Job:
    """A job (client visit). Service must start inside one of ``time_windows``; none means any time."""

    id: str
    location: Place
    duration: float = 0.0
    time_windows: tuple[tuple[float, float], ...] = ()
    demand: float = 0.0
    skills: frozenset[str] = frozenset()
    priority: float = 0.0
    value: float = 1.0

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
    """One visit on a route: when the technician arrives, starts and finishes the job (minutes)."""

    job: str
    arrival: float
    start: float
    end: float


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
                        for s in r.stops
                    ],
                }
                for r in self.routes
            ],
            "unassigned": [{"job": u.job, "reason": u.reason} for u in self.unassigned],
            "totals": {
                "travel_minutes": _r(self.travel_minutes),
                "distance": _r(self.distance),
                "jobs_served": sum(len(r.stops) for r in self.routes),
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
        techs.append(Technician(
            id=str(t["id"]), start=start, end=end, shift=shift,
            capacity=None if capacity is None else _number(capacity, f"{name}.capacity", minimum=0),
            skills=_skills(t.get("skills"), f"{name}.skills"),
        ))
    _unique([t.id for t in techs], "technicians")

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
        jobs.append(Job(
            id=str(j["id"]),
            location=_place(j["location"], f"{name}.location", travel.metric, n_matrix),
            duration=_number(j.get("duration", 0), f"{name}.duration", minimum=0),
            time_windows=tuple(sorted(_window(w, f"{name}.time_windows[{k}]") for k, w in enumerate(windows))),
            demand=_number(j.get("demand", 0), f"{name}.demand", minimum=0),
            skills=_skills(j.get("skills"), f"{name}.skills"),
            priority=_number(j.get("priority", 0), f"{name}.priority", minimum=0),
            value=_number(j.get("value", 1), f"{name}.value", minimum=0),
        ))
    _unique([j.id for j in jobs], "jobs")
    return Problem(technicians=tuple(techs), jobs=tuple(jobs), travel=travel, objective=objective)


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
    return TravelTable(minutes=minutes, distance=distance, n_technicians=len(problem.technicians))
