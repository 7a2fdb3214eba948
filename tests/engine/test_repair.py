"""Bounded repair (engine.dispatch.repair): nobody can take a request by insertion, but moving one job not yet under way
to another technician, inside the window its customer was promised, makes room.

Tech 1 lives at the origin, works 08:00-12:00, has plumbing and hvac; job #7 (plumbing, 120 min) sits at
09:00-11:00, promised 09:00-09:30. Tech 2 lives 30 km north (30 min at 60 km/h), works 08:00-17:00, plumbing only.
The new request is hvac, 60 minutes, to start 09:00-10:30 at the origin: only tech 1 has hvac, and #7 is in the
way (it cannot move later than 09:30, and after it is too late).
"""

from __future__ import annotations

from engine.config import DispatchSettings
from engine.dispatch.decision import decide
from engine.dispatch.repair import repair
from engine.travel import GreatCircleTravel
from models.domain import JobRequirements
from tests.factories import at, job, north_km, stop, tech_day, window

TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=60.0)
RULES = DispatchSettings()


def _world(fixed: bool = False):  # type: ignore[no-untyped-def]
    one = tech_day(1, start=8, end=12, skills={"plumbing": 3, "hvac": 3},
                   stops=[stop(7, at(9), 120, win=window(9, 9, 0, 30), fixed=fixed)])
    two = tech_day(2, home=north_km(30), start=8, end=17, skills={"plumbing": 3})
    moved = job(7, minutes=120, skills={"plumbing": 2}, windows=[window(8, 12)])
    new = job(100, minutes=60, skills={"hvac": 2}, windows=[window(9, 10, 0, 30)], priority=3)
    return [one, two], new, {7: moved}


def test_one_move_makes_room_and_keeps_the_moved_customers_promise():
    days, new, others = _world()
    d = decide(new, days, TRAVEL, RULES)
    assert d.chosen is None  # nobody by insertion
    plan = repair(new, days, d.candidates, others.get, TRAVEL, RULES, budget_seconds=1.0)
    assert plan is not None and plan.decision.chosen is not None
    assert plan.decision.chosen.technician_id == 1
    assert plan.decision.chosen.insertion is not None and plan.decision.chosen.insertion.start == at(9)
    [m] = plan.moves
    assert (m.request_id, m.from_technician, m.to_technician) == (7, 1, 2)
    # The moved job starts inside the window its customer was told, 09:00-09:30, after a 30-minute drive.
    assert m.job.windows == [window(9, 9, 0, 30)] and at(9) <= m.insertion.start <= at(9, 30)
    assert plan.decision.moves == plan.moves
    # The request's own leg plus 30 min there and back for tech 2, less the 0 minutes tech 1 saves.
    assert plan.added_travel_minutes > 59 and plan.tried >= 1


def test_fixed_work_never_moves_and_an_unknown_job_stays():
    days, new, others = _world(fixed=True)
    d = decide(new, days, TRAVEL, RULES)
    assert repair(new, days, d.candidates, others.get, TRAVEL, RULES) is None
    days, new, _ = _world()
    d = decide(new, days, TRAVEL, RULES)
    nothing: dict[int, JobRequirements] = {}
    assert repair(new, days, d.candidates, nothing.get, TRAVEL, RULES) is None


def test_a_receiver_must_be_qualified_for_the_moved_job():
    """If tech 2 has no plumbing skill, nobody can receive #7: no plan."""
    days, new, others = _world()
    days[1].skills = {"electrical": 3}
    d = decide(new, days, TRAVEL, RULES)
    assert repair(new, days, d.candidates, others.get, TRAVEL, RULES) is None


def test_the_search_stops_at_its_budget():
    days, new, others = _world()
    d = decide(new, days, TRAVEL, RULES)
    assert repair(new, days, d.candidates, others.get, TRAVEL, RULES, budget_seconds=0.0) is None


def test_two_neighbouring_jobs_move_when_one_is_not_enough():
    """Tech 1 has #7 09:00-10:00 (promised 09:00-09:30) and #8 10:00-11:00 (promised 09:00-10:30); the new hvac
    job needs 120 minutes from 09:00-09:30. Moving either alone leaves no room; moving both does. Tech 2 takes
    both, one after the other (it sees #7 in its route when placing #8), inside their promised windows."""
    one = tech_day(1, start=8, end=12, skills={"plumbing": 3, "hvac": 3},
                   stops=[stop(7, at(9), 60, win=window(9, 9, 0, 30)),
                          stop(8, at(10), 60, win=window(9, 10, 0, 30))])
    two = tech_day(2, home=north_km(30), start=8, end=17, skills={"plumbing": 3})
    others = {7: job(7, minutes=60, skills={"plumbing": 2}), 8: job(8, minutes=60, skills={"plumbing": 2})}
    new = job(100, minutes=120, skills={"hvac": 2}, windows=[window(9, 9, 0, 30)], priority=3)
    d = decide(new, [one, two], TRAVEL, RULES)
    assert d.chosen is None
    plan = repair(new, [one, two], d.candidates, others.get, TRAVEL, RULES)
    assert plan is not None and plan.decision.chosen is not None and plan.decision.chosen.technician_id == 1
    assert [(m.request_id, m.to_technician) for m in plan.moves] == [(7, 2), (8, 2)]
    first, second = (m.insertion for m in plan.moves)
    assert first.end <= second.start  # #8 after #7, not on top of it
    assert at(9) <= first.start <= at(9, 30) and at(9) <= second.start <= at(10, 30)
