"""Route optimiser on real dispatch rules: one small hand-checkable problem per rule (issue 11, deliverable 1).

Euclidean travel at 1 unit per minute unless said otherwise, so every time below can be checked by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.routing import problem_from_json, solve
from engine.routing.check import check_answer
from engine.routing.problem import Answer, normalise, travel_table

LIMIT = 1.0


def tech(id="A", start=(0, 0), shift=(0, 600), **extra):
    return {"id": id, "start": list(start), "end": list(start), "shift": list(shift), **extra}


def job(id, location, windows=(), duration=0, **extra):
    return {"id": id, "location": list(location), "duration": duration,
            "time_windows": [list(w) for w in windows], **extra}


def run(techs, jobs, objective="default", limit=LIMIT, travel=None) -> Answer:
    problem = problem_from_json({"objective": objective, "travel": travel or {"metric": "euclidean"},
                                 "technicians": techs, "jobs": jobs})
    answer = solve(problem, time_limit_seconds=limit)
    assert check_answer(problem, answer) == []
    assert answer.status in ("solved", "time_limit"), answer.notes  # the optimiser's plan, not the fallback
    return answer


def stops(answer: Answer, technician: str = "A") -> dict[str, float]:
    """Job -> service start on that technician's route."""
    return next(({s.job: s.start for s in r.stops} for r in answer.routes if r.technician == technician), {})


def served(answer: Answer) -> set[str]:
    return {s.job for r in answer.routes for s in r.stops if s.kind == "job"}


def test_prize_collecting_plans_a_generated_real_shaped_day_without_falling_back():
    """25 technicians at their own homes, skills with levels, certifications, several windows: the default
    objective used to end on infeasible plans ("the search found no feasible plan") and fall back to greedy."""
    from demo.scenario import day_problem, generate

    scenario = generate(25, 1, seed=1)
    problem = day_problem(scenario, scenario.days[0], max_work_share=0.85)
    assert len(problem.jobs) > 90 and len(problem.technicians) >= 23
    answer = solve(problem, time_limit_seconds=2.0)
    assert answer.status in ("solved", "time_limit"), answer.notes
    assert check_answer(problem, answer) == []
    assert len(served(answer)) >= 0.75 * len(problem.jobs)


def test_min_travel_on_a_day_that_does_not_all_fit_plans_the_most_jobs_not_the_greedy_fallback():
    """Every job required has no feasible plan when not every job fits: the search used to end without one and
    fall back to greedy insertion (91 of 105 jobs on this day). It now serves as many jobs as fit, then the least
    travel, and names the jobs left out."""
    from dataclasses import replace

    from demo.scenario import day_problem, generate
    from engine.routing.greedy import greedy_plan

    scenario = generate(25, 1, seed=1)
    problem = replace(day_problem(scenario, scenario.days[0]), objective="min_travel")
    answer = solve(problem, time_limit_seconds=2.0)
    assert answer.status in ("solved", "time_limit"), answer.notes
    assert check_answer(problem, answer) == []
    norm = normalise(problem)
    table = travel_table(norm)
    greedy = greedy_plan(norm, table, [j for j, x in enumerate(norm.jobs) if x.kind == "job"])
    assert len(served(answer)) > sum(len(o) for o in greedy.orders.values())
    left = {u.job for u in answer.unassigned}
    assert left and left | served(answer) == {x.id for x in problem.jobs}


def test_min_travel_still_serves_every_job_when_they_all_fit():
    techs = [tech("A", (0, 0)), tech("B", (100, 0))]
    jobs = [job(f"j{i}", (10 * i, 5), duration=10) for i in range(10)]
    answer = run(techs, jobs, objective="min_travel")
    assert served(answer) == {f"j{i}" for i in range(10)}
    assert not any(n.startswith("min_travel:") for n in answer.notes)


def test_prizes_outweigh_any_detour_and_follow_the_weights():
    """Prizes: the least valuable job is worth more than the most travel any job can add; twice the weight,
    twice the prize; small enough for PyVRP's penalties (so infeasible plans never pay)."""
    from engine.routing.solver import build_model, screen_jobs

    problem = normalise(problem_from_json({"technicians": [tech()], "jobs": [
        job("cheap", (30, 40), value=100), job("dear", (3, 4), value=200)]}))
    table = travel_table(problem)
    eligible, _ = screen_jobs(problem, table)
    model = build_model(problem, table, eligible)
    prize = {c.name: c.prize for c in model.data.clients()}
    # The longest way into and out of any job is 50 + 50 minutes = 100,000 ticks.
    assert 100_000 < prize["cheap"] <= 101_000  # the bound itself: not "larger than all travel of the day"
    assert prize["dear"] == pytest.approx(2 * prize["cheap"], rel=1e-4)
    assert max(prize.values()) < 1e9


