"""Booking policies compared by simulation: a seeded stream of booking requests replayed in memory.

Engine only (no Prefect, no database): the same availability, grading and dispatch decision as the service,
on in-memory technician days. Both policies see the *same* stream, including each customer's preferences and
the random number that decides whether they accept (common random numbers), so the difference between the
policies is the policy's, not the dice's.

The stream (``generate_stream``): every service day gets a Poisson number of requests; the job type follows the
demo catalogue's mix, the value is the type's typical value x lognormal(0, 0.35). Expensive repairs (typical
value >= $450: panel upgrades, AC and furnace repairs) are booked at short notice (0-1 day ahead), the rest
1-5 days ahead, and customers prefer mornings. Each customer accepts the offered window they like best with a
probability that falls for later windows and later days, or refuses (the booking is lost).
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from demo.company import CATALOGUE, CENTRE, TRADE_MIX, TZ
from engine.booking.forecast import DemandRecord, Forecast, WindowGrid, forecast_from_history
from engine.booking.windows import POLICIES, BookingSettings, DisplacementCache, availability, forecast_skill
from engine.config import DispatchSettings
from engine.dispatch.decision import apply_decision, decide
from engine.dispatch.insertion import route_travel_minutes, utilisation
from engine.travel import GreatCircleTravel, TravelTimeProvider
from models.domain import JobRequirements, Location, TechnicianDay, TimeWindow

# Preference of a customer for each window of the day (08-10 ... 16-18) before their own noise.
WINDOW_APPEAL = (1.0, 0.85, 0.7, 0.6, 0.5)
LATE_DAY_PENALTY = 0.8  # appeal x this per day after the customer's wished day
HIGH_VALUE = 450.0


@dataclass(frozen=True)
class SimTechnician:
    id: int
    name: str
    home: Location
    skills: dict[str, int]
    multiplier: float


@dataclass(frozen=True)
class BookingRequest:
    """A customer asking for a visit, with everything the dice decided in advance."""

    id: int
    arrives_at: datetime
    job_type: str
    skill: str
    level: int
    duration_minutes: float
    value: float
    location: Location
    wished_day: date
    flex_days: int
    appeal: tuple[float, ...]  # per window index
    accept_draw: float  # accepts the best offered window if its appeal > this


@dataclass
class PolicyResult:
    policy: str
    requests: int = 0
    booked: int = 0
    lost_no_window: int = 0
    lost_refused: int = 0
    escalations: int = 0
    revenue: float = 0.0
    revenue_with_upsell: float = 0.0
    high_value_requests: int = 0
    high_value_booked: int = 0
    utilisation: float = 0.0
    travel_per_job_minutes: float = 0.0
    jobs_per_technician_day: float = 0.0
    offers_made: int = 0
    seconds: float = 0.0
    booked_by_window: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _point(rng: random.Random, spread_km: float) -> Location:
    r = spread_km * rng.random() ** 0.5
    a = rng.uniform(0, 2 * math.pi)
    return Location(round(CENTRE[0] + r * math.sin(a) / 111.0, 6),
                    round(CENTRE[1] + r * math.cos(a) / (111.0 * math.cos(math.radians(CENTRE[0]))), 6))


def make_company(technicians: int, seed: int) -> list[SimTechnician]:
    """Technicians with the demo's trade mix, a second trade for some, and upsell multipliers 0.9-1.3."""
    rng = random.Random(seed)
    trades = sorted({c[1] for c in CATALOGUE})
    out = []
    for i in range(technicians):
        trade = TRADE_MIX[(i * 7) % len(TRADE_MIX)]
        skills = {trade: rng.choice([3, 4, 4, 5, 5])}
        if rng.random() < 0.35:
            skills[rng.choice([t for t in trades if t != trade])] = rng.choice([1, 2, 3])
        out.append(SimTechnician(i + 1, f"tech-{i + 1}", _point(rng, 25.0), skills, round(rng.uniform(0.9, 1.3), 2)))
    return out


