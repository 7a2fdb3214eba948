"""Availability (operating hours, overlapping shifts, absences), visiting hours, customer closed hours and the
travel policy, each on a scenario small enough to check by hand.

Times are on Monday 2030-01-07 in America/Chicago. Travel is great-circle at 60 km/h (1 km = 1 minute).
"""

from __future__ import annotations

from datetime import time, timedelta

from engine.config import DispatchSettings
from engine.dispatch.decision import decide
from engine.dispatch.eligibility import ineligibility_reasons
from engine.dispatch.insertion import best_insertion
from engine.rules.availability import (
    available_intervals,
    customer_windows,
    earliest_first_start,
    effective_windows,
    latest_last_end,
    merge,
    subtract,
    visiting_start_windows,
)
from engine.travel import GreatCircleTravel
from models.domain import TimeWindow
from models.rules import Absence, JobRules, TravelPolicy, WeeklyHours
from tests.factories import ORIGIN, at, job, north_km, tech_day, window

TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=60.0)
RULES = DispatchSettings()
TZ = "America/Chicago"
MON, WED = 0, 2


def near(a, b) -> bool:  # type: ignore[no-untyped-def]
    """Equal to the second (great-circle minutes are not whole)."""
    return abs((a - b).total_seconds()) < 1


def test_interval_algebra():
    """Overlapping intervals merge; subtracting a middle piece splits one in two."""
    assert merge([window(8, 12), window(11, 14), window(15, 16)]) == [window(8, 14), window(15, 16)]
    assert subtract([window(8, 17)], [window(12, 13)]) == [window(8, 12), window(13, 17)]


def test_operating_hours_and_overlapping_shifts_minus_absences():
    """Weekly hours Mon 08:00-12:00, a dated shift 11:00-15:00 (overlapping) and an on-call 14:00-18:00, minus an
    absence 09:00-10:00: available 08:00-09:00 and 10:00-18:00."""
    got = available_intervals(at(0), at(23, 59), shifts=[window(11, 15), window(14, 18)],
                              operating_hours=[WeeklyHours(MON, time(8), time(12))], tz=TZ,
                              absences=[window(9, 10)])
    assert got == [window(8, 9), window(10, 18)]


def test_operating_hours_apply_only_on_their_weekday():
    """Wednesday-only hours give nothing on Monday."""
    assert available_intervals(at(0), at(23), operating_hours=[WeeklyHours(WED, time(8), time(17))], tz=TZ) == []


def test_absence_makes_the_technician_ineligible_with_the_date():
    """A technician absent all day (sick) is refused: 'not available: absent 2030-01-07 (sick)'."""
    day = tech_day()
    day.absences = [Absence(1, at(0), at(23, 59), "sick")]
    day.available = subtract([TimeWindow(day.shift_start, day.shift_end)], [TimeWindow(at(0), at(23, 59))])
    assert day.available == []
    assert "not available: absent 2030-01-07 (sick)" in ineligibility_reasons(day, job())


def test_insertion_skips_an_absence_inside_the_shift():
    """Shift 08:00-17:00 with an absence 08:00-12:00 (a dentist appointment): a 60-minute job in an 08:00-17:00
    window starts at 12:00, not 08:00."""
    day = tech_day()
    day.available = [window(12, 17)]
    ins = best_insertion(day, job(minutes=60), TRAVEL)
    assert ins is not None and ins.start == at(12)


def test_visiting_hours_restrict_the_start_so_the_job_fits_inside():
    """Territory visited Mon 08:00-12:00 and Wed 13:00-18:00: a 90-minute Monday job in an 08:00-17:00 window
    may start only 08:00-10:30."""
    hours = [WeeklyHours(MON, time(8), time(12)), WeeklyHours(WED, time(13), time(18))]
    assert visiting_start_windows([window(8, 17)], hours, TZ, 90) == [window(8, 10, 0, 30)]


def test_job_outside_visiting_hours_is_refused_with_the_hours():
    """The same territory on a Monday afternoon window: nobody may take it, and the reason lists the hours."""
    j = job(windows=[window(13, 17)])
    j.rules = JobRules(territory_id=9, territory_name="Rural", timezone=TZ,
                       visiting_hours=(WeeklyHours(MON, time(8), time(12)), WeeklyHours(WED, time(13), time(18))))
    reasons = ineligibility_reasons(tech_day(), j)
    assert "territory visited only Mon 08:00-12:00, Wed 13:00-18:00" in reasons
    assert decide(j, [tech_day()], TRAVEL, RULES).chosen is None


def test_customer_closed_hours_split_the_arrival_window():
    """A shop closed 13:00-15:00 with a 12:00-17:00 window gets arrivals 12:00-13:00 or 15:00-17:00 only."""
    assert customer_windows([window(12, 17)], [WeeklyHours(MON, time(13), time(15))], TZ) == [
        window(12, 13), window(15, 17)]


