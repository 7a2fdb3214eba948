"""Booking engine: which windows are offered, their grades and reasons, the forecast and the capacity view."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from engine.booking.forecast import (
    DemandCell,
    DemandRecord,
    Forecast,
    WindowGrid,
    forecast_from_dict,
    forecast_from_history,
)
from engine.booking.windows import (
    BookingSettings,
    DisplacementCache,
    availability,
    capacity_units,
    capacity_view,
    forecast_optimum,
)
from engine.config import DispatchSettings
from engine.travel import GreatCircleTravel
from tests.factories import ORIGIN, at, job, north_km, stop, tech_day

THURSDAY = date(2030, 1, 10)
WEDNESDAY_NOON = at(12, day=date(2030, 1, 9))
GRID = WindowGrid("America/Chicago")
TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=40.0)
RULES = DispatchSettings()
SETTINGS = BookingSettings(horizon_days=2)


def _john_and_mary() -> list:
    john = tech_day(1, start=8, end=18, skills={"electrical": 4}, multiplier=1.2)
    mary = tech_day(2, start=12, end=18, skills={"electrical": 4}, multiplier=1.0)
    for d in (john, mary):
        d.shift_start = d.shift_start.replace(day=THURSDAY.day)
        d.shift_end = d.shift_end.replace(day=THURSDAY.day)
    john.name, mary.name = "John", "Mary"
    return [john, mary]


def _thursday_only() -> list:
    return [GRID.windows_on(THURSDAY)[0].__class__(at(0, day=THURSDAY), at(23, day=THURSDAY))]


def _panel_upgrades_thursday_morning() -> Forecast:
    return Forecast({(THURSDAY.weekday(), 0, "electrical", None): DemandCell(1.0, 1800.0),
                     (THURSDAY.weekday(), 1, "electrical", None): DemandCell(1.0, 1800.0)})


def _by_hour(av) -> dict:  # type: ignore[no-untyped-def]
    return {o.window.start.astimezone(GRID.tz).hour: o for o in av.options}


def test_low_value_job_is_steered_away_from_johns_thursday_morning() -> None:
    """The issue's example: John (x1.2) is the only technician free on Thursday morning, where high-value jobs
    are forecast. A low-value job grades lower there than in the afternoon, the reason names the displaced
    value, and the value-aware offer leaves the morning out while first-available offers it first."""
    low = job(skills={"electrical": 2}, value=150.0)
    av = availability(low, _john_and_mary(), TRAVEL, RULES, GRID, now=WEDNESDAY_NOON, settings=SETTINGS,
                      forecast=_panel_upgrades_thursday_morning(), allowed=_thursday_only())
    opts = _by_hour(av)
    assert set(opts) == {8, 10, 12, 14, 16}
    morning, afternoon = opts[8], opts[14]
    assert morning.technician_name == "John"
    assert morning.displaced_value == pytest.approx(1800 * 1.2)
    assert afternoon.displaced_value == 0
    assert morning.grade < afternoon.grade
    assert any("displaces $2,160" in r for r in morning.reasons)
    assert morning.withheld and not afternoon.withheld
    for order in ("earliest", "grade"):
        value_aware = av.offers("value-aware", 3, order)
        assert value_aware and all(o.window.start.astimezone(GRID.tz).hour >= 12 for o in value_aware)
    assert av.offers("first-available", 1)[0].window.start.astimezone(GRID.tz).hour == 8


def test_high_value_job_keeps_the_morning() -> None:
    """A job worth more than the forecast jobs it displaces is not withheld from the morning."""
    big = job(skills={"electrical": 2}, value=2500.0)
    av = availability(big, _john_and_mary(), TRAVEL, RULES, GRID, now=WEDNESDAY_NOON, settings=SETTINGS,
                      forecast=_panel_upgrades_thursday_morning(), allowed=_thursday_only())
    morning = _by_hour(av)[8]
    assert morning.displaced_value == pytest.approx(2160)
    assert not morning.withheld


def test_job_nobody_can_do_gets_no_window_and_says_why() -> None:
    """A job needing a skill no technician has: no option, every window explained, a top-level reason."""
    roofing = job(skills={"roofing": 2}, value=500.0)
    av = availability(roofing, _john_and_mary(), TRAVEL, RULES, GRID, now=WEDNESDAY_NOON, settings=SETTINGS,
                      forecast=_panel_upgrades_thursday_morning(), allowed=_thursday_only())
    assert av.options == []
    assert av.offers("value-aware", 3) == []
    assert av.reason is not None and "no qualified technician" in av.reason
    assert len(av.unavailable) == 5 and all(u.reason for u in av.unavailable)


def test_windows_in_the_past_or_inside_the_lead_time_are_not_offered() -> None:
    """At 09:30 on Thursday, with a 60-minute lead, the first window offered starts at 12:00."""
    low = job(skills={"electrical": 2}, value=150.0)
    av = availability(low, _john_and_mary(), TRAVEL, RULES, GRID, now=at(9, 30, day=THURSDAY), settings=SETTINGS,
                      allowed=_thursday_only())
    assert min(o.window.start for o in av.options) == at(12, day=THURSDAY)


def test_offered_window_is_really_bookable_by_dispatch() -> None:
    """A technician whose morning is taken by a locked job is not offered for it (same insertion rules as
    dispatch)."""
    days = _john_and_mary()
    john = days[0]
    john.stops = [stop(1, at(8, day=THURSDAY), 250, win=GRID.window(THURSDAY, 0), fixed=True)]
    low = job(skills={"electrical": 2}, value=150.0)
    av = availability(low, days, TRAVEL, RULES, GRID, now=WEDNESDAY_NOON, settings=SETTINGS, allowed=_thursday_only())
    hours = set(_by_hour(av))
    assert 8 not in hours and 10 not in hours
    assert {u.window.start.astimezone(GRID.tz).hour for u in av.unavailable} == {8, 10}


def test_grades_lie_between_0_and_100_on_random_instances() -> None:
    """Every grade is an integer in 0..100 and every option has reasons, whatever the routes and forecast."""
    rng = random.Random(3)
    for _ in range(15):
        days = []
        for tid in range(1, 5):
            d = tech_day(tid, home=north_km(rng.uniform(0, 30)), start=rng.choice([7, 8, 10]), end=18,
                         skills={"electrical": rng.randint(1, 5)}, multiplier=rng.uniform(0.8, 1.4))
            d.shift_start = d.shift_start.replace(day=THURSDAY.day)
            d.shift_end = d.shift_end.replace(day=THURSDAY.day)
            days.append(d)
        fc = Forecast({(THURSDAY.weekday(), i, "electrical", None): DemandCell(rng.uniform(0, 4),
                                                                               rng.uniform(50, 3000))
                       for i in range(5)})
        j = job(location=north_km(rng.uniform(0, 40)), skills={"electrical": rng.randint(1, 3)},
                value=rng.uniform(0, 2000), minutes=rng.choice([45, 90, 180]))
        av = availability(j, days, TRAVEL, RULES, GRID, now=WEDNESDAY_NOON, settings=SETTINGS, forecast=fc,
                          allowed=_thursday_only())
        for o in av.options:
            assert isinstance(o.grade, int) and 0 <= o.grade <= 100
            assert o.reasons and o.displaced_value >= 0


def test_forecast_optimum_uses_value_times_multiplier() -> None:
    """Two forecast jobs, one technician slot: the optimiser keeps the better one at the technician's multiplier;
    a fractional expected count contributes its share; a cache hit returns the same value."""
    john = tech_day(1, skills={"electrical": 4}, multiplier=1.5)
    demand = {"electrical": DemandCell(1.5, 1000.0)}
    cache = DisplacementCache()
    assert forecast_optimum([(john, 1)], demand, cache, ("k",)) == pytest.approx(1500.0)
    assert forecast_optimum([(john, 2)], demand, cache, ("k2",)) == pytest.approx(2250.0)
    assert forecast_optimum([(john, 1)], demand, cache, ("k",)) == pytest.approx(1500.0)
    assert cache.hits == 1 and cache.solves == 2
    assert forecast_optimum([(john, 1)], {"plumbing": DemandCell(3, 900.0)}) == 0.0


def test_capacity_units_count_free_minutes_of_the_window() -> None:
    """An empty 2-hour window holds one 90-minute unit; a stop covering it leaves none; off shift is zero."""
    d = tech_day(1, start=8, end=17)
    assert capacity_units(d, GRID.window(d.shift_start.date(), 0), 90) == 1
    assert capacity_units(d, GRID.window(d.shift_start.date(), 4), 90) == 0  # 16-18, shift ends at 17
    d.stops = [stop(1, at(8), 100, travel=0)]
    assert capacity_units(d, GRID.window(d.shift_start.date(), 0), 90) == 0


def test_forecast_from_history_averages_over_weeks_and_keeps_mean_value() -> None:
    """Four Thursday-morning electrical jobs over two weeks -> 2 expected per Thursday morning, mean value kept;
    records outside the period or outside every window are ignored."""
    recs = [DemandRecord(at(8, 30, day=THURSDAY - timedelta(weeks=w)), "electrical", v)
            for w, v in [(1, 100.0), (1, 300.0), (2, 200.0), (2, 200.0)]]
    recs.append(DemandRecord(at(8, 30, day=THURSDAY - timedelta(weeks=5)), "electrical", 9999.0))
    recs.append(DemandRecord(at(21, day=THURSDAY - timedelta(weeks=1)), "electrical", 9999.0))
    fc = forecast_from_history(recs, GRID, weeks=2, until=THURSDAY)
    cell = fc.demand(THURSDAY, 0)["electrical"]
    assert cell.expected_jobs == pytest.approx(2.0)
    assert cell.mean_value == pytest.approx(200.0)
    assert fc.demand(THURSDAY, 1) == {}


def test_configured_forecast_is_validated() -> None:
    """A configured forecast parses labels and rejects an unknown window with a message naming the field."""
    fc = forecast_from_dict({"cells": [{"weekday": 3, "window": "08-10", "skill": "electrical",
                                        "expected_jobs": 2, "mean_value": 1800}]}, GRID)
    assert fc.demand(THURSDAY, 0)["electrical"].mean_value == 1800
    with pytest.raises(ValueError, match=r"cells\[0\]: window"):
        forecast_from_dict({"cells": [{"weekday": 3, "window": "07-09", "skill": "x", "expected_jobs": 1,
                                       "mean_value": 1}]}, GRID)


def test_capacity_view_reports_booked_share_and_free_technicians() -> None:
    """John's morning is half booked (one hour of two) and he has no unit left; Mary is not on shift then."""
    days = _john_and_mary()
    days[0].stops = [stop(1, at(8, day=THURSDAY), 60, location=ORIGIN)]
    view = capacity_view(days, GRID, THURSDAY, SETTINGS)
    morning = view[0]
    assert morning.technicians == 1 and morning.free_technicians == 0
    assert morning.booked_share == pytest.approx(0.5)
    assert view[2].technicians == 2 and view[2].free_technicians == 2
    assert view[2].by_skill["electrical"]["technicians"] == 2
