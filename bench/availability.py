"""``truckroll bench availability``: how long one availability answer takes on a loaded company (in memory).

A company of ``technicians`` technicians gets ``booked_per_day`` jobs booked on each of the next 8 days (the
simulation's stream, first offer accepted), a forecast learned from 4 weeks of history; then prospective jobs
of the demo mix ask for 7 days x 5 windows. Timed: grading with a cold displacement cache, with the cache kept
across requests, and feasibility only (what first-available needs).
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import date, datetime, timedelta
from typing import Any

from demo.company import TZ
from demo.simulate import _World, generate_stream, history_forecast, make_company
from engine.booking.forecast import WindowGrid
from engine.booking.windows import BookingSettings, DisplacementCache, availability
from engine.config import DispatchSettings
from engine.dispatch.decision import apply_decision, decide
from engine.travel import GreatCircleTravel
from models.domain import JobRequirements, TimeWindow


def run(*, repeats: int, technicians: int, booked_per_day: int, seed: int) -> dict[str, Any]:
    settings = BookingSettings(horizon_days=7)
    rules = DispatchSettings()
    travel = GreatCircleTravel(detour_factor=1.3, speed_kmh=40.0)
    grid = WindowGrid(TZ, tuple(settings.window_hours))
    first = date(2030, 3, 4)
    techs = make_company(technicians, seed)
    world = _World(techs, grid.tz, (8, 17))
    rng = random.Random(seed)
    booked = 0
    for r in generate_stream(first, 8, per_day=booked_per_day * 1.5, seed=seed):
        d = r.wished_day
        if sum(len(t.stops) for t in world.on(d)) >= booked_per_day:
            continue
        i = rng.randrange(len(grid.hours))
        w = grid.window(d, i)
        job = JobRequirements(r.id, r.location, r.duration_minutes, {r.skill: r.level}, [], {}, [w],
                              estimated_value=r.value)
        dec = decide(job, [t for t in world.on(d) if t.shift_start < w.end and t.shift_end > w.start], travel, rules)
        if dec.chosen is not None:
            apply_decision(dec, job, travel)
            booked += 1
    forecast = history_forecast(first, grid, weeks=4, per_day=booked_per_day, seed=seed)
    now = datetime.combine(first, datetime.min.time(), tzinfo=grid.tz) + timedelta(hours=7)
    days = world.between(first, first + timedelta(days=7))
    probes = generate_stream(first, 7, per_day=repeats / 7 + 1, seed=seed + 7)[:repeats]
    allowed = [TimeWindow(now, now + timedelta(days=8))]

    def job_of(r: Any) -> JobRequirements:
        return JobRequirements(10**6 + r.id, r.location, r.duration_minutes, {r.skill: r.level}, [], {}, allowed,
                               estimated_value=r.value)

    def timed(grade: bool, cache: DisplacementCache | None) -> tuple[list[float], int]:
        out, n_opts = [], 0
        for r in probes:
            c = cache if cache is not None else DisplacementCache()
            t0 = time.perf_counter()
            av = availability(job_of(r), days, travel, rules, grid, now=now, settings=settings, forecast=forecast,
                              allowed=allowed, cache=c, grade=grade)
            out.append(time.perf_counter() - t0)
            n_opts += len(av.options)
        return out, n_opts

    cold, n_cold = timed(True, None)
    shared = DisplacementCache()
    warm, _ = timed(True, shared)
    feas, _ = timed(False, None)

    def ms(xs: list[float]) -> dict[str, float]:
        return {"median_ms": round(statistics.median(xs) * 1000, 1), "max_ms": round(max(xs) * 1000, 1)}

    return {"technicians": technicians, "jobs_booked": booked, "windows_per_request": 7 * len(grid.hours),
            "requests": len(probes), "mean_bookable_windows": round(n_cold / len(probes), 1),
            "graded_cold_cache": ms(cold), "graded_shared_cache": ms(warm),
            "shared_cache_slot_solves": shared.solves, "shared_cache_hits": shared.hits,
            "feasibility_only": ms(feas)}
