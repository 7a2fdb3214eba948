"""The re-optimisation engine: the Pyomo/CBC assignment model, sequencing around fixed work, plan comparison."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from engine.reoptimize.day import (
    ReoptimizeOptions,
    changed_windows,
    is_better,
    reoptimize_day_plan,
    retime,
    score_plan,
)
from engine.reoptimize.model import AssignmentOptions, build_problem, greedy_assignment, solve_assignment
from engine.travel import GreatCircleTravel
from models.domain import TechnicianDay
from tests.factories import ORIGIN, at, job, north_km, stop, tech_day, window

TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=40.0)
OPTS = AssignmentOptions()


def test_high_value_job_goes_to_the_high_multiplier_technician() -> None:
    """Two technicians equally far from a valuable job: the model gives it to the one with the higher upsell."""
    days = [tech_day(1, multiplier=1.0), tech_day(2, multiplier=1.3)]
    problem = build_problem(days, [job(100, value=1000.0)], TRAVEL, OPTS)
    result = solve_assignment(problem, time_limit_seconds=10)
    assert result.status == "optimal"
    assert result.shift_of_job == {100: 1}


def test_ineligible_technician_never_gets_the_job() -> None:
    """The nearest technician lacks the skill and has the better multiplier: the job still goes to the other."""
    near = tech_day(1, skills={"hvac": 5}, multiplier=1.3)
    far = tech_day(2, home=north_km(10))
    problem = build_problem([near, far], [job(100, location=ORIGIN)], TRAVEL, OPTS)
    assert all(p.shift == 1 for p in problem.pairs)
    assert solve_assignment(problem, time_limit_seconds=10).shift_of_job == {100: 1}
    alone = build_problem([near], [job(100)], TRAVEL, OPTS)
    assert solve_assignment(alone, time_limit_seconds=10).shift_of_job == {}
    assert alone.ineligible[100] == {1: ["no plumbing skill"]}


def test_capacity_under_the_utilisation_target_is_respected() -> None:
    """A 9-hour shift at 85% holds about 459 minutes: of four 3-hour jobs at home the model takes two."""
    days = [tech_day(1)]
    jobs = [job(100 + i, minutes=180, value=100.0 + i) for i in range(4)]
    result = solve_assignment(build_problem(days, jobs, TRAVEL, OPTS), time_limit_seconds=10)
    assert sorted(result.shift_of_job) == [102, 103]  # the two most valuable


def test_missing_solver_falls_back_to_greedy_and_says_so() -> None:
    """An executable that does not exist: the greedy assignment is returned, flagged, with the reason."""
    days = [tech_day(1, multiplier=1.0), tech_day(2, multiplier=1.3)]
    problem = build_problem(days, [job(100, value=1000.0)], TRAVEL, OPTS)
    result = solve_assignment(problem, time_limit_seconds=10, executable="/nonexistent/cbc")
    assert result.status == "greedy_fallback"
    assert "CBC not found" in result.message
    assert result.shift_of_job == greedy_assignment(problem) == {100: 1}


def test_invalid_limits_are_refused() -> None:
    """A zero time limit or a gap of 1 is a plain ValueError naming the field."""
    problem = build_problem([tech_day(1)], [job(100)], TRAVEL, OPTS)
    with pytest.raises(ValueError, match="time_limit_seconds"):
        solve_assignment(problem, time_limit_seconds=0)
    with pytest.raises(ValueError, match="mip_gap"):
        solve_assignment(problem, mip_gap=1.0)


# ------------------------------------------------------------------------------------------ whole-day plans

FAR = north_km(30)


def _swapped_day() -> tuple[list[TechnicianDay], dict[int, object]]:
    """Tech 1 lives at ORIGIN but serves two jobs 30 km north; tech 2 lives there and serves ORIGIN's jobs."""
    jobs = {
        1: job(1, location=north_km(1), windows=[window(8, 17)]),
        2: job(2, location=north_km(2), windows=[window(8, 17)]),
        3: job(3, location=north_km(31), windows=[window(8, 17)]),
        4: job(4, location=north_km(32), windows=[window(8, 17)]),
    }
    a = tech_day(1, stops=[stop(3, at(9), 60, location=north_km(31), win=window(8, 17)),
                           stop(4, at(11), 60, location=north_km(32), win=window(8, 17))])
    b = tech_day(2, home=FAR, stops=[stop(1, at(9), 60, location=north_km(1), win=window(8, 17)),
                                     stop(2, at(11), 60, location=north_km(2), win=window(8, 17))])
    opts = ReoptimizeOptions(time_limit_seconds=10)
    for d in (a, b):
        assert retime(d, TRAVEL, jobs, opts)  # type: ignore[arg-type]
    return [a, b], jobs  # type: ignore[return-value]


def test_swapped_neighbourhoods_are_swapped_back_and_travel_goes_down() -> None:
    """Each technician doing the other's neighbourhood: the plan is better, each job goes to its local tech."""
    days, jobs = _swapped_day()
    opts = ReoptimizeOptions(time_limit_seconds=10)
    plan = reoptimize_day_plan(days, jobs, TRAVEL, opts)  # type: ignore[arg-type]
    assert plan.valid and plan.assignment.status == "optimal"
    assert sorted(s.request_id for s in plan.days[0].stops) == [1, 2]
    assert sorted(s.request_id for s in plan.days[1].stops) == [3, 4]
    before, after = score_plan(days, jobs, TRAVEL, opts), score_plan(plan.days, jobs, TRAVEL, opts)  # type: ignore
    assert after.travel_minutes < before.travel_minutes - 100
    assert is_better(after, before)
    # Windows are hard by default: every start stays inside the window promised before.
    assert changed_windows(days, plan) == {}


