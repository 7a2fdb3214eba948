"""Engine of the per-request decision on routes small enough to check by hand.

Travel is great-circle at 60 km/h with no detour, so one kilometre is one minute.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from engine.config import DispatchSettings, ScoringWeights
from engine.dispatch.analysis import analyse_requirements
from engine.dispatch.decision import apply_decision, decide
from engine.dispatch.eligibility import ineligibility_reasons
from engine.dispatch.insertion import best_insertion, promised_window, utilisation
from engine.travel import GreatCircleTravel
from models import JobTypeSpec, TimeWindow
from tests.factories import DAY, ORIGIN, at, job, north_km, stop, tech_day, window

TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=60.0)
RULES = DispatchSettings()


def minutes_between(a, b) -> float:  # type: ignore[no-untyped-def]
    return (b - a).total_seconds() / 60


# ------------------------------------------------------------------ eligibility


def test_missing_or_low_skill_is_named():
    """A technician without the skill, or below the level, is ineligible and the reason names the skill."""
    j = job(skills={"plumbing": 3, "gas fitting": 1})
    reasons = ineligibility_reasons(tech_day(skills={"plumbing": 2}), j)
    assert "plumbing level 2 below the required 3" in reasons
    assert "no gas fitting skill" in reasons


def test_certification_expired_the_day_before_is_refused():
    """A permit that expired yesterday makes the technician ineligible, with the expiry date in the reason."""
    yesterday = DAY - timedelta(days=1)
    j = job(certs=["gas"])
    assert ineligibility_reasons(tech_day(certs={"gas": yesterday}), j) == [
        f"no gas certification (expired {yesterday.isoformat()})"]
    assert ineligibility_reasons(tech_day(certs={"gas": DAY}), j) == []
    assert ineligibility_reasons(tech_day(certs={}), j) == ["no gas certification"]


def test_excluded_technician_and_on_call_priority():
    """Customer exclusions and on-call shifts limited to emergencies turn candidates down."""
    assert "excluded by the customer" in ineligibility_reasons(tech_day(tid=7), job(excluded={7}))
    on_call = tech_day(max_priority=2)
    assert ineligibility_reasons(on_call, job(priority=1)) == []
    assert any("on-call shift" in r for r in ineligibility_reasons(on_call, job(priority=5)))


def test_no_shift_covers_the_window():
    """A window entirely outside the shift is refused as 'no shift covers the window'."""
    assert ineligibility_reasons(tech_day(start=8, end=12), job(windows=[window(13, 17)])) == [
        "no shift covers the window"]


# ------------------------------------------------------------------ insertion


def test_empty_route_waits_for_the_window_and_counts_both_legs():
    """Into an empty route the job starts at its window start; added travel is there and back."""
    j = job(location=north_km(10), windows=[window(10, 12)])
    ins = best_insertion(tech_day(), j, TRAVEL)
    assert ins is not None
    assert ins.start == at(10)
    assert ins.arrival == at(8, 10)
    assert ins.added_travel_minutes == pytest.approx(20, abs=0.01)


def test_insertion_respects_the_shift_end():
    """A job that would end after the shift end (or not leave time to drive home) is not inserted."""
    far = job(location=north_km(30), minutes=60, windows=[window(15, 17)])
    assert best_insertion(tech_day(end=17), far, TRAVEL) is not None  # 15:00-16:00, home 16:30
    assert best_insertion(tech_day(end=16), far, TRAVEL) is None


def test_insertion_never_breaks_a_promised_window():
    """Putting the job first would push the 9:00 stop past its 9:30 promise, so it goes after."""
    existing = stop(1, at(9), 60, location=ORIGIN, win=window(8, 9, 30, 30))
    existing.travel_minutes = 0
    j = job(location=north_km(20), minutes=60, windows=[window(8, 17)])
    ins = best_insertion(tech_day(stops=[existing]), j, TRAVEL)
    assert ins is not None
    # First would be 8:20-9:20 and back at 9:40, outside 8:30-9:30: infeasible, so after the stop.
    assert ins.position == 1
    assert ins.start == at(10, 20)
    assert ins.broken_promises == []


def test_insertion_pushes_later_stops_inside_their_windows():
    """A job inserted before a stop delays it, and the delay is reported within its promise."""
    later = stop(1, at(11), 30, location=ORIGIN, win=window(10, 12))
    j = job(location=ORIGIN, minutes=60, windows=[window(10, 11)])
    ins = best_insertion(tech_day(stops=[later]), j, TRAVEL)
    assert ins is not None and ins.position == 0 and ins.start == at(10)
    assert ins.later_stops == []  # 10:00-11:00 then 11:00 at the same place: no delay
    j2 = job(location=ORIGIN, minutes=90, windows=[window(10, 10, 0, 30)])
    ins2 = best_insertion(tech_day(stops=[later]), j2, TRAVEL)
    assert ins2 is not None and ins2.position == 0
    assert [(c.request_id, c.new_start) for c in ins2.later_stops] == [(1, at(11, 30))]


def test_fixed_stops_never_move():
    """A locked stop that would have to move later blocks the insertion in front of it."""
    locked = stop(1, at(9), 60, location=ORIGIN, win=window(8, 12), fixed=True)
    j = job(location=ORIGIN, minutes=90, windows=[window(8, 9)])
    assert best_insertion(tech_day(stops=[locked]), j, TRAVEL) is None
    locked.fixed = False
    assert best_insertion(tech_day(stops=[locked]), j, TRAVEL) is not None


def test_emergency_takes_the_earliest_start_not_the_least_travel():
    """Route: home 9-10 (stop 1), 30 km north 12-13 (stop 2). A 30-minute job 30 km north adds no travel
    between the stops (10:30), but as an emergency it goes first (8:30) and pushes stop 1 within its window."""
    s1 = stop(1, at(9), 60, location=ORIGIN, win=window(8, 10), travel=0)
    s2 = stop(2, at(12), 60, location=north_km(30), win=window(11, 14), travel=30)
    day = tech_day(stops=[s1, s2])
    ordinary = best_insertion(day, job(location=north_km(30), minutes=30, priority=5), TRAVEL)
    assert ordinary is not None and ordinary.position == 1 and ordinary.start == at(10, 30)
    assert ordinary.added_travel_minutes == pytest.approx(0, abs=0.01)
    urgent = best_insertion(day, job(location=north_km(30), minutes=30, priority=1), TRAVEL)
    assert urgent is not None and urgent.position == 0 and urgent.start == at(8, 30)
    assert [(c.request_id, c.new_start) for c in urgent.later_stops] == [(1, at(9, 30))]


# ------------------------------------------------------------------ utilisation and threshold


def test_utilisation_counts_work_and_all_travel():
    """(two 60-minute jobs + 10 + 0 + 10 minutes of driving) over a 9-hour shift."""
    a = stop(1, at(9), 60, location=north_km(10), travel=10)
    b = stop(2, at(10), 60, location=north_km(10), travel=0)
    day = tech_day(stops=[a, b])
    assert utilisation(day, TRAVEL) == pytest.approx((120 + 20) / 540, abs=1e-4)


def test_threshold_escalates_when_nobody_is_under_85_percent():
    """A technician at 444 of 540 minutes (82%) cannot take a 30-minute job: 87% > 85%, so escalate."""
    busy = [stop(i, at(8) + timedelta(minutes=74 * i), 74, location=ORIGIN) for i in range(6)]
    day = tech_day(stops=busy)
    assert utilisation(day, TRAVEL) == pytest.approx(444 / 540)
    d = decide(job(minutes=30, windows=[window(8, 17)]), [day], TRAVEL, RULES)
    assert d.escalated
    assert d.escalation_reason == "no qualified technician below the 85% utilisation target"
    assert any("would exceed 85% utilisation" in r for r in d.candidates[0].reasons)
    # Counting only the load before the job, 82% < 85% lets it in.
    lenient = DispatchSettings(count_new_job_in_utilisation=False)
    assert not decide(job(minutes=30, windows=[window(8, 17)]), [day], TRAVEL, lenient).escalated


def test_escalation_reason_when_nobody_is_qualified():
    """Nobody with the skill: the escalation says so, and each candidate says why not."""
    d = decide(job(skills={"hvac": 2}), [tech_day(1), tech_day(2)], TRAVEL, RULES)
    assert d.escalated and d.escalation_reason == "no qualified technician"
    assert d.why_not() == {1: ["no hvac skill"], 2: ["no hvac skill"]}


# ------------------------------------------------------------------ scoring and choice


def test_closest_technician_wins_when_all_else_is_equal():
    """Two identical technicians; the one living 5 km from the job beats the one 40 km away."""
    near, far = tech_day(1, home=north_km(5)), tech_day(2, home=north_km(40))
    d = decide(job(location=ORIGIN), [far, near], TRAVEL, RULES)
    assert d.chosen is not None and d.chosen.technician_id == 1
    assert d.chosen.score is not None and d.chosen.score.travel > d.candidates[0].score.travel  # type: ignore[union-attr]


def test_preferred_technician_and_upsell_multiplier_tip_the_balance():
    """With equal travel, the customer's preferred technician wins; without a preference, the higher
    upsell multiplier (expected value) wins."""
    a, b = tech_day(1), tech_day(2)
    assert decide(job(preferred={2}), [a, b], TRAVEL, RULES).chosen.technician_id == 2  # type: ignore[union-attr]
    a2, b2 = tech_day(1, multiplier=1.0), tech_day(2, multiplier=1.3)
    d = decide(job(), [a2, b2], TRAVEL, RULES)
    assert d.chosen is not None and d.chosen.technician_id == 2
    assert d.chosen.score is not None and d.chosen.score.expected_value == pytest.approx(130)


def test_weights_are_configurable():
    """Putting all weight on workload makes the idle technician win over the nearer busy one."""
    busy = tech_day(1, stops=[stop(9, at(13), 120, location=ORIGIN)])
    idle = tech_day(2, home=north_km(15))
    only_workload = DispatchSettings(weights=ScoringWeights(travel=0, skill=0, workload=1, preference=0, value=0))
    assert decide(job(), [busy, idle], TRAVEL, RULES).chosen.technician_id == 1  # type: ignore[union-attr]
    assert decide(job(), [busy, idle], TRAVEL, only_workload).chosen.technician_id == 2  # type: ignore[union-attr]


def test_apply_decision_updates_the_route_and_next_leg():
    """The route update inserts the job in order and the next stop's leg starts from the new job."""
    s1 = stop(1, at(14), 60, location=north_km(20), win=window(13, 16), travel=20)
    day = tech_day(stops=[s1])
    j = job(location=north_km(10), windows=[window(9, 11)])
    d = decide(j, [day], TRAVEL, RULES)
    new = apply_decision(d, j, TRAVEL)
    assert [s.request_id for s in day.stops] == [100, 1]
    assert new.start == at(9) and day.stops[1].travel_minutes == pytest.approx(10, abs=0.01)
    assert d.arrival_window is not None and d.arrival_window.contains(new.start)


