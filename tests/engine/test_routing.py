"""Route optimiser: small hand-checkable instances, validation, fallback, one Solomon instance, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.routing import problem_from_json, solve
from engine.routing.check import check_answer
from engine.routing.problem import Answer
from engine.routing.solomon import read_bks, read_solomon

SOLOMON = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "solomon"
LIMIT = 1.0


def tech(id="v0", start=(0, 0), shift=(0, 1000), capacity=None, skills=()):
    t = {"id": id, "start": list(start), "end": list(start), "shift": list(shift), "skills": list(skills)}
    if capacity is not None:
        t["capacity"] = capacity
    return t


def job(id, location, windows=(), duration=0, demand=0, skills=(), value=1, priority=0):
    return {"id": id, "location": list(location), "duration": duration, "time_windows": [list(w) for w in windows],
            "demand": demand, "skills": list(skills), "value": value, "priority": priority}


def run(techs, jobs, objective="default", travel=None, limit=LIMIT) -> Answer:
    problem = problem_from_json({"objective": objective, "travel": travel or {"metric": "euclidean"},
                                 "technicians": techs, "jobs": jobs})
    answer = solve(problem, time_limit_seconds=limit)
    assert check_answer(problem, answer) == []
    assert answer.status in ("solved", "time_limit"), answer.notes  # not the greedy fallback
    return answer


def order(answer: Answer, technician: str = "v0") -> list[str]:
    return next(([s.job for s in r.stops] for r in answer.routes if r.technician == technician), [])


def reasons(answer: Answer) -> dict[str, str]:
    return {u.job: u.reason for u in answer.unassigned}


def test_time_window_forces_the_visiting_order():
    """Job B is nearer the start, but its window opens only after A's closes, so A must come first."""
    answer = run([tech()], [job("B", (1, 0), [(50, 60)]), job("A", (10, 0), [(0, 20)])], "min_travel")
    assert order(answer) == ["A", "B"]
    a, b = answer.routes[0].stops
    assert a.start == pytest.approx(10.0)  # leaves at 0, 10 minutes away, window open: no wait
    assert b.arrival == pytest.approx(19.0) and b.start == pytest.approx(50.0)  # early: waits for the window
    assert answer.distance == pytest.approx(10 + 9 + 1)


def test_capacity_splits_the_jobs_over_two_vans():
    """Two jobs of demand 6 on vans of capacity 10: one job per van even though one route would be shorter."""
    answer = run([tech("v0", capacity=10), tech("v1", capacity=10)],
                 [job("1", (5, 0), demand=6), job("2", (6, 0), demand=6)], "min_travel")
    assert sorted(len(r.stops) for r in answer.routes) == [1, 1]
    assert answer.distance == pytest.approx(22.0)


def test_job_outside_every_shift_is_unassigned_with_its_reason():
    """A window after every shift ends comes back unassigned, naming the shifts; the other job is served."""
    answer = run([tech(shift=(0, 100))], [job("late", (1, 1), [(500, 600)]), job("ok", (1, 0))])
    assert reasons(answer) == {"late": "every time window lies outside the shifts of the technicians who can do it"}
    assert order(answer) == ["ok"]


def test_missing_skill_and_oversized_demand_are_reported_not_crashed():
    """No technician with the skill, and a demand above every van, each come back with their own reason."""
    answer = run([tech(capacity=10, skills=["gas"])],
                 [job("elec", (1, 0), skills=["electric"]), job("big", (2, 0), demand=50), job("gas", (3, 0),
                                                                                               skills=["gas"])])
    r = reasons(answer)
    assert "skills electric" in r["elec"]
    assert "exceeds the van capacity" in r["big"]
    assert order(answer) == ["gas"]


def test_skills_send_each_job_to_the_technician_who_can_do_it():
    """The gas job sits next to the plain technician's base, yet only the gas technician may do it."""
    answer = run([tech("plain", start=(0, 0)), tech("gasman", start=(100, 0), skills=["gas"])],
                 [job("g", (1, 0), skills=["gas"]), job("p", (99, 0))], "min_travel")
    assert order(answer, "gasman") == ["g"] or "g" in order(answer, "gasman")
    assert "g" not in order(answer, "plain")


def test_default_objective_serves_the_most_valuable_job_first():
    """Only one of two jobs fits in the shift; the far but valuable one wins over the near cheap one."""
    answer = run([tech(shift=(0, 100))],
                 [job("cheap", (5, 0), duration=60, value=1), job("rich", (20, 0), duration=60, value=50)])
    assert order(answer) == ["rich"]
    assert reasons(answer)["cheap"].startswith("left out")


def test_priority_outweighs_travel():
    """Equal value, one job fits: the higher-priority job is served although it is farther away."""
    answer = run([tech(shift=(0, 100))],
                 [job("near", (5, 0), duration=60), job("urgent", (20, 0), duration=60, priority=9)])
    assert order(answer) == ["urgent"]


def test_second_time_window_is_used_when_the_first_is_unreachable():
    """A job with windows [0, 5] and [40, 50] that lies 20 minutes away is served in its second window."""
    answer = run([tech()], [job("two", (20, 0), [(0, 5), (40, 50)])], "min_travel")
    stop = answer.routes[0].stops[0]
    assert 40 <= stop.start <= 50


