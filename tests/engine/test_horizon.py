"""Re-optimisation over several days (engine.reoptimize.horizon): PyVRP columns, CBC set partitioning, pinned work."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from engine.reoptimize.day import ReoptimizeOptions, is_better, retime, score_plan
from engine.reoptimize.horizon import Column, HorizonOptions, choose_columns, pinned_conflicts, reoptimize_horizon
from engine.reoptimize.model import AssignmentOptions
from engine.travel import GreatCircleTravel
from models.domain import TimeWindow
from tests.factories import DAY, ORIGIN, at, job, north_km, stop, tech_day, window

TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=40.0)
OPTS = HorizonOptions(base=ReoptimizeOptions(time_limit_seconds=2))
DAY2 = DAY + timedelta(days=1)


def _day2(h1: int, h2: int) -> TimeWindow:
    return TimeWindow(at(h1, day=DAY2), at(h2, day=DAY2))


def _two_day_shift(tid: int, **kw: object):  # type: ignore[no-untyped-def]
    first = tech_day(tid, **kw)  # type: ignore[arg-type]
    second = dataclasses.replace(first, shift_start=at(8, day=DAY2), shift_end=at(17, day=DAY2), stops=[])
    return first, second


def test_swapped_routes_are_swapped_back_and_the_current_plan_is_a_column() -> None:
    """Each technician serving the other's neighbourhood: the chosen plan sends each job to its local tech,
    travel falls by more than 100 min and the plan is strictly better."""
    far = north_km(30)
    jobs = {1: job(1, location=north_km(1)), 2: job(2, location=north_km(2)),
            3: job(3, location=north_km(31)), 4: job(4, location=north_km(32))}
    a = tech_day(1, stops=[stop(3, at(9), 60, location=north_km(31), win=window(8, 17)),
                           stop(4, at(11), 60, location=north_km(32), win=window(8, 17))])
    b = tech_day(2, home=far, stops=[stop(1, at(9), 60, location=north_km(1), win=window(8, 17)),
                                     stop(2, at(11), 60, location=north_km(2), win=window(8, 17))])
    for d in (a, b):
        assert retime(d, TRAVEL, jobs, OPTS.base)
    plan = reoptimize_horizon([a, b], jobs, TRAVEL, OPTS)
    assert plan.valid, plan.message
    assert plan.columns["current"] == 2
    assert sorted(s.request_id for s in plan.days[0].stops) == [1, 2]
    assert sorted(s.request_id for s in plan.days[1].stops) == [3, 4]
    before, after = score_plan([a, b], jobs, TRAVEL, OPTS.base), score_plan(plan.days, jobs, TRAVEL, OPTS.base)
    assert after.travel_minutes < before.travel_minutes - 100
    assert is_better(after, before)


def test_unpromised_work_moves_to_another_day_inside_the_customers_window() -> None:
    """Day 1 is full (a 7-hour job); a 3-hour request whose window spans both days is served on day 2 and
    promised a window inside its own window on that day."""
    d1, d2 = _two_day_shift(1)
    d1.stops = [stop(1, at(8), 420, win=window(8, 9))]
    jobs = {2: job(2, minutes=180, windows=[window(8, 17), _day2(8, 17)])}
    plan = reoptimize_horizon([d1, d2], jobs, TRAVEL, OPTS, pinned=frozenset({1}))
    assert plan.valid, plan.message
    assert [s.request_id for s in plan.days[1].stops] == [2]
    w = plan.windows[2]
    assert w.start.date() == DAY2 and _day2(8, 17).start <= w.start < w.end <= _day2(8, 17).end
    assert plan.unplaced == {}


def test_pinned_visit_keeps_its_technician_and_window() -> None:
    """A pinned visit on the far technician stays with them in its window, though the other lives next
    door; the same visit not pinned moves to the near technician."""
    far = north_km(30)
    jobs = {1: job(1, location=ORIGIN)}
    a = tech_day(1, home=far, stops=[stop(1, at(10), 60, win=window(10, 12))])
    b = tech_day(2)
    assert retime(a, TRAVEL, jobs, OPTS.base)
    kept = reoptimize_horizon([a, b], jobs, TRAVEL, OPTS, pinned=frozenset({1}))
    assert [s.request_id for s in kept.days[0].stops] == [1] and kept.days[1].stops == []
    assert kept.windows[1] == window(10, 12)
    moved = reoptimize_horizon([a, b], jobs, TRAVEL, OPTS)
    assert moved.days[0].stops == [] and [s.request_id for s in moved.days[1].stops] == [1]


def test_promised_visit_keeps_its_window_and_may_change_technician() -> None:
    """The customer was told 10:00-12:00 (the far technician): the visit goes to the technician next door and
    still starts inside 10:00-12:00, the window it keeps. Not promised, or with window changes allowed, the same
    visit starts at 08:00, when the near technician's shift begins, under a new window."""
    jobs = {1: job(1, location=ORIGIN)}  # the customer's own window: the whole day
    a = tech_day(1, home=north_km(30), stops=[stop(1, at(10), 60, win=window(10, 12))])
    b = tech_day(2)
    assert retime(a, TRAVEL, jobs, OPTS.base)
    plan = reoptimize_horizon([a, b], jobs, TRAVEL, OPTS, promised=frozenset({1}))
    assert plan.valid, plan.message
    assert plan.days[0].stops == [] and [s.request_id for s in plan.days[1].stops] == [1]
    assert plan.windows[1] == window(10, 12) and at(10) <= plan.days[1].stops[0].start <= at(12)
    allowed = HorizonOptions(base=dataclasses.replace(OPTS.base, allow_window_changes=True))
    for free in (reoptimize_horizon([a, b], jobs, TRAVEL, OPTS),
                 reoptimize_horizon([a, b], jobs, TRAVEL, allowed, promised=frozenset({1}))):
        assert [s.request_id for s in free.days[1].stops] == [1]
        assert free.days[1].stops[0].start == at(8) and free.windows[1].start <= at(8) < free.windows[1].end