# ------------------------------------------------------------------ promised window and analysis


def test_promised_window_is_two_hours_on_the_half_hour_inside_the_customer_window():
    """Start 10:17 in 08-12 -> told 09:00-11:00; start 11:50 -> told 10:30-12:00 (clipped), both containing it."""
    assert promised_window(at(10, 17), window(8, 12), 120, 30) == TimeWindow(at(9), at(11))
    w = promised_window(at(11, 50), window(8, 12), 120, 30)
    assert w == TimeWindow(at(10, 30), at(12)) and w.contains(at(11, 50))
    w2 = promised_window(at(12), window(8, 12), 120, 30)
    assert w2.contains(at(12)) and w2.start >= at(8)


def test_analysis_takes_levels_by_complexity_and_catalogue_defaults():
    """High complexity raises the level; duration and parts come from the catalogue when missing."""
    jt = JobTypeSpec("water heater repair", 90, {"low": {"plumbing": 2}, "high": {"plumbing": 4}}, ("gas",),
                     {"thermocouple": 1})
    req = analyse_requirements(request_id=1, location=ORIGIN, job_type=jt, complexity="high",
                               required_skills={"plumbing": 3, "welding": 1}, received_at=at(7))
    assert req.required_skills == {"plumbing": 4, "welding": 1}
    assert req.duration_minutes == 90 and req.parts_needed == {"thermocouple": 1}
    assert req.required_certifications == ["gas"]
    assert req.windows == [TimeWindow(at(7), at(7) + timedelta(days=2))]
    with pytest.raises(ValueError, match="complexity"):
        analyse_requirements(request_id=1, location=ORIGIN, job_type=jt, complexity="extreme", received_at=at(7))