def test_fixed_work_never_moves() -> None:
    """A locked stop on the wrong technician stays there at its time; only the movable stop is swapped."""
    days, jobs = _swapped_day()
    locked = days[0].stops[0]
    locked.fixed = True
    plan = reoptimize_day_plan(days, jobs, TRAVEL, ReoptimizeOptions(time_limit_seconds=10))  # type: ignore
    kept = [s for s in plan.days[0].stops if s.request_id == 3]
    assert len(kept) == 1 and (kept[0].start, kept[0].end) == (locked.start, locked.end) and kept[0].fixed
    assert all(s.request_id != 3 for s in plan.days[1].stops)


def test_optimal_plan_is_not_better_than_itself() -> None:
    """Re-optimising a plan that is already the best one proposes nothing strictly better."""
    days, jobs = _swapped_day()
    opts = ReoptimizeOptions(time_limit_seconds=10)
    first = reoptimize_day_plan(days, jobs, TRAVEL, opts)  # type: ignore[arg-type]
    second = reoptimize_day_plan(first.days, jobs, TRAVEL, opts)  # type: ignore[arg-type]
    assert not is_better(score_plan(second.days, jobs, TRAVEL, opts), score_plan(first.days, jobs, TRAVEL, opts))  # type: ignore


def test_window_changes_when_allowed_are_repromised() -> None:
    """A 3-hour emergency that must start by 08:30 and a visit promised 09:00-10:00: with promised windows
    hard the emergency cannot be placed; with window changes allowed both are, and the visit gets a new window
    around its new start."""
    jobs = {1: job(1, windows=[window(8, 17)]),
            2: job(2, minutes=180, priority=1, value=900.0, windows=[window(8, 8, 0, 30)])}
    day = tech_day(1, stops=[stop(1, at(9), 60, win=window(9, 10))])
    hard = reoptimize_day_plan([day], jobs, TRAVEL, ReoptimizeOptions(time_limit_seconds=10))  # type: ignore
    assert hard.valid and 2 in hard.unplaced and changed_windows([day], hard) == {}
    soft = reoptimize_day_plan([day], jobs, TRAVEL,  # type: ignore[arg-type]
                               ReoptimizeOptions(time_limit_seconds=10, allow_window_changes=True))
    assert soft.valid and not soft.unplaced
    assert [s.request_id for s in soft.days[0].stops] == [2, 1]
    old, new = changed_windows([day], soft)[1]
    visit = soft.days[0].stops[1]
    assert (old.start, old.end) == (at(9), at(10))
    assert visit.start == at(11) and new.start <= visit.start <= new.end


def test_unplaceable_optional_job_is_reported_with_the_reason() -> None:
    """An unassigned request nobody qualified can take is left unplaced, with each technician's reason."""
    days = [tech_day(1, skills={"hvac": 3})]
    jobs = {9: job(9)}
    plan = reoptimize_day_plan(days, jobs, TRAVEL, ReoptimizeOptions(time_limit_seconds=10))  # type: ignore
    assert plan.valid
    reason, why = plan.unplaced[9]
    assert reason == "no qualified technician on shift" and why == {1: ["no plumbing skill"]}


def test_rescued_job_gets_a_promised_window_inside_its_own() -> None:
    """An escalated request placed by re-optimisation is promised a window around its start, inside its own."""
    days = [tech_day(1)]
    jobs = {9: job(9, windows=[window(13, 17)])}
    plan = reoptimize_day_plan(days, jobs, TRAVEL, ReoptimizeOptions(time_limit_seconds=10))  # type: ignore
    s = plan.days[0].stops[0]
    w = plan.windows[9]
    assert s.request_id == 9 and at(13) <= w.start <= s.start <= w.end <= at(17)
    assert w.end - w.start <= timedelta(minutes=120)


def test_promised_visit_that_fits_nowhere_invalidates_the_plan() -> None:
    """Rebuilding routes from scratch, a promised visit that fits nowhere makes the plan invalid (the caller
    keeps the old one); starting from the current routes (the default) it simply stays where it is."""
    days = [tech_day(1, stops=[stop(1, at(9), 60, win=window(9, 10))])]
    # The technician lost the skill since: nobody may do it any more, but it is a promised visit.
    days[0] = dataclasses.replace(days[0], skills={"hvac": 3})
    jobs = {1: job(1, windows=[window(8, 17)])}
    plan = reoptimize_day_plan(days, jobs, TRAVEL, ReoptimizeOptions(time_limit_seconds=10, rebuild_routes=True,
                                                                 try_both_starts=False))  # type: ignore
    assert not plan.valid and "#1" in plan.message
    kept = reoptimize_day_plan(days, jobs, TRAVEL, ReoptimizeOptions(time_limit_seconds=10))  # type: ignore
    assert kept.valid and [(s.request_id, s.start) for s in kept.days[0].stops] == [(1, at(9))]