def test_unassigned_request_is_rescued_and_unplaceable_one_is_reported() -> None:
    """An escalated plumbing job is placed; an hvac job nobody can do is reported with each technician's
    reason."""
    jobs = {5: job(5, location=north_km(3)), 6: job(6, skills={"hvac": 2})}
    plan = reoptimize_horizon([tech_day(1), tech_day(2, home=north_km(20))], jobs, TRAVEL, OPTS)
    assert plan.valid
    assert [s.request_id for s in plan.days[0].stops] == [5]
    reason, why = plan.unplaced[6]
    assert "no qualified technician" in reason and why[1] == ["no hvac skill"]


def test_pinned_stop_during_an_absence_is_reported_by_name_and_kept() -> None:
    """A locked visit at 10:00 while its technician is absent 09:00-12:00: named in the conflicts, still in
    the plan at its time."""
    d = tech_day(1, stops=[stop(1, at(10), 60, fixed=True)])
    d.available = [window(8, 9), window(12, 17)]
    assert pinned_conflicts([d]) and "Tech 1" in pinned_conflicts([d])[0] and "#1" in pinned_conflicts([d])[0]
    plan = reoptimize_horizon([d], {}, TRAVEL, OPTS)
    assert any("#1" in c and "Tech 1" in c for c in plan.conflicts)
    assert [(s.request_id, s.start) for s in plan.days[0].stops] == [(1, at(10))]


def test_the_model_never_picks_worse_than_the_warm_start_and_serves_must_work_once() -> None:
    """Hand-checkable set partitioning: two shifts, columns with known weights; job 7 must be served."""
    d = tech_day(1)
    cols = [Column(0, d, "current", frozenset({7}), 10.0, 0.5), Column(0, d, "pyvrp", frozenset(), 50.0, 0.1),
            Column(1, d, "current", frozenset(), 0.0, 0.0), Column(1, d, "pyvrp", frozenset({7, 8}), 30.0, 0.6)]
    chosen, status = choose_columns(cols, 2, frozenset({7}), balance_weight=0.0, time_limit_seconds=10,
                                    mip_gap=0.0, executable="cbc")
    assert status == "optimal"
    # 50 + 30 = 80 serves 7 once and beats 10 + 0.
    assert sorted(chosen) == [1, 3]
    cols[1].weight = -100.0
    chosen, _ = choose_columns(cols, 2, frozenset({7}), balance_weight=0.0, time_limit_seconds=10,
                               mip_gap=0.0, executable="cbc")
    assert sorted(chosen) == [0, 2]  # 7 may not be served twice (0 + 3) nor dropped (1 + 2 < 0 + 2)


def test_missing_cbc_keeps_the_best_whole_plan_and_says_so() -> None:
    jobs = {5: job(5, location=north_km(3))}
    opts = dataclasses.replace(OPTS, base=dataclasses.replace(OPTS.base, cbc_executable="/nonexistent/cbc"))
    plan = reoptimize_horizon([tech_day(1)], jobs, TRAVEL, opts)
    assert plan.assignment.status == "greedy_fallback" and "/nonexistent/cbc" in plan.message
    assert [s.request_id for s in plan.days[0].stops] == [5]


def test_utilisation_target_is_respected() -> None:
    """Four 3-hour jobs, one 9-hour shift, target 85%: only two fit (6 h + travel <= 7.65 h)."""
    jobs = {i: job(i, minutes=180, value=100.0 + i) for i in range(1, 5)}
    base = ReoptimizeOptions(time_limit_seconds=6, assignment=AssignmentOptions(utilisation_target=0.85))
    plan = reoptimize_horizon([tech_day(1)], jobs, TRAVEL, HorizonOptions(base=base))
    assert sorted(s.request_id for s in plan.days[0].stops) == [3, 4]
    assert sorted(plan.unplaced) == [1, 2]


def test_search_share_is_checked() -> None:
    with pytest.raises(ValueError, match="search_share"):
        HorizonOptions(search_share=1.0)
    with pytest.raises(ValueError, match="cbc_seconds"):
        HorizonOptions(cbc_seconds=-1.0)


