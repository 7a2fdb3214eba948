"""The live day's ETA propagation (engine.live) and shift patterns with exceptions (engine.rules.shifts), by hand."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from engine.live import StopFacts, propagate
from engine.rules.shifts import ShiftExceptionSpec, apply_exceptions
from engine.travel import GreatCircleTravel
from models import TimeWindow
from tests.factories import at, north_km, stop, window

# 60 km/h, no detour: 10 km = 10 minutes.
TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=60)


def _route() -> list:  # type: ignore[type-arg]
    """Three 60-minute jobs at 10, 20 and 30 km, planned 08:10, 09:20, 10:30, windows an hour wide."""
    return [stop(1, at(8, 10), 60, location=north_km(10), win=window(8, 9), travel=10),
            stop(2, at(9, 20), 60, location=north_km(20), win=window(9, 10), travel=10),
            stop(3, at(10, 30), 60, location=north_km(30), win=window(10, 11), travel=10)]


def test_no_facts_keeps_the_plan() -> None:
    """Nothing reported: every stop keeps its planned times and promise."""
    etas = propagate(_route(), {}, at(7), TRAVEL)
    assert [(e.start, e.end, e.breaks_promise) for e in etas] == [
        (at(8, 10), at(9, 10), False), (at(9, 20), at(10, 20), False), (at(10, 30), at(11, 30), False)]


def test_early_finish_pulls_later_stops_forward_but_not_before_their_window() -> None:
    """Job 1 done at 08:50: job 2 can start 09:00 (its window opens 09:00), job 3 at 10:10 (10:00 window)."""
    facts = {1: StopFacts("completed", arrived_at=at(8, 10), finished_at=at(8, 40))}
    etas = propagate(_route(), facts, at(8, 40), TRAVEL)
    assert etas[0].start == at(8, 10) and etas[0].end == at(8, 40)
    # 08:40 + 10 min = 08:50, but the window opens at 09:00.
    assert etas[1].start == at(9) and etas[1].end == at(10)
    assert etas[2].start == at(10, 10) and not etas[2].breaks_promise


def test_late_job_pushes_and_repromises() -> None:
    """Job 1 arrived 08:10 and reported 40 minutes late: it ends 09:50. Job 2 starts 10:00, the last minute of
    its 09-10 window (kept); job 3 starts 11:10, outside 10-11, and is re-promised 10:40-11:40."""
    facts = {1: StopFacts("arrived", arrived_at=at(8, 10), late_minutes=40)}
    etas = propagate(_route(), facts, at(8, 30), TRAVEL)
    assert etas[0].end == at(9, 50)
    assert etas[1].start == at(10) and not etas[1].breaks_promise
    assert etas[2].start == at(11, 10) and etas[2].breaks_promise
    assert etas[2].window == TimeWindow(at(10, 40), at(11, 40))


def test_job_in_progress_never_ends_before_now() -> None:
    """A job still under way at 09:30 (planned to end 09:10) ends at the earliest now: the next stop follows."""
    facts = {1: StopFacts("arrived", arrived_at=at(8, 10))}
    etas = propagate(_route(), facts, at(9, 30), TRAVEL)
    assert etas[0].end == at(9, 30)
    assert etas[1].start == at(9, 40)


def test_en_route_uses_the_reported_eta() -> None:
    facts = {1: StopFacts("en_route", departed_at=at(8), eta=at(8, 25))}
    etas = propagate(_route(), facts, at(8), TRAVEL)
    assert etas[0].start == at(8, 25) and etas[1].start == at(9, 35)


def test_bad_facts_are_refused() -> None:
    with pytest.raises(ValueError, match="needs an ETA"):
        StopFacts("en_route")
    with pytest.raises(ValueError, match="state must be one of"):
        StopFacts("teleported")


def test_exceptions_replace_the_pattern_day() -> None:
    """Weekdays 08-17; Tuesday off, Wednesday 10:00-14:00: only those days change."""
    from engine.rules.availability import weekly_intervals
    from models.rules import WeeklyHours

    hours = [WeeklyHours(d, time(8), time(17)) for d in range(5)]
    monday = at(0).replace(hour=0)
    base = weekly_intervals(hours, monday, monday + timedelta(days=3), "America/Chicago")
    out = apply_exceptions(base, [ShiftExceptionSpec(date(2030, 1, 8)),
                                  ShiftExceptionSpec(date(2030, 1, 9), time(10), time(14))], "America/Chicago")
    assert TimeWindow(at(8), at(17)) in out
    assert not any(w.start.date() == date(2030, 1, 8) for w in out)
    assert TimeWindow(at(10, day=date(2030, 1, 9)), at(14, day=date(2030, 1, 9))) in out
    with pytest.raises(ValueError, match="both start and end"):
        ShiftExceptionSpec(date(2030, 1, 9), time(10))


def test_retiming_a_retimed_route_changes_nothing() -> None:
    """Reports are counted once: propagating again over the route already re-timed (as the database holds it)
    gives the same times, also for a delay on a job in progress and on a stop not yet started."""
    route = _route()
    facts = {1: StopFacts("arrived", arrived_at=at(8, 10), late_minutes=40, planned_start=at(8, 10),
                          planned_end=at(9, 10)),
             3: StopFacts("planned", late_minutes=15, planned_start=at(10, 30), planned_end=at(11, 30))}
    first = propagate(route, facts, at(8, 30), TRAVEL)
    for s, e in zip(route, first, strict=True):
        s.start, s.end, s.window = e.start, e.end, e.window
    second = propagate(route, facts, at(8, 30), TRAVEL)
    assert [(e.start, e.end) for e in second] == [(e.start, e.end) for e in first]
    # Job 1 ends 09:50; job 3 would start 11:10 and is 15 minutes later still.
    assert first[0].end == at(9, 50) and first[2].start == at(11, 25)