def test_maximum_working_time_caps_a_technician():
    """Three one-hour jobs at the technician's home: a 130-minute cap leaves room for two, none for the third."""
    jobs = [job(str(k), (0, 0), duration=60) for k in range(3)]
    assert len(served(run([tech()], jobs))) == 3
    capped = run([tech(max_work_minutes=130)], jobs)
    assert len(served(capped)) == 2
    assert capped.routes[0].work_minutes == pytest.approx(120.0)
    assert len(capped.unassigned) == 1
    # Waiting is not work: two one-hour jobs at 0 and at 200 fit a 130-minute cap (a span of 260 minutes).
    waiting = run([tech(max_work_minutes=130)], [job("a", (0, 0), [(0, 0)], duration=60),
                                                 job("b", (0, 0), [(200, 200)], duration=60)])
    assert served(waiting) == {"a", "b"}


def test_pinned_stop_keeps_its_technician_and_time():
    """Job P is next to B's home, but it is locked on A at minute 100: A drives 10 minutes to start it at 100."""
    answer = run([tech("A", (0, 0)), tech("B", (10, 0))],
                 [job("P", (10, 0), [(0, 600)], duration=30, pinned={"technician": "A", "start": 100}),
                  job("Q", (10, 1), [(0, 600)], duration=30)])
    assert stops(answer, "A")["P"] == pytest.approx(100.0)
    assert "P" not in stops(answer, "B")


def test_pinned_stop_that_cannot_be_kept_is_reported_by_name():
    """Locked at a time its technician is absent: a clear error naming the stop, never a silent drop."""
    problem = problem_from_json({"technicians": [tech("A", absences=[[100, 200]])],
                                 "jobs": [job("locked-7", (1, 0), duration=30,
                                              pinned={"technician": "A", "start": 150})]})
    with pytest.raises(ValueError, match="pinned stop locked-7 cannot be kept: technician A is absent"):
        solve(problem, time_limit_seconds=LIMIT)
    # Two pinned stops of one technician that cannot both be reached are reported too.
    problem = problem_from_json({"technicians": [tech("A")], "jobs": [
        job("x", (0, 0), duration=30, pinned={"technician": "A", "start": 100}),
        job("y", (50, 0), duration=30, pinned={"technician": "A", "start": 140})]})
    with pytest.raises(ValueError, match=r"pinned stops of technician A \(x, y\) cannot all be kept"):
        solve(problem, time_limit_seconds=LIMIT)


def test_cli_reports_a_pin_that_cannot_be_kept_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from cli.app import app

    path = tmp_path / "p.json"
    path.write_text(json.dumps({"technicians": [tech("A", absences=[[100, 200]])],
                                "jobs": [job("locked-7", (1, 0), duration=30,
                                             pinned={"technician": "A", "start": 150})]}))
    result = CliRunner().invoke(app, ["solve", str(path), "--time-limit", "0.5"])
    assert result.exit_code == 1
    assert "pinned stop locked-7 cannot be kept" in result.output and "Traceback" not in result.output


def test_promised_windows_are_hard():
    """A window that cannot be met is never met late: the job is left out with the reason."""
    answer = run([tech()], [job("far", (100, 0), [(0, 50)], duration=10), job("near", (5, 0), [(0, 50)])])
    assert served(answer) == {"near"}
    assert "far" in {u.job for u in answer.unassigned}


def test_several_windows_across_days():
    """Windows on day 1 (600-720) and day 2 (2040-2160); the only shift is on day 2: served in the second."""
    answer = run([tech(shift=(1920, 2400))], [job("J", (10, 0), [(600, 720), (2040, 2160)], duration=30)])
    assert stops(answer)["J"] == pytest.approx(2040.0)


