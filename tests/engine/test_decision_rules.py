"""The decision's rules added for real dispatch days: hard-then-soft boundary relaxation (recorded), a
dispatcher's overrides, why-not's score gap, a relocation's own home base, and absences in utilisation.

The map is the one of test_territories: West (lon -97..-96.8) and East (lon -96.8..-96.5), 60 km/h great-circle.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from engine.config import DispatchSettings
from engine.dispatch.decision import decide, score_gap
from engine.dispatch.eligibility import ineligibility_reasons
from engine.dispatch.insertion import best_insertion, utilisation
from engine.metrics import day_metrics
from engine.rules.territories import home_base, job_rules_for, radius_reasons
from engine.travel import GreatCircleTravel
from models.domain import TimeWindow
from models.rules import Membership, SchedulingPolicy, TechnicianRules
from tests.engine.test_territories import ALL, IN_EAST, IN_WEST, NAMES, member
from tests.factories import DAY, at, job, north_km, stop, tech_day, window

TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=60.0)
RULES = DispatchSettings()


def _east_job(mode: str, **kw):  # type: ignore[no-untyped-def]
    j = job(location=IN_EAST, **kw)
    j.rules = job_rules_for(IN_EAST, ALL, boundary=mode)
    return j


def _east_and_west(east_active: bool = True):  # type: ignore[no-untyped-def]
    """Tech 1: primary East, 30 km north of the job. Tech 2: primary West, secondary East, 5 km from the job."""
    east = tech_day(1, home=north_km(30, IN_EAST))
    east.rules = TechnicianRules(1, east.home, (member(3, tech=1),), territory_names=NAMES)
    east.active = east_active
    west = tech_day(2, home=north_km(5, IN_EAST))
    west.rules = TechnicianRules(2, west.home, (member(2, tech=2), member(3, "secondary", tech=2)),
                                 territory_names=NAMES)
    return [east, west]


def test_the_new_boundary_mode_is_a_valid_policy():
    assert SchedulingPolicy(("hard_then_soft",) * 5 + ("soft",) * 2).mode_on(DAY) == "hard_then_soft"
    with pytest.raises(ValueError, match="boundary mode must be one of hard, soft, hard_then_soft"):
        SchedulingPolicy(("firm",) * 7)


def test_hard_then_soft_keeps_the_hard_boundary_when_someone_inside_can_take_it():
    """The East technician can: chosen, no relaxation; the closer West one is told East is only secondary."""
    d = decide(_east_job("hard_then_soft"), _east_and_west(), TRAVEL, RULES)
    assert d.chosen is not None and d.chosen.technician_id == 1
    assert d.boundary == "hard" and d.relaxation is None
    assert "only a secondary territory" in d.why_not()[2][0]


def test_hard_then_soft_relaxes_when_nobody_inside_can_and_records_it():
    """Nobody inside East can (the East technician is inactive): under 'hard' it escalates; under
    'hard_then_soft' the West technician with East as a secondary takes it and the relaxation is recorded."""
    hard = decide(_east_job("hard"), _east_and_west(east_active=False), TRAVEL, RULES)
    assert hard.chosen is None
    d = decide(_east_job("hard_then_soft"), _east_and_west(east_active=False), TRAVEL, RULES)
    assert d.chosen is not None and d.chosen.technician_id == 2 and d.boundary == "soft"
    assert d.relaxation is not None and d.relaxation.startswith("hard boundary relaxed: nobody with East")
    # Plain soft places it the same way but it is not a relaxation of a hard rule.
    soft = decide(_east_job("soft"), _east_and_west(east_active=False), TRAVEL, RULES)
    assert soft.chosen is not None and soft.chosen.technician_id == 2 and soft.relaxation is None


def test_hard_then_soft_displaces_inside_the_boundary_before_relaxing_it():
    """An emergency: the East technician's day is full of routine work (priority 8), the West one is free.
    'soft' sends the emergency across the boundary; 'hard_then_soft' displaces inside it first."""
    def days():  # type: ignore[no-untyped-def]
        d = _east_and_west()
        # Promised 08:15-08:45: the routine stop cannot be pushed back to fit the emergency before it.
        d[0].stops = [stop(7, at(8, 30), 120, location=IN_EAST, win=window(8, 8, 15, 45), travel=30)]
        d[0].stops[0].priority = 8
        d[0].shift_end = at(12)
        return d
    emergency = dict(priority=1, minutes=60, windows=[window(8, 9)])
    soft = decide(_east_job("soft", **emergency), days(), TRAVEL, RULES)
    assert soft.chosen is not None and soft.chosen.technician_id == 2 and not soft.displaced
    d = decide(_east_job("hard_then_soft", **emergency), days(), TRAVEL, RULES)
    assert d.chosen is not None and d.chosen.technician_id == 1
    assert [s.request_id for s in d.displaced] == [7] and d.relaxation is None


def test_a_dispatcher_may_override_territory_and_skill_level_but_not_a_missing_skill():
    west = tech_day(2, home=IN_WEST, skills={"plumbing": 1})
    west.rules = TechnicianRules(2, west.home, (member(2, tech=2),), territory_names=NAMES)
    j = _east_job("hard", skills={"plumbing": 2})
    assert ineligibility_reasons(west, j) == [
        "plumbing level 1 below the required 2",
        "outside territory: East is not one of theirs (West)"]
    assert ineligibility_reasons(west, j, overrides=frozenset({"territory"})) == [
        "plumbing level 1 below the required 2"]
    assert ineligibility_reasons(west, j, overrides=frozenset({"territory", "skill_level"})) == []
    d = decide(j, [west], TRAVEL, RULES, frozenset({"territory", "skill_level"}))
    assert d.chosen is not None and d.overrides == {"territory", "skill_level"} and d.boundary is None
    no_skill = _east_job("hard", skills={"hvac": 1})
    assert "no hvac skill" in ineligibility_reasons(west, no_skill, overrides=frozenset({"skill_level"}))


def test_an_expired_certification_yields_only_to_its_own_override():
    day = tech_day(1, certs={"gas": DAY - timedelta(days=1)})
    j = job(certs=["gas"])
    assert ineligibility_reasons(day, j, overrides=frozenset({"territory", "skill_level"})) == [
        "no gas certification (expired 2030-01-06)"]
    assert ineligibility_reasons(day, j, overrides=frozenset({"expired_certification"})) == []
    assert ineligibility_reasons(tech_day(1), j, overrides=frozenset({"expired_certification"})) == [
        "no gas certification"]


def test_utilisation_override_lets_a_busy_technician_take_the_job():
    busy = tech_day(1, start=8, end=12, stops=[stop(1, at(8), 190)])
    assert decide(job(windows=[window(8, 12)], minutes=30), [busy], TRAVEL, RULES).chosen is None
    d = decide(job(windows=[window(8, 12)], minutes=30), [busy], TRAVEL, RULES, frozenset({"utilisation"}))
    assert d.chosen is not None


def test_score_gap_names_the_components_the_winner_is_ahead_on():
    """Same skills and value; tech 1 lives at the job, tech 2 30 km away: the gap is on travel (and nothing
    where they tie), and it adds up to the difference of the totals."""
    d = decide(job(), [tech_day(1), tech_day(2, home=north_km(30))], TRAVEL, RULES)
    assert d.chosen is not None and d.chosen.technician_id == 1
    loser = next(c for c in d.candidates if c.technician_id == 2)
    gap = score_gap(d.chosen, loser, RULES)
    assert gap[0][0] == "travel" and gap[0][1] > 0
    assert "skill" not in dict(gap) and "preference" not in dict(gap)
    assert d.chosen.score and loser.score
    assert sum(x for _, x in gap) == pytest.approx(d.chosen.score.total - loser.score.total, abs=0.002)


def test_a_relocation_carries_its_own_home_base_and_radius_centre_for_its_dates():
    """Permanent home in West; relocated to East 6-8 January with a home base in East and a 10 km radius
    around it: on the 7th the day starts there and the radius is measured from it; on the 9th it is over."""
    east_base = north_km(2, IN_EAST)
    reloc = Membership(1, 3, "relocation", date(2030, 1, 6), date(2030, 1, 8), max_radius_km=10, home=east_base)
    tech = TechnicianRules(1, IN_WEST, (member(2), reloc), territory_names=NAMES)
    assert home_base(tech, IN_WEST, DAY) == east_base
    assert home_base(tech, IN_WEST, date(2030, 1, 9)) == IN_WEST
    j = job(location=IN_EAST).rules
    jr = job_rules_for(IN_EAST, ALL, boundary="hard")
    assert j is None and radius_reasons(tech, jr, IN_EAST, DAY) == []
    far = north_km(15, east_base)
    assert radius_reasons(tech, job_rules_for(far, ALL), far, DAY) == ["outside the 10 km travel radius (15 km)"]
    with pytest.raises(ValueError, match="only a relocation may carry its own home base"):
        Membership(1, 2, "primary", date(2030, 1, 1), home=east_base)


def test_an_absence_cuts_the_time_utilisation_is_measured_against():
    """An 8-hour shift with 4 hours absent and 2 hours of work is 50% used, not 25%."""
    day = tech_day(1, start=8, end=16, stops=[stop(1, at(8), 120)])
    day.available = [TimeWindow(at(8), at(12))]
    assert utilisation(day, TRAVEL) == pytest.approx(0.5)


def test_a_technician_absent_all_shift_is_not_counted_as_on_shift():
    present = tech_day(1, stops=[stop(1, at(9), 60)])
    absent = tech_day(2)
    absent.available = []
    assert not absent.on_shift and best_insertion(absent, job(), TRAVEL) is None
    m = day_metrics([present, absent], TRAVEL)
    assert m.technicians == 1 and m.average_utilisation == pytest.approx(utilisation(present, TRAVEL))