def test_haversine_travel_minutes_follow_speed():
    """Two places 1 degree of latitude apart (~111.2 km) at 60 km/h take ~111.2 minutes each way."""
    answer = run([tech(start=(45.0, 7.0), shift=(0, 600))], [job("j", (46.0, 7.0))], "min_travel",
                 travel={"metric": "haversine", "speed_kmh": 60})
    assert answer.routes[0].stops[0].arrival == pytest.approx(111.19, abs=0.05)
    assert answer.distance == pytest.approx(2 * 111.19, abs=0.1)


def test_matrix_travel_uses_the_given_minutes():
    """An explicit matrix is used as given, even when it is asymmetric (0->1 costs 5, 1->0 costs 7)."""
    travel = {"metric": "matrix", "minutes": [[0, 5], [7, 0]]}
    problem = problem_from_json({"objective": "min_travel", "travel": travel,
                                 "technicians": [{"id": "v0", "start": 0, "shift": [0, 100]}],
                                 "jobs": [{"id": "j", "location": 1, "duration": 3}]})
    answer = solve(problem, time_limit_seconds=LIMIT)
    assert check_answer(problem, answer) == []
    assert answer.travel_minutes == pytest.approx(12.0)
    assert answer.routes[0].return_time == pytest.approx(15.0)


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda p: p["jobs"][0].update(time_windows=[[10, 5]]), "jobs[0].time_windows[0]"),
    (lambda p: p["jobs"][0].update(duration=-1), "jobs[0].duration"),
    (lambda p: p["technicians"][0].pop("shift"), "technicians[0].shift"),
    (lambda p: p.update(objective="fastest"), "objective"),
    (lambda p: p.update(travel={"metric": "manhattan"}), "travel.metric"),
    (lambda p: p["jobs"].append(dict(p["jobs"][0])), "jobs: id '1' appears twice"),
    (lambda p: p["jobs"][0].update(location=[1]), "jobs[0].location"),
])
def test_malformed_problem_names_the_field(mutate, field):
    """Each malformed field raises ValueError whose message names that field."""
    raw = {"objective": "min_travel", "travel": {"metric": "euclidean"}, "technicians": [tech()],
           "jobs": [job("1", (1, 1), [(0, 10)])]}
    mutate(raw)
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        problem_from_json(raw)


def test_optimiser_failure_falls_back_to_a_feasible_greedy_plan(monkeypatch):
    """When the search raises, the answer is a feasible greedy plan flagged greedy_fallback, not an error."""
    import engine.routing.solver as solver

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(solver, "_search", broken)
    problem = problem_from_json({"objective": "min_travel", "technicians": [tech()],
                                 "jobs": [job("1", (3, 0), [(0, 100)]), job("2", (3, 4), [(0, 100)])]})
    answer = solver.solve(problem, time_limit_seconds=LIMIT)
    assert answer.status == "greedy_fallback"
    assert check_answer(problem, answer) == []
    assert sorted(order(answer)) == ["1", "2"]


def test_checker_catches_a_late_stop():
    """The independent checker rejects a route whose stop starts after its window closes."""
    problem = problem_from_json({"technicians": [tech()], "jobs": [job("1", (3, 0), [(0, 10)])]})
    answer = solve(problem, time_limit_seconds=LIMIT)
    route = answer.routes[0]
    late = route.stops[0].__class__(job="1", arrival=3.0, start=11.0, end=11.0)
    broken = Answer(**{**answer.__dict__, "routes": (route.__class__(**{**route.__dict__, "stops": (late,)}),)})
    assert any("outside its time windows" in p for p in check_answer(problem, broken))


@pytest.mark.skipif(not SOLOMON.exists(), reason="Solomon benchmark files not present")
def test_solomon_c101_is_solved_feasibly_near_the_best_known():
    """C101 (100 jobs, 25 vans) in 3 s: every job served, feasible in double precision, within 3% of BKS."""
    problem = read_solomon(SOLOMON / "C101.txt")
    answer = solve(problem, time_limit_seconds=3.0)
    assert check_answer(problem, answer) == []
    assert not answer.unassigned
    assert answer.distance <= read_bks(SOLOMON / "bks.csv")["C101"] * 1.03


def test_cli_prints_the_answer_and_a_one_line_error(tmp_path):
    """`truckroll solve` prints the answer JSON; a malformed problem gives a one-line error naming the field."""
    from typer.testing import CliRunner

    from cli.app import app

    good = tmp_path / "p.json"
    good.write_text(json.dumps({"objective": "min_travel", "technicians": [tech()],
                                "jobs": [job("1", (3, 4), [(0, 100)], duration=10)]}))
    result = CliRunner().invoke(app, ["solve", str(good), "--time-limit", "0.5"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["routes"][0]["stops"][0]["job"] == "1" and out["totals"]["travel_minutes"] == pytest.approx(10.0)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"technicians": [tech()], "jobs": [{"id": "1"}]}))
    result = CliRunner().invoke(app, ["solve", str(bad)])
    assert result.exit_code == 1
    assert "jobs[0].location is required" in result.output