def generate_stream(first_day: date, days: int, *, per_day: float, seed: int) -> list[BookingRequest]:
    """Booking requests for service days ``first_day`` .. ``first_day + days - 1``, in arrival order."""
    rng = random.Random(seed)
    tz = ZoneInfo(TZ)
    shares = [c[7] for c in CATALOGUE]
    out: list[BookingRequest] = []
    rid = 0
    for k in range(days):
        wished = first_day + timedelta(days=k)
        n = _poisson(rng, per_day)
        for _ in range(n):
            name, trade, minutes, levels, _certs, _parts, typical, _ = rng.choices(CATALOGUE, weights=shares)[0]
            value = round(typical * rng.lognormvariate(0, 0.35), 2)
            lead = rng.choice([0, 1, 1]) if typical >= HIGH_VALUE else rng.randint(1, 5)
            hour = rng.uniform(7, 20) if lead > 0 else rng.uniform(6, 9)
            arrives = datetime.combine(wished - timedelta(days=lead), time(0), tzinfo=tz) + timedelta(hours=hour)
            appeal = tuple(max(0.05, min(1.0, a * rng.uniform(0.75, 1.15))) for a in WINDOW_APPEAL)
            rid += 1
            out.append(BookingRequest(
                id=rid, arrives_at=arrives, job_type=name, skill=trade, level=levels["medium"][trade],
                duration_minutes=float(minutes), value=value, location=_point(rng, 22.0), wished_day=wished,
                flex_days=rng.choice([0, 1, 1, 2, 3]), appeal=appeal, accept_draw=rng.random()))
    out.sort(key=lambda r: (r.arrives_at, r.id))
    return out


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method is fine for lam < ~100.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def history_forecast(first_day: date, grid: WindowGrid, *, weeks: int, per_day: float, seed: int) -> Forecast:
    """The forecast learned from ``weeks`` weeks of an earlier stream (another seed): each request counted in
    the window its customer liked best on the day they wished."""
    start = first_day - timedelta(weeks=weeks)
    past = generate_stream(start, weeks * 7, per_day=per_day, seed=seed + 1000)
    records = []
    for r in past:
        best = max(range(len(grid.hours)), key=lambda i: r.appeal[i])
        start = grid.window(r.wished_day, best).start
        records.append(DemandRecord(start, r.skill, r.value,
                                    lead_hours=(start - r.arrives_at).total_seconds() / 3600))
    return forecast_from_history(records, grid, weeks=weeks, until=first_day)


class _World:
    """The technicians' days, created as the horizon reaches them."""

    def __init__(self, techs: list[SimTechnician], tz: ZoneInfo, shift_hours: tuple[int, int]) -> None:
        self.techs, self.tz, self.shift_hours = techs, tz, shift_hours
        self.days: dict[date, list[TechnicianDay]] = {}

    def on(self, d: date) -> list[TechnicianDay]:
        got = self.days.get(d)
        if got is None:
            a, b = self.shift_hours
            start = datetime.combine(d, time(a), tzinfo=self.tz)
            end = datetime.combine(d, time(b), tzinfo=self.tz)
            got = self.days[d] = [TechnicianDay(t.id, t.name, t.home, start, end, skills=dict(t.skills),
                                                upsell_multiplier=t.multiplier) for t in self.techs]
        return got

    def between(self, first: date, last: date) -> list[TechnicianDay]:
        out: list[TechnicianDay] = []
        d = first
        while d <= last:
            out.extend(self.on(d))
            d += timedelta(days=1)
        return out