def test_allowed_technicians_decide_who_may_go():
    """J is at A's home, but the rules allow only B (10 minutes away); K needs gas, which only C has, but the
    rules allow only A: nobody may take it, and the reason says so."""
    answer = run([tech("A", (0, 0), skills=["hvac"]), tech("B", (10, 0), skills=["hvac"]),
                  tech("C", (0, 1), skills=["gas"])],
                 [job("J", (0, 0), duration=30, technicians=["B"]),
                  job("K", (0, 0), duration=30, skills=["gas"], technicians=["A"])])
    assert "J" in stops(answer, "B")
    assert stops(answer, "A") == {} and stops(answer, "C") == {}
    assert {u.job: u.reason for u in answer.unassigned} == {
        "K": "none of the technicians it may go to (A) has the skills gas"}


def test_unknown_allowed_technician_is_refused():
    with pytest.raises(ValueError, match=r"jobs\[0\].technicians names unknown technicians: Z"):
        problem_from_json({"technicians": [tech()], "jobs": [job("J", (0, 0), technicians=["Z"])]})


def test_absence_in_the_middle_cuts_the_shift_and_one_at_the_start_moves_it():
    """Absent 200-400 (at home): a job whose window lies inside is left out, one before is served, and the
    route goes home for the absence. Absent 0-300: the shift starts at 300."""
    answer = run([tech(absences=[[200, 400]])],
                 [job("inside", (10, 0), [(250, 330)], duration=30), job("before", (10, 0), [(100, 150)],
                                                                       duration=30)])
    assert served(answer) == {"before"}
    route = answer.routes[0]
    absence = next(s for s in route.stops if s.kind == "absence")
    assert (absence.start, absence.end) == (pytest.approx(200.0), pytest.approx(400.0))
    assert route.travel_minutes == pytest.approx(20.0)  # home -> job -> home (the absence is at home)
    late = run([tech(absences=[[0, 300]])], [job("early", (10, 0), [(100, 200)], duration=30),
                                             job("later", (10, 0), [(320, 400)], duration=30)])
    assert served(late) == {"later"}
    assert late.routes[0].departure >= 300.0 - 1e-9


@pytest.mark.parametrize(("policy", "served_jobs"), [
    ({}, set()),  # company time: leaves at 0, arrives at 60 > 30
    ({"outbound": "technician"}, {"J"}),  # the drive is on their own time: at the job when the shift starts
    ({"outbound": "partial", "outbound_own_minutes": 40}, {"J"}),  # 20 minutes on the clock: arrives at 20
    ({"outbound": "partial", "outbound_own_minutes": 20}, set()),  # 40 minutes on the clock: too late
])
def test_travel_policy_moves_the_first_leg_on_the_clock(policy, served_jobs):
    """A job 60 minutes from home with a window closing at 30 on a shift from 0."""
    answer = run([tech(shift=(0, 600), travel_policy=policy)], [job("J", (60, 0), [(0, 30)], duration=30)])
    assert served(answer) == served_jobs
    if served_jobs:
        assert answer.routes[0].travel_minutes == pytest.approx(120.0)  # travel is still reported in full


def test_inbound_policy_lets_the_last_job_end_at_the_shift_end():
    """A 30-minute job 60 minutes from home, window 560-570, shift to 600: only with the way home on the
    technician's own time does it fit."""
    jobs = [job("J", (60, 0), [(560, 570)], duration=30)]
    assert served(run([tech()], jobs)) == set()
    answer = run([tech(travel_policy={"inbound": "technician"})], jobs)
    assert served(answer) == {"J"}
    assert answer.routes[0].return_time == pytest.approx(590.0)


def test_the_travel_providers_matrix_is_used_as_given_even_when_asymmetric():
    """Minutes from a matrix (e.g. a road router): 0 -> 1 takes 5, 1 -> 0 takes 50; the route's travel is 55."""
    minutes = [[0, 5], [50, 0]]
    answer = run([{"id": "A", "start": 0, "end": 0, "shift": [0, 600]}],
                 [{"id": "J", "location": 1, "duration": 10}], travel={"metric": "matrix", "minutes": minutes})
    assert answer.routes[0].travel_minutes == pytest.approx(55.0)
    assert stops(answer)["J"] == pytest.approx(5.0)


def test_checker_rejects_a_route_over_the_working_time_or_a_moved_pin():
    from engine.routing.problem import Route, Stop

    problem = problem_from_json({"technicians": [tech(max_work_minutes=50)], "jobs": [
        job("J", (0, 0), duration=60), job("P", (0, 0), duration=10, pinned={"technician": "A", "start": 100})]})
    route = Route("A", (Stop("J", 0, 0, 60), Stop("P", 90, 90, 100)), 0, 100, 0, 0, 70, 30, 70)
    bad = Answer("solved", "default", (route,), (), 0, 0, 0, {}, 0)
    found = check_answer(problem, bad)
    assert any("working minutes" in p for p in found)
    assert any("job P: starts at 90" in p for p in found)