def test_no_arrival_during_closed_hours():
    """The technician's route is busy until 12:45 far away so the earliest arrival is 13:15; with the shop
    closed 13:00-15:00 the job starts at 15:00."""
    from tests.factories import stop

    far = north_km(30)
    day = tech_day(stops=[stop(1, at(11, 45), 60, location=far, win=window(11, 13), travel=0)])
    j = job(windows=[window(12, 17)])
    j.rules = JobRules(timezone=TZ, closed_hours=(WeeklyHours(MON, time(13), time(15)),))
    assert effective_windows(j) == [window(12, 13), window(15, 17)]
    ins = best_insertion(day, j, TRAVEL)
    assert ins is not None and ins.start == at(15)


def test_travel_on_company_time_technician_time_or_partly():
    """Home 40 km (40 min) from the first job, shift 08:00-17:00: company time arrives 08:40, technician time
    08:00, 'first 30 minutes on the technician' 08:10. The way back: the last job must end by 16:20, 17:00, 16:50.
    """
    j = job(location=north_km(40))
    day = tech_day()
    assert near(earliest_first_start(day, j.location, TRAVEL), at(8, 40))
    assert near(latest_last_end(day, j.location, TRAVEL), at(16, 20))
    day.travel_policy = TravelPolicy(outbound="technician", inbound="technician")
    assert near(earliest_first_start(day, j.location, TRAVEL), at(8, 0))
    assert near(latest_last_end(day, j.location, TRAVEL), at(17, 0))
    day.travel_policy = TravelPolicy(outbound="partial", outbound_own_minutes=30, inbound="partial",
                                     inbound_own_minutes=30)
    assert near(earliest_first_start(day, j.location, TRAVEL), at(8, 10))
    assert near(latest_last_end(day, j.location, TRAVEL), at(16, 50))
    ins = best_insertion(day, j, TRAVEL)
    assert ins is not None and near(ins.start, at(8, 10))


def test_travel_policy_bounds_the_last_job_of_the_day():
    """A 120-minute job 40 km from home that may start 15:00-17:00: on company time it must end by 16:20, which
    it cannot (the earliest end is 17:00); with the way back on the technician's time it ends at 17:00."""
    j = job(location=north_km(40), minutes=120, windows=[window(15, 17)])
    day = tech_day()
    assert best_insertion(day, j, TRAVEL) is None
    day.travel_policy = TravelPolicy(inbound="technician")
    ins = best_insertion(day, j, TRAVEL)
    assert ins is not None and ins.end == at(17)


def test_depot_start_changes_the_first_leg():
    """Starting at a depot 10 km from the job (home is 40 km away) on company time: arrival 08:10."""
    j = job(location=north_km(40))
    day = tech_day()
    day.travel_policy = TravelPolicy(start_at="depot", end_at="depot", depot=north_km(30))
    assert near(earliest_first_start(day, j.location, TRAVEL), at(8, 10))
    ins = best_insertion(day, j, TRAVEL)
    assert ins is not None and near(ins.start, at(8, 10))
    assert abs(ins.added_travel_minutes - 20) < 0.01  # 10 out and 10 back to the depot


def test_on_call_shift_takes_only_emergencies():
    """An on-call shift with max priority 2 refuses a priority-5 job and takes a priority-1 job."""
    day = tech_day(max_priority=2)
    assert any("on-call" in r for r in ineligibility_reasons(day, job(priority=5)))
    assert ineligibility_reasons(day, job(priority=1)) == []


def test_absence_reason_only_when_it_blocks():
    """An absence in the afternoon does not refuse a morning job."""
    day = tech_day()
    day.absences = [Absence(1, at(13), at(17), "training")]
    day.available = [window(8, 13)]
    assert ineligibility_reasons(day, job(windows=[window(8, 12)])) == []
    assert ineligibility_reasons(day, job(windows=[window(14, 16)])) == [
        "not available: absent 2030-01-07 (training)"]


def test_pushed_stop_may_not_move_into_an_absence():
    """A stop at 12:00-13:00 would be pushed to 13:30 by inserting a job before it, but the technician is absent
    from 13:00: the job cannot go before the stop."""
    from tests.factories import stop

    day = tech_day(stops=[stop(1, at(12), 60, location=ORIGIN, win=TimeWindow(at(11), at(14)))])
    day.available = [window(8, 13)]
    j = job(minutes=90, windows=[window(11, 11, 0, 30)])
    assert best_insertion(day, j, TRAVEL) is None
    day.available = None
    ins = best_insertion(day, j, TRAVEL)
    assert ins is not None and ins.later_stops[0].new_start == at(12, 30)
    assert timedelta(minutes=90) == ins.end - ins.start