def test_missing_parts_add_a_depot_detour_or_rule_the_van_out():
    """Without the part on the van: 30 minutes of detour by default, or ineligible by configuration."""
    j = job(parts={"capacitor": 1}, windows=[window(8, 17)])
    d = decide(j, [tech_day(inventory={})], TRAVEL, RULES)
    assert d.chosen is not None and d.chosen.insertion is not None
    assert d.chosen.insertion.parts_detour_minutes == 30
    strict = DispatchSettings(missing_parts_policy="ineligible")
    d2 = decide(j, [tech_day(inventory={})], TRAVEL, strict)
    assert d2.escalated and d2.candidates[0].reasons == ["van lacks 1 x capacitor"]
    assert not decide(j, [tech_day(inventory={"capacitor": 2})], TRAVEL, strict).escalated


def test_dates_are_checked_against_the_shift_day():
    """Sanity of the factories: the shift is on DAY."""
    assert tech_day().shift_start.date() == DAY == date(2030, 1, 7)


def test_a_depot_detour_stays_on_the_leg_when_the_stop_is_pushed():
    """Stop 1 (at home, 10:00) needs a 30-minute depot detour first. A job inserted 09:00-10:00 before it
    pushes it to 10:30, not 10:00, and the next leg keeps the detour after the route update."""
    s1 = stop(1, at(10), 60, location=ORIGIN, win=window(9, 12), travel=30)
    s1.detour_minutes = 30
    day = tech_day(stops=[s1])
    j = job(location=ORIGIN, minutes=60, windows=[window(9, 9, 0, 30)])
    ins = best_insertion(day, j, TRAVEL)
    assert ins is not None and ins.position == 0
    assert [(c.request_id, c.new_start) for c in ins.later_stops] == [(1, at(10, 30))]
    d = decide(j, [day], TRAVEL, RULES)
    apply_decision(d, j, TRAVEL)
    assert day.stops[1].travel_minutes == pytest.approx(30) and day.stops[1].start == at(10, 30)