def test_scenario_generator_is_deterministic_and_realistic(tmp_path):
    """Same seed, same JSON; 4-6 jobs per technician per day; windows on one or several days; the CLI writes the
    scenario and one routing problem per day that `truckroll solve` reads."""
    from typer.testing import CliRunner

    from cli.app import app
    from demo.scenario import generate, scenario_from_json

    a, b = generate(20, 3, seed=5), generate(20, 3, seed=5)
    assert a.to_json() == b.to_json()
    assert generate(20, 3, seed=6).to_json() != a.to_json()
    assert scenario_from_json(json.loads(json.dumps(a.to_json()))).to_json() == a.to_json()
    per_tech_day = len(a.requests) / (20 * 3)
    assert 3.5 <= per_tech_day <= 6.0
    multi = [r for r in a.requests if len({w.start.date() for w in r.windows}) > 1]
    assert multi and len(multi) < len(a.requests) / 2
    assert all(r.arrives_at < r.windows[0].end for r in a.requests)
    assert all(t.shifts and len(t.shifts) == 3 for t in a.technicians)
    homes = np.array([t.home for t in a.technicians])
    assert homes[:, 0].std() > 0.05  # spread over the metro, not one depot
    result = CliRunner().invoke(app, ["scenario", "generate", "--technicians", "5", "--days", "2", "--seed", "3",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files[-1] == "scenario.json" and len(files) == 3
    day = json.loads((tmp_path / files[0]).read_text())
    assert problem_from_json(day).technicians
    bad = CliRunner().invoke(app, ["scenario", "generate", "--technicians", "0"])
    assert bad.exit_code != 0 and "--technicians must be between 1 and 5000" in bad.output


def test_vroom_explores_as_deeply_as_the_time_allows():
    """Level 1 takes about 1.6e-5 x jobs^2 seconds and each level doubles it; a level may overrun its time by
    6x (VROOM honours its timeout): 55 jobs get level 5 at 0.3 s, 242 jobs level 2 at 0.6 s and level 5 only
    from 2.5 s, 449 jobs level 1 at 0.6 s; more time never lowers the level, more jobs never raise it."""
    from engine.routing.solver import vroom_exploration

    assert vroom_exploration(55, 0.3) == 5
    assert vroom_exploration(242, 0.6) == 2
    assert vroom_exploration(242, 2.4) == 4 and vroom_exploration(242, 2.6) == 5
    assert vroom_exploration(449, 0.6) == 1
    for n in (10, 100, 300, 1000):
        levels = [vroom_exploration(n, s) for s in (0.1, 0.5, 1, 2, 5, 20)]
        assert levels == sorted(levels) and set(levels) <= {1, 2, 3, 4, 5}
    assert [vroom_exploration(n, 1.0) for n in (50, 200, 800)] == sorted(
        [vroom_exploration(n, 1.0) for n in (50, 200, 800)], reverse=True)


def test_vroom_start_time_grows_with_the_day_and_large_short_days_start_greedy():
    """VROOM's share: 80% under 4 s; from 4 s 30%, or VROOM's level 1 (1.6e-5 x jobs^2 s) up to 60%. 'auto'
    starts from VROOM when level 1 would take at most 3x that share: 450 jobs at 1 s (level 1 3.2 s, share
    0.8 s) start greedy, at 2 s from VROOM."""
    from engine.routing.solver import construct_seconds

    assert construct_seconds(100, 1.0) == pytest.approx(0.8)
    assert construct_seconds(100, 5.0) == pytest.approx(1.5)  # level 1: 0.16 s, under 30%
    assert construct_seconds(400, 5.0) == pytest.approx(2.56)  # level 1: 2.56 s
    assert construct_seconds(1000, 5.0) == pytest.approx(3.0)  # 60% at most
    techs = [tech(f"T{k}", (k, 0)) for k in range(2)]
    many = [job(f"j{i}", (i % 50, i // 50), windows=[(0, 600)]) for i in range(450)]
    problem = problem_from_json({"objective": "default", "travel": {"metric": "euclidean"}, "technicians": techs,
                                 "jobs": many})
    assert solve(problem, time_limit_seconds=1.0).notes[0].startswith("start: greedy plan")
    assert solve(problem, time_limit_seconds=2.0).notes[0].startswith("start: VROOM plan")