@pytest.mark.parametrize(("total", "search"), [(5, 2.5), (10, 5.0), (30, 22.5), (40, 30.0)])
def test_pyvrp_gets_three_quarters_but_leaves_cbc_five_seconds_or_half(total: float, search: float) -> None:
    """30 s: 22.5 for PyVRP (CBC keeps 7.5); 10 s: CBC keeps 5; 5 s: CBC keeps half."""
    options = HorizonOptions(base=ReoptimizeOptions(time_limit_seconds=total))
    assert options.search_seconds() == pytest.approx(search)




def test_pyvrp_proposal_keeps_an_absence_at_the_end_of_a_shift_and_the_target_on_the_time_left() -> None:
    """Technician 1 lives next to both jobs but is absent from 12:00 (4 hours left, 85% = 204 minutes);
    technician 2 lives 20 km away. The 13-15 visit and the 220-minute job go to technician 2: PyVRP sees the
    shortened shift and the cap on the time left, not the whole 9-hour shift."""
    from engine.reoptimize.horizon import pyvrp_routes

    near = tech_day(1)
    near.available = [window(8, 12)]
    far = tech_day(2, home=north_km(20))
    late = job(1, windows=[window(13, 15)])
    long = job(2, minutes=220, windows=[window(8, 12)])
    routes = pyvrp_routes([near, far], [0, 1], [late, long], TRAVEL, pinned_minutes={}, target=0.85,
                          weight={1: 1.0, 2: 1.0}, time_limit_seconds=0.5)
    assert routes.get(0, []) == []
    assert sorted(routes.get(1, [])) == [1, 2]


def test_a_current_route_at_the_target_stays_feasible_to_pyvrp_despite_its_rounding(
        caplog: pytest.LogCaptureFixture) -> None:
    """Four jobs 1.401 minutes apart in a line, lasting together exactly what the 85% target leaves (459 of 540
    minutes, 0.005 under), are the current route: the exact check accepts it, but PyVRP's legs round up to the
    tick (14.01 -> 15), 7 ticks over 4,590. PyVRP's limit is the current route's rounded length, so its
    proposal keeps the four required visits and is feasible (without that it is not, and says so)."""
    import logging
    import math

    from engine.reoptimize.horizon import SCALE, pyvrp_routes

    places = [north_km(0.934 * (i + 1)) for i in range(4)]
    legs = [TRAVEL.minutes(a, b) for a, b in zip([ORIGIN, *places], [*places, ORIGIN], strict=True)]
    minutes = (0.85 * 540 - sum(legs) - 0.005) / 4
    assert sum(legs) + 4 * minutes <= 459.0
    assert sum(math.ceil(x * SCALE) for x in legs) + 4 * math.ceil(minutes * SCALE) > 459 * SCALE
    jobs = [job(i + 1, location=p, minutes=minutes, windows=[window(8, 17)]) for i, p in enumerate(places)]
    starts, t = [], at(8)
    for n, leg in enumerate(legs[:4]):
        t += timedelta(minutes=leg)
        starts.append((n + 1, t))
        t += timedelta(minutes=minutes)
    with caplog.at_level(logging.INFO, logger="engine.reoptimize.horizon"):
        routes = pyvrp_routes([tech_day(1)], [0], jobs, TRAVEL, pinned_minutes={}, target=0.85,
                              weight={j.request_id: 1.0 for j in jobs}, time_limit_seconds=1.0,
                              keep=frozenset({1, 2, 3, 4}), start_from={0: starts})
    assert sorted(routes[0]) == [1, 2, 3, 4]
    assert "infeasible" not in caplog.text


def test_a_request_the_proposal_left_out_is_placed_by_moving_one_visit_not_by_sending_shifts_back() -> None:
    """Shift 0 is full (8:00-12:30 with job 2); request 1 (10-11 window, next door) fits only if job 2 moves to
    shift 1, which has room. One move places it; no shift goes back to its current route."""
    from engine.reoptimize.horizon import _place_with_one_move

    opts = OPTS.base
    jobs = {1: job(1, windows=[window(10, 11)]), 2: job(2, minutes=240, windows=[window(8, 17)]),
            3: job(3, minutes=60, location=north_km(5), windows=[window(8, 17)])}
    a = tech_day(1, end=13, stops=[stop(2, at(8), 240, win=window(8, 17))])
    b = tech_day(2, stops=[stop(3, at(9), 60, location=north_km(5), win=window(8, 17))])
    for d in (a, b):
        assert retime(d, TRAVEL, jobs, opts)
    proposal = [a, b]
    eligible = {1: [0], 2: [0, 1], 3: [0, 1]}
    assert _place_with_one_move(proposal, 1, eligible, frozenset({2, 3}), TRAVEL, jobs, opts, 1.0)
    assert [s.request_id for s in proposal[0].stops] == [1]
    assert sorted(s.request_id for s in proposal[1].stops) == [2, 3]
    # Nothing may move: no room is made.
    a2 = tech_day(1, end=13, stops=[stop(2, at(8), 240, win=window(8, 17))])
    assert retime(a2, TRAVEL, jobs, opts)
    assert not _place_with_one_move([a2, b], 1, eligible, frozenset(), TRAVEL, jobs, opts, 1.0)