def run_policy(policy: str, stream: list[BookingRequest], techs: list[SimTechnician], forecast: Forecast, *,
               first_day: date, days: int, settings: BookingSettings, rules: DispatchSettings,
               travel: TravelTimeProvider, shift_hours: tuple[int, int] = (8, 17)) -> PolicyResult:
    """Replay ``stream`` under ``policy`` and measure the service days ``first_day`` .. + ``days`` - 1."""
    import time as _time

    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)} (got {policy!r})")
    started = _time.perf_counter()
    grid = WindowGrid(TZ, tuple(settings.window_hours))
    world = _World(techs, grid.tz, shift_hours)
    booked: dict[tuple[date, int, str], int] = {}
    values: dict[int, float] = {}
    cache = DisplacementCache()
    res = PolicyResult(policy, booked_by_window=[0] * len(grid.hours))
    last_day = first_day + timedelta(days=days - 1)
    for r in stream:
        if not first_day <= r.wished_day <= last_day:
            continue
        res.requests += 1
        high = r.value >= HIGH_VALUE
        res.high_value_requests += high
        allowed_last = min(r.wished_day + timedelta(days=r.flex_days), last_day)
        allowed = [TimeWindow(datetime.combine(r.wished_day, time(0), tzinfo=grid.tz),
                              datetime.combine(allowed_last, time(23, 59), tzinfo=grid.tz))]
        job = JobRequirements(request_id=r.id, location=r.location, duration_minutes=r.duration_minutes,
                              required_skills={r.skill: r.level}, required_certifications=[], parts_needed={},
                              windows=allowed, estimated_value=r.value)
        horizon_days = world.between(r.wished_day, allowed_last)
        av = availability(job, horizon_days, travel, rules, grid, now=r.arrives_at, settings=settings,
                          forecast=forecast, booked=booked, allowed=allowed, cache=cache,
                          grade=policy == "value-aware")
        offers = av.offers(policy, settings.max_offers, settings.value_aware_order)
        res.offers_made += len(offers)
        if not offers:
            res.lost_no_window += 1
            continue

        def appeal(w: TimeWindow, r: BookingRequest = r) -> float:
            d, i = grid.locate(w.start) or (r.wished_day, 0)
            return r.appeal[i] * LATE_DAY_PENALTY ** (d - r.wished_day).days

        best = max(offers, key=lambda o: (appeal(o.window), -o.window.start.timestamp()))
        if appeal(best.window) <= r.accept_draw:
            res.lost_refused += 1
            continue
        w = best.window
        d, idx = grid.locate(w.start) or (r.wished_day, 0)
        booked_job = copy.copy(job)
        booked_job.windows = [w]
        shifts = [t for t in world.on(d) if t.shift_start < w.end and t.shift_end > w.start]
        decision = decide(booked_job, shifts, travel, rules)
        if decision.chosen is None:  # cannot happen: nothing changed since the offer
            res.escalations += 1
            continue
        apply_decision(decision, booked_job, travel)
        res.booked += 1
        res.high_value_booked += high
        res.booked_by_window[idx] += 1
        res.revenue += r.value
        assert decision.chosen.day is not None
        res.revenue_with_upsell += r.value * decision.chosen.day.upsell_multiplier
        values[r.id] = r.value
        key = (d, idx, forecast_skill(booked_job, r.skill))
        booked[key] = booked.get(key, 0) + 1
    all_days = world.between(first_day, last_day)
    jobs = sum(len(t.stops) for t in all_days)
    res.utilisation = sum(utilisation(t, travel) for t in all_days) / len(all_days) if all_days else 0.0
    res.travel_per_job_minutes = sum(route_travel_minutes(t, travel) for t in all_days) / jobs if jobs else 0.0
    res.jobs_per_technician_day = jobs / len(all_days) if all_days else 0.0
    res.seconds = _time.perf_counter() - started
    return res


def simulate(*, days: int = 30, policies: tuple[str, ...] = POLICIES, seed: int = 1, technicians: int = 12,
             per_day: float = 60.0, settings: BookingSettings | None = None) -> dict[str, Any]:
    """Run each policy on the same seeded stream; return the stream's description and each policy's figures."""
    settings = settings or BookingSettings(horizon_days=4)
    rules = DispatchSettings()
    travel = GreatCircleTravel(detour_factor=1.3, speed_kmh=40.0)
    grid = WindowGrid(TZ, tuple(settings.window_hours))
    first_day = date(2030, 3, 4)  # a Monday; the simulation does not depend on today's date
    techs = make_company(technicians, seed)
    stream = generate_stream(first_day, days, per_day=per_day, seed=seed)
    forecast = history_forecast(first_day, grid, weeks=settings.forecast_weeks, per_day=per_day, seed=seed)
    results = [run_policy(p, stream, techs, forecast, first_day=first_day, days=days, settings=settings,
                          rules=rules, travel=travel) for p in policies]
    return {"seed": seed, "days": days, "technicians": technicians, "requests_per_day": per_day,
            "requests": len([r for r in stream if r.wished_day < first_day + timedelta(days=days)]),
            "max_offers": settings.max_offers, "value_aware_order": settings.value_aware_order,
            "results": [r.as_dict() for r in results]}
