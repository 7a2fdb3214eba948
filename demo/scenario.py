"""Generated companies and request streams for tests, benchmarks and demos (pure: no database, no Prefect).

``generate(technicians, days, seed)`` makes a home-services company in a metro (Dallas-Fort Worth, the demo's
catalogue of job types) and the requests of ``days`` working days, deterministically from the seed:

- technicians live at their own homes, spread over the metro; each has a main trade with a level (1-5),
  sometimes a second trade at a lower level, the certifications of their trade (some expiring), an upsell
  multiplier, a shift on every working day (Monday-Friday 08:00-17:00 local time) and, now and then, an
  absence (a training day, a half day, a two-hour appointment) that cuts a shift; optionally a territory
  (the metro quadrant of their home);
- requests: about ``jobs_per_technician`` (default 4.6) per technician on shift per day, the catalogue's trade
  mix adjusted for the season (air conditioning in summer, furnaces in winter), arriving over the preceding
  days (emergencies the same morning), with two- or four-hour windows on one day or on two or three days.

``day_problem(scenario, day)`` turns one day into a routing problem for ``engine.routing`` (skills with their
levels and valid certifications as capabilities, the customers' windows on that day, shifts from home, absences).

The JSON format (``Scenario.to_json``) is documented in docs/routing.md ("Generated scenarios").
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

FORMAT = "truckroll-scenario/1"
TZ = "America/Chicago"
CENTRE = (32.85, -96.85)  # Dallas-Fort Worth, as the demo
METRO_KM = 30.0  # homes and customers within this radius of the centre
SHIFT_HOURS = (8, 17)
JOBS_PER_TECHNICIAN = 4.6
# name, trade, minutes, skill level needed, certifications, typical value $, share of demand (the demo's catalogue)
CATALOGUE: tuple[tuple[str, str, int, int, tuple[str, ...], float, float], ...] = (
    ("water heater repair", "plumbing", 90, 3, ("gas",), 420, 0.08),
    ("drain cleaning", "plumbing", 60, 2, (), 210, 0.12),
    ("leak repair", "plumbing", 75, 3, (), 300, 0.10),
    ("toilet install", "plumbing", 90, 2, (), 380, 0.05),
    ("ac repair", "hvac", 90, 3, ("epa608",), 520, 0.13),
    ("furnace repair", "hvac", 90, 3, ("gas",), 460, 0.08),
    ("hvac maintenance", "hvac", 60, 2, (), 160, 0.10),
    ("panel upgrade", "electrical", 180, 4, ("electrical license",), 1800, 0.03),
    ("outlet repair", "electrical", 45, 2, (), 190, 0.09),
    ("lighting install", "electrical", 90, 2, (), 320, 0.06),
    ("washer repair", "appliance", 60, 2, (), 230, 0.08),
    ("refrigerator repair", "appliance", 75, 3, ("epa608",), 340, 0.08),
)
TRADE_CERTS = {"plumbing": ("gas",), "hvac": ("epa608", "gas"), "electrical": ("electrical license",),
               "appliance": ("epa608",)}
TRADES = ("plumbing", "hvac", "electrical", "appliance")
TRADE_WEIGHTS = (0.32, 0.30, 0.20, 0.18)
FIRST = ("Ana", "Ben", "Carla", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kofi", "Lena", "Marco",
         "Nia", "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vic", "Wes", "Xena", "Yusuf", "Zoe")
LAST = ("Alvarez", "Brooks", "Chen", "Diaz", "Evans", "Foster", "Garcia", "Hughes", "Ito", "Jones", "Khan", "Lopez",
        "Moore", "Nguyen", "Ortiz", "Patel", "Reyes", "Smith", "Tran", "Usman", "Vega", "White", "Young", "Zhang")
SEASON = {  # demand multiplier per job type and month
    "ac repair": {5: 1.6, 6: 2.2, 7: 2.6, 8: 2.6, 9: 1.8, 12: 0.3, 1: 0.3, 2: 0.4},
    "furnace repair": {11: 1.8, 12: 2.4, 1: 2.6, 2: 2.0, 6: 0.2, 7: 0.15, 8: 0.15},
    "water heater repair": {12: 1.4, 1: 1.5, 2: 1.3},
    "hvac maintenance": {3: 1.5, 4: 1.6, 10: 1.5, 11: 1.3},
}
WINDOW_STARTS = (8, 10, 12, 14)  # two-hour windows 08-10 ... 14-16; four-hour ones are 08-12 and 12-16


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class ScenarioTechnician:
    id: str
    name: str
    home: tuple[float, float]
    skills: dict[str, int]
    certifications: dict[str, date]  # name -> expiry date
    multiplier: float
    territory: str | None
    shifts: tuple[Interval, ...]
    absences: tuple[tuple[Interval, str], ...] = ()


@dataclass(frozen=True)
class ScenarioRequest:
    id: str
    arrives_at: datetime
    job_type: str
    trade: str
    skills: dict[str, int]
    certifications: tuple[str, ...]
    duration_minutes: float
    value: float
    priority: int  # 1 = emergency ... 5 = routine (the dispatch engine's scale)
    location: tuple[float, float]
    windows: tuple[Interval, ...]
    territory: str | None = None


@dataclass(frozen=True)
class Scenario:
    seed: int
    timezone: str
    days: tuple[date, ...]
    technicians: tuple[ScenarioTechnician, ...]
    requests: tuple[ScenarioRequest, ...]
    territories: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def requests_for(self, day: date) -> list[ScenarioRequest]:
        """The requests whose first window is on ``day`` (the day's own demand), in arrival order."""
        tz = ZoneInfo(self.timezone)
        return [r for r in self.requests if r.windows[0].start.astimezone(tz).date() == day]

    def to_json(self) -> dict[str, Any]:
        def iv(i: Interval) -> dict[str, str]:
            return {"start": i.start.isoformat(), "end": i.end.isoformat()}

        return {
            "format": FORMAT, "seed": self.seed, "timezone": self.timezone, "territories": self.territories,
            "days": [d.isoformat() for d in self.days],
            "technicians": [{
                "id": t.id, "name": t.name, "home": list(t.home), "skills": t.skills,
                "certifications": {k: v.isoformat() for k, v in t.certifications.items()},
                "multiplier": t.multiplier, "territory": t.territory,
                "shifts": [iv(s) for s in t.shifts],
                "absences": [dict(iv(a), reason=reason) for a, reason in t.absences],
            } for t in self.technicians],
            "requests": [dict(asdict(r), arrives_at=r.arrives_at.isoformat(), location=list(r.location),
                              certifications=list(r.certifications), windows=[iv(w) for w in r.windows])
                         for r in self.requests],
            "notes": self.notes,
        }


def scenario_from_json(data: Any) -> Scenario:
    """Read a scenario written by :meth:`Scenario.to_json`; ``ValueError`` names what is wrong."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a scenario: expected an object with \"format\": \"{FORMAT}\"")
    try:
        def iv(x: dict[str, str]) -> Interval:
            return Interval(datetime.fromisoformat(x["start"]), datetime.fromisoformat(x["end"]))

        techs = tuple(ScenarioTechnician(
            id=str(t["id"]), name=str(t["name"]), home=(float(t["home"][0]), float(t["home"][1])),
            skills={str(k): int(v) for k, v in t["skills"].items()},
            certifications={str(k): date.fromisoformat(v) for k, v in t["certifications"].items()},
            multiplier=float(t["multiplier"]), territory=t.get("territory"),
            shifts=tuple(iv(s) for s in t["shifts"]),
            absences=tuple((iv(a), str(a.get("reason", "absent"))) for a in t.get("absences", [])),
        ) for t in data["technicians"])
        reqs = tuple(ScenarioRequest(
            id=str(r["id"]), arrives_at=datetime.fromisoformat(r["arrives_at"]), job_type=str(r["job_type"]),
            trade=str(r["trade"]), skills={str(k): int(v) for k, v in r["skills"].items()},
            certifications=tuple(r["certifications"]), duration_minutes=float(r["duration_minutes"]),
            value=float(r["value"]), priority=int(r["priority"]),
            location=(float(r["location"][0]), float(r["location"][1])),
            windows=tuple(iv(w) for w in r["windows"]), territory=r.get("territory"),
        ) for r in data["requests"])
        return Scenario(seed=int(data["seed"]), timezone=str(data["timezone"]),
                        days=tuple(date.fromisoformat(d) for d in data["days"]), technicians=techs,
                        requests=reqs, territories=bool(data.get("territories", False)),
                        notes=dict(data.get("notes", {})))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ValueError(f"malformed scenario: {exc!r}") from None


# ---------------------------------------------------------------- generation


def working_days(first: date, count: int) -> list[date]:
    """``count`` working days (Monday to Friday) from ``first`` on (``first`` itself when it is one)."""
    out: list[date] = []
    d = first
    while len(out) < count:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def _point(rng: random.Random, radius_km: float) -> tuple[float, float]:
    r = radius_km * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    lat = CENTRE[0] + r * math.sin(a) / 111.0
    lon = CENTRE[1] + r * math.cos(a) / (111.0 * math.cos(math.radians(CENTRE[0])))
    return (round(lat, 6), round(lon, 6))


def quadrant(place: tuple[float, float]) -> str:
    """The metro quadrant of a place (the optional territories)."""
    return ("north" if place[0] >= CENTRE[0] else "south") + ("east" if place[1] >= CENTRE[1] else "west")


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:  # normal approximation: Knuth's product underflows for large means
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _at(d: date, hour: float, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(0), tzinfo=tz) + timedelta(hours=hour)


def generate(technicians: int, days: int, seed: int, *, first_day: date | None = None, territories: bool = False,
             jobs_per_technician: float = JOBS_PER_TECHNICIAN) -> Scenario:
    """A company of ``technicians`` and the requests of ``days`` working days, deterministic by ``seed``.

    ``first_day`` defaults to Monday 2026-11-30 (a fixed date, so that a seed always means the same scenario).
    """
    if technicians < 1:
        raise ValueError(f"technicians must be at least 1 (got {technicians})")
    if days < 1:
        raise ValueError(f"days must be at least 1 (got {days})")
    if jobs_per_technician <= 0:
        raise ValueError(f"jobs_per_technician must be positive (got {jobs_per_technician})")
    rng = random.Random(f"truckroll-scenario-{seed}")
    tz = ZoneInfo(TZ)
    service_days = working_days(first_day or date(2026, 11, 30), days)

    techs: list[ScenarioTechnician] = []
    for i in range(technicians):
        # Interleave the trades so that any first N technicians cover every trade.
        trade = TRADES[i % 4] if i < 8 else rng.choices(TRADES, weights=TRADE_WEIGHTS)[0]
        skills = {trade: rng.choice([2, 3, 3, 4, 4, 5])}
        if rng.random() < 0.3:
            skills[rng.choice([t for t in TRADES if t != trade])] = rng.choice([1, 2, 3])
        certs: dict[str, date] = {}
        for t in skills:
            for c in TRADE_CERTS[t]:
                if rng.random() < 0.85:
                    # Most certifications run for a year or more; some expire inside the horizon.
                    certs[c] = service_days[0] + timedelta(days=rng.choice([400, 500, 700, days // 2 + 1]))
        home = _point(rng, METRO_KM)
        shifts = tuple(Interval(_at(d, SHIFT_HOURS[0], tz), _at(d, SHIFT_HOURS[1], tz)) for d in service_days)
        absences: list[tuple[Interval, str]] = []
        for d in service_days:
            u = rng.random()
            if u < 0.015:
                absences.append((Interval(_at(d, SHIFT_HOURS[0], tz), _at(d, SHIFT_HOURS[1], tz)), "training"))
            elif u < 0.03:
                absences.append((Interval(_at(d, 12.5, tz), _at(d, SHIFT_HOURS[1], tz)), "half day"))
            elif u < 0.045:
                absences.append((Interval(_at(d, 11, tz), _at(d, 13, tz)), "appointment"))
        name = f"{FIRST[i % len(FIRST)]} {LAST[(i * 7 + i // len(FIRST)) % len(LAST)]}"
        techs.append(ScenarioTechnician(
            id=f"t{i + 1}", name=name, home=home, skills=skills, certifications=certs,
            multiplier=round(rng.uniform(0.9, 1.3), 2), territory=quadrant(home) if territories else None,
            shifts=shifts, absences=tuple(absences)))

    requests: list[ScenarioRequest] = []
    for d in service_days:
        on_shift = sum(1 for t in techs if not any(a.start <= _at(d, SHIFT_HOURS[0], tz) and
                                                   a.end >= _at(d, SHIFT_HOURS[1], tz) for a, _ in t.absences))
        weights = [share * SEASON.get(name, {}).get(d.month, 1.0) for name, *_, share in CATALOGUE]
        for _ in range(_poisson(rng, jobs_per_technician * on_shift)):
            name, trade, minutes, level, certs_needed, typical, _ = rng.choices(CATALOGUE, weights=weights)[0]
            emergency = rng.random() < 0.05
            complexity = rng.choice([-1, 0, 0, 0, 1])
            need = max(1, min(5, level + complexity))
            location = _point(rng, METRO_KM)
            if emergency:
                arrives = _at(d, rng.uniform(6.5, 9.0), tz)
                start_hour = math.ceil((arrives.hour + arrives.minute / 60) * 2) / 2
                windows = [Interval(_at(d, start_hour, tz), _at(d, start_hour + 4, tz))]
                priority = 1
            else:
                lead = rng.choice([1, 1, 2, 2, 3, 4, 5])
                arrives = _at(d - timedelta(days=lead), rng.uniform(7.0, 20.0), tz)
                four_hours = rng.random() < 0.35
                span = rng.choice([1, 1, 1, 1, 2, 3])  # windows on one or on several days
                pick_days = [d] + [x for x in service_days if x > d][: span - 1]
                windows = []
                for k, wd in enumerate(pick_days):
                    if four_hours:
                        h = rng.choice([8, 12])
                        windows.append(Interval(_at(wd, h, tz), _at(wd, h + 4, tz)))
                    else:
                        h = rng.choice(WINDOW_STARTS) if k == 0 or rng.random() < 0.5 else 8
                        windows.append(Interval(_at(wd, h, tz), _at(wd, h + 2, tz)))
                priority = rng.choice([3, 5, 5, 5, 5])
            duration = float(max(30, int(round(minutes * rng.uniform(0.8, 1.25) / 5.0)) * 5))
            requests.append(ScenarioRequest(
                id="", arrives_at=arrives, job_type=name, trade=trade, skills={trade: need},
                certifications=tuple(certs_needed), duration_minutes=duration,
                value=round(typical * rng.lognormvariate(0, 0.35), 2), priority=priority, location=location,
                windows=tuple(windows), territory=quadrant(location) if territories else None))
    requests.sort(key=lambda r: (r.arrives_at, r.windows[0].start))
    numbered = tuple(ScenarioRequest(**{**r.__dict__, "id": f"r{k + 1}"}) for k, r in enumerate(requests))
    return Scenario(seed=seed, timezone=TZ, days=tuple(service_days), technicians=tuple(techs),
                    requests=numbered, territories=territories,
                    notes={"generator": "demo.scenario.generate", "jobs_per_technician": jobs_per_technician})


# ---------------------------------------------------------------- one day as a routing problem


def capabilities(skills: dict[str, int], certifications: dict[str, date] | None, day: date) -> frozenset[str]:
    """A technician's capabilities on ``day``: ``trade>=k`` for every level up to theirs, ``cert:name`` for every
    certification not expired on that day."""
    caps = {f"{trade}>={k}" for trade, level in skills.items() for k in range(1, level + 1)}
    caps |= {f"cert:{c}" for c, expiry in (certifications or {}).items() if expiry >= day}
    return frozenset(caps)


def needs(request: ScenarioRequest) -> frozenset[str]:
    """The capabilities a request needs (its trade at its level, its certifications)."""
    return frozenset({f"{t}>={k}" for t, k in request.skills.items()} | {f"cert:{c}" for c in request.certifications})


def routing_priority(priority: int) -> float:
    """The dispatch scale (1 = emergency ... 5 = routine) as the optimiser's (0 = routine, higher first)."""
    return float(max(0, 5 - priority))


def day_minutes(scenario: Scenario, day: date) -> Callable[[datetime], float]:
    """The clock of ``day_problem``: an instant as minutes since the day's local midnight."""
    midnight = datetime.combine(day, time(0), tzinfo=ZoneInfo(scenario.timezone))

    def minute(t: datetime) -> float:
        return (t - midnight).total_seconds() / 60.0

    return minute


def day_problem(scenario: Scenario, day: date, *, requests: list[ScenarioRequest] | None = None,
                max_work_share: float | None = None, travel_speed_kmh: float = 40.0,
                detour_factor: float = 1.3, objective: str = "default") -> Any:
    """One service day as an ``engine.routing`` problem (minutes from the day's local midnight).

    Technicians on shift that day start and end at home; absences trim or cut their shift; ``max_work_share``
    (e.g. 0.85) caps each one's working minutes at that share of the shift. Jobs are ``requests`` (default: the
    day's own demand) with their windows on that day; travel is great-circle kilometres x ``detour_factor`` at
    ``travel_speed_kmh`` as a matrix (the dispatch engine's GreatCircleTravel).
    """
    from engine.routing.problem import Job, Problem, Technician, Travel

    tz = ZoneInfo(scenario.timezone)
    minute = day_minutes(scenario, day)
    places: list[tuple[float, float]] = []
    techs: list[Technician] = []
    for t in scenario.technicians:
        shift = next((s for s in t.shifts if s.start.astimezone(tz).date() == day), None)
        if shift is None:
            continue
        a, b = minute(shift.start), minute(shift.end)
        absences = tuple((max(minute(x.start), a), min(minute(x.end), b)) for x, _ in t.absences
                         if minute(x.start) < b and minute(x.end) > a)
        if any(x <= a and y >= b for x, y in absences):
            continue  # absent all day: not on shift
        places.append(t.home)
        # The cap is a share of the time actually available (the shift less its absences).
        free = (b - a) - sum(y - x for x, y in absences)
        cap = None if max_work_share is None else max_work_share * free
        techs.append(Technician(id=t.id, start=len(places) - 1, end=len(places) - 1, shift=(a, b),
                                skills=capabilities(t.skills, t.certifications, day), max_work_minutes=cap,
                                absences=absences))
    jobs: list[Job] = []
    for r in requests if requests is not None else scenario.requests_for(day):
        windows = tuple((minute(w.start), minute(w.end)) for w in r.windows if w.start.astimezone(tz).date() == day)
        if not windows:
            continue
        places.append(r.location)
        jobs.append(Job(id=r.id, location=len(places) - 1, duration=r.duration_minutes, time_windows=windows,
                        skills=needs(r), priority=routing_priority(r.priority), value=r.value))
    minutes = travel_matrix(places, speed_kmh=travel_speed_kmh, detour_factor=detour_factor)
    return Problem(technicians=tuple(techs), jobs=tuple(jobs), objective=objective,  # type: ignore[arg-type]
                   travel=Travel(metric="matrix", minutes=minutes[0], distances=minutes[1]))


def travel_matrix(places: list[tuple[float, float]], *, speed_kmh: float = 40.0, detour_factor: float = 1.3
                  ) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    """Road minutes and kilometres between places: great-circle distance x ``detour_factor`` at ``speed_kmh``
    (the same model as ``engine.travel.GreatCircleTravel``)."""
    import numpy as np

    from engine.routing.problem import EARTH_RADIUS_KM

    xy = np.radians(np.array(places, dtype=float).reshape(-1, 2))
    lat, lon = xy[:, 0], xy[:, 1]
    h = (np.sin((lat[None, :] - lat[:, None]) / 2) ** 2
         + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin((lon[None, :] - lon[:, None]) / 2) ** 2)
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h))) * detour_factor
    mins = km / speed_kmh * 60.0
    return (tuple(tuple(float(x) for x in row) for row in mins), tuple(tuple(float(x) for x in row) for row in km))
