"""Emergency displacement: a priority 1-2 job that fits nowhere takes the place of the least urgent movable work.

Travel is great-circle at 60 km/h (1 km = 1 minute); every place is the origin unless said otherwise, so the
route's timing is the stops' own.
"""

from __future__ import annotations

from engine.config import DispatchSettings
from engine.dispatch.decision import apply_decision, decide
from engine.dispatch.displacement import displacement_plan, without_stops
from engine.travel import GreatCircleTravel
from models.domain import TimeWindow
from tests.factories import at, job, north_km, stop, tech_day, window

TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=60.0)
RULES = DispatchSettings(utilisation_target=1.0)


def full_day():  # type: ignore[no-untyped-def]
    """08:00-12:00 filled by two 2-hour stops: #1 priority 3, #2 priority 8; windows that cannot move."""
    s1 = stop(1, at(8), 120, win=TimeWindow(at(8), at(8, 1)))
    s1.priority = 3
    s2 = stop(2, at(10), 120, win=TimeWindow(at(10), at(10, 1)))
    s2.priority = 8
    return tech_day(start=8, end=12, stops=[s1, s2])


def test_emergency_displaces_the_least_urgent_stop():
    """A priority-1 job of 2 hours (08:00-12:00) fits only by removing a stop; the priority-8 one goes, not the
    priority-3 one, and the emergency takes its place at 10:00."""
    plan = displacement_plan(full_day(), job(minutes=120, priority=1, windows=[window(8, 12)]), TRAVEL)
    assert plan is not None
    assert [s.request_id for s in plan.removed] == [2]
    assert plan.insertion.start == at(10)


def test_ordinary_work_never_displaces():
    """A priority-5 job in the same full day: no plan, the decision escalates."""
    assert displacement_plan(full_day(), job(minutes=120, priority=5), TRAVEL) is None
    assert decide(job(minutes=120, priority=5), [full_day()], TRAVEL, RULES).chosen is None


def test_fixed_and_more_urgent_stops_stay():
    """A priority-2 emergency cannot displace a locked stop nor a priority-1 one."""
    day = full_day()
    day.stops[1].fixed = True
    day.stops[0].priority = 1
    assert displacement_plan(day, job(minutes=120, priority=2, windows=[window(8, 12)]), TRAVEL) is None


def test_two_stops_displaced_when_one_is_not_enough():
    """A 4-hour emergency needs the whole morning: both stops are displaced."""
    plan = displacement_plan(full_day(), job(minutes=240, priority=1, windows=[window(8, 12)]), TRAVEL)
    assert plan is not None and sorted(s.request_id for s in plan.removed) == [1, 2]


def test_decision_records_the_displaced_stops_and_the_route_update_drops_them():
    """The decision chooses the displacement only because nobody fits otherwise; applying it leaves #1 and the
    emergency in the route, and the original day is untouched until then."""
    day = full_day()
    j = job(minutes=120, priority=1, windows=[window(8, 12)])
    d = decide(j, [day], TRAVEL, RULES)
    assert d.chosen is not None and [s.request_id for s in d.displaced] == [2]
    assert [s.request_id for s in day.stops] == [1, 2]
    apply_decision(d, j, TRAVEL)
    assert [s.request_id for s in d.chosen.day.stops] == [1, 100]  # type: ignore[union-attr]


def test_displacement_only_when_nobody_fits_without_it():
    """A second technician with a free morning takes the emergency; nothing is displaced."""
    d = decide(job(minutes=120, priority=1, windows=[window(8, 12)]), [full_day(), tech_day(2, start=8, end=12)],
               TRAVEL, RULES)
    assert d.chosen is not None and d.chosen.technician_id == 2 and d.displaced == []


def test_removing_a_stop_recomputes_the_next_leg():
    """Route home -> A (10 km) -> B (20 km) -> C (30 km): without B, the leg into C is 20 minutes (A to C)."""
    a = stop(1, at(8, 10), 30, location=north_km(10), travel=10)
    b = stop(2, at(8, 50), 30, location=north_km(20), travel=10)
    c = stop(3, at(9, 30), 30, location=north_km(30), travel=10)
    left = without_stops(tech_day(stops=[a, b, c]), [2], TRAVEL)
    assert [s.request_id for s in left.stops] == [1, 3]
    assert abs(left.stops[1].travel_minutes - 20) < 0.01
