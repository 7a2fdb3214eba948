"""The slot optimiser (engine/booking/slots.py) and ``truckroll optimize-slots``."""

from __future__ import annotations

import json
import random
import shutil
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from engine.booking import slots as engine_slots
from engine.booking.slots import (
    Assignment,
    SlotPlan,
    SlotProblem,
    SlotSolverError,
    _assign_slots,
    check_plan,
    plan_objective,
    solve,
    solve_greedy,
)

has_cbc = pytest.mark.skipif(shutil.which("cbc") is None, reason="needs CBC (Debian coinor-cbc)")


def instance(slots: int, techs: list[tuple[str, float, list[int]]],
             jobs: list[tuple[str, float, int, list[str]]]) -> dict[str, Any]:
    return {
        "slots": slots,
        "technicians": [{"id": i, "multiplier": m, "available_slots": a} for i, m, a in techs],
        "jobs": [{"id": i, "value": v, "min_slot": s, "eligible_technicians": e} for i, v, s, e in jobs],
    }


def random_instance(rng: random.Random, n_techs: int, n_slots: int, n_jobs: int) -> dict[str, Any]:
    techs = [(f"t{i}", rng.choice([0.5, 1.0, 1.25, 2.0]),
              [s for s in range(n_slots) if rng.random() < 0.7]) for i in range(n_techs)]
    ids = [t[0] for t in techs]
    jobs = [(f"j{k}", float(rng.randint(0, 9) * 10), rng.randrange(n_slots),
             [t for t in ids if rng.random() < 0.5]) for k in range(n_jobs)]
    return instance(n_slots, techs, jobs)


def brute_force_optimum(problem: SlotProblem) -> float:
    """Enumerate every plan: each job unassigned or in one (eligible, available, >= min_slot) cell."""
    options = [[None] + [(t.id, s) for t in problem.technicians if t.id in j.eligible_technicians
                         for s in t.available_slots if s >= j.min_slot] for j in problem.jobs]
    mult = {t.id: t.multiplier for t in problem.technicians}
    best = 0.0

    def walk(k: int, used: set[tuple[str, int]], value: float) -> None:
        nonlocal best
        if k == len(problem.jobs):
            best = max(best, value)
            return
        for opt in options[k]:
            if opt is None:
                walk(k + 1, used, value)
            elif opt not in used:
                used.add(opt)
                walk(k + 1, used, value + problem.jobs[k].value * mult[opt[0]])
                used.remove(opt)

    walk(0, set(), 0.0)
    return best


# ----------------------------------------------------------------------------------- optimum


def test_issue_example_respects_availability() -> None:
    """The issue's example (tech-0 available only in 0-2, min_slot 4) has no feasible cell: nothing is
    assigned, so the illustrative answer (slot 4) is correctly not reproduced."""
    data = instance(30, [("tech-0", 1.2, [0, 1, 2])], [("job-0", 180.5, 4, ["tech-0"])])
    plan = solve(SlotProblem.from_dict(data))
    assert plan.status == "optimal"
    assert plan.assignments == ()
    assert plan.objective == 0


def test_issue_example_format_when_feasible() -> None:
    """With tech-0 available in slot 4 the answer is the issue's: job-0 on tech-0 in slot 4, 216.6."""
    data = instance(30, [("tech-0", 1.2, [0, 1, 2, 4, 5])], [("job-0", 180.5, 4, ["tech-0"])])
    out = solve(SlotProblem.from_dict(data)).to_dict()
    assert out["status"] == "optimal"
    assert out["objective"] == pytest.approx(216.6)
    assert out["assignments"] == [{"job": "job-0", "technician": "tech-0", "slot": 4}]


def test_flow_beats_greedy_on_a_trap() -> None:
    """Greedy puts the best job on the best technician and strands the second job; the optimum swaps.

    a (100) may go to x (m 2) or y (m 1); b (90) only to x; each technician has one slot.
    Greedy: a->x (200), b stranded = 200. Optimum: a->y (100) + b->x (180) = 280.
    """
    data = instance(1, [("x", 2.0, [0]), ("y", 1.0, [0])],
                    [("a", 100.0, 0, ["x", "y"]), ("b", 90.0, 0, ["x"])])
    problem = SlotProblem.from_dict(data)
    assert solve_greedy(problem).objective == pytest.approx(200)
    plan = solve(problem)
    assert plan.objective == pytest.approx(280)
    assert set(plan.assignments) == {Assignment("a", "y", 0), Assignment("b", "x", 0)}


def test_slots_follow_min_slot_order() -> None:
    """A technician's jobs are placed so late-starting jobs still fit: min_slot 1 job must not take slot 1
    away from nothing; both jobs (min_slot 0 and 1) fit in slots 0 and 1 only one way round."""
    data = instance(2, [("x", 1.0, [0, 1])], [("late", 50.0, 1, ["x"]), ("early", 40.0, 0, ["x"])])
    plan = solve(SlotProblem.from_dict(data))
    assert set(plan.assignments) == {Assignment("early", "x", 0), Assignment("late", "x", 1)}


def test_assign_slots_fits_every_feasible_job_set() -> None:
    """The earliest-free-slot recovery places every job set that satisfies the suffix (Hall) condition,
    checked exhaustively on one technician with gaps in availability."""
    avail = [1, 2, 4, 7]
    data = instance(8, [("x", 1.0, avail)], [(f"j{s}", 1.0, s, ["x"]) for s in range(8)] * 1)
    problem = SlotProblem.from_dict(data)
    for mask in range(1, 2**8):
        chosen = [k for k in range(8) if mask >> k & 1]
        fits = all(sum(1 for k in chosen if k >= s) <= sum(1 for a in avail if a >= s) for s in range(8))
        if fits:
            check_plan(problem, _assign_slots(problem, {0: chosen}))
        else:
            with pytest.raises(SlotSolverError):
                _assign_slots(problem, {0: chosen})


@pytest.mark.parametrize("seed", range(40))
def test_flow_matches_brute_force(seed: int) -> None:
    """On tiny random instances the flow backend's plan is valid and reaches the enumerated optimum."""
    rng = random.Random(seed)
    problem = SlotProblem.from_dict(random_instance(rng, n_techs=2, n_slots=3, n_jobs=rng.randint(1, 5)))
    plan = solve(problem, backend="flow")
    check_plan(problem, plan.assignments)
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(brute_force_optimum(problem))
    assert plan.objective == pytest.approx(plan_objective(problem, plan.assignments))


@has_cbc
@pytest.mark.parametrize("seed", range(8))
def test_pyomo_matches_brute_force_and_flow(seed: int) -> None:
    """The Pyomo+CBC backend reaches the same optimum as the enumeration (tiny) and the flow backend
    (small random instances), with an integral LP solution turned into a valid plan."""
    rng = random.Random(1000 + seed)
    tiny = SlotProblem.from_dict(random_instance(rng, n_techs=2, n_slots=3, n_jobs=4))
    plan = solve(tiny, backend="pyomo")
    assert plan.status == "optimal" and plan.backend == "pyomo"
    check_plan(tiny, plan.assignments)
    assert plan.objective == pytest.approx(brute_force_optimum(tiny))
    small = SlotProblem.from_dict(random_instance(rng, n_techs=6, n_slots=8, n_jobs=60))
    by_pyomo, by_flow = solve(small, backend="pyomo"), solve(small, backend="flow")
    check_plan(small, by_pyomo.assignments)
    assert by_pyomo.objective == pytest.approx(by_flow.objective, rel=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_flow_never_below_greedy(seed: int) -> None:
    """On mid-size random instances the optimum is valid and at least the greedy baseline."""
    rng = random.Random(2000 + seed)
    problem = SlotProblem.from_dict(random_instance(rng, n_techs=8, n_slots=10, n_jobs=120))
    greedy, best = solve_greedy(problem), solve(problem)
    check_plan(problem, greedy.assignments)
    check_plan(problem, best.assignments)
    assert best.objective >= greedy.objective - 1e-9


def test_fractional_costs_report_a_gap_bound() -> None:
    """A weight that is not a multiple of 1e-6 cannot be passed exactly to the integer flow solver: the
    plan says how much the rounding can cost instead of claiming an exact optimum silently."""
    data = instance(1, [("x", 1.0, [0])], [("a", 1 / 3, 0, ["x"])])
    plan = solve(SlotProblem.from_dict(data))
    assert plan.assignments == (Assignment("a", "x", 0),)
    assert plan.gap_bound is not None and 0 < plan.gap_bound < 1e-5


def test_solver_failure_falls_back_to_greedy(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the exact backend fails, the greedy plan is returned, flagged, and the failure is named."""
    def broken(problem: SlotProblem) -> SlotPlan:
        raise SlotSolverError("boom")

    monkeypatch.setattr(engine_slots, "solve_flow", broken)
    data = instance(1, [("x", 2.0, [0])], [("a", 10.0, 0, ["x"])])
    plan = solve(SlotProblem.from_dict(data))
    assert plan.status == "fallback_greedy"
    assert "boom" in plan.message
    assert plan.assignments == (Assignment("a", "x", 0),)


def test_missing_cbc_falls_back_to_greedy() -> None:
    """The pyomo backend with a solver that is not installed says so and returns the greedy plan."""
    data = instance(1, [("x", 2.0, [0])], [("a", 10.0, 0, ["x"])])
    problem = SlotProblem.from_dict(data)
    with pytest.raises(SlotSolverError, match="not installed"):
        engine_slots.solve_pyomo(problem, solver="no-such-solver-xyz")


# -------------------------------------------------------------------------------- validation


GOOD = instance(3, [("x", 1.0, [0, 1])], [("a", 10.0, 0, ["x"])])


@pytest.mark.parametrize(("path", "value", "field"), [
    (("slots",), None, "slots"),
    (("technicians", 0, "multiplier"), 0, "multiplier"),
    (("technicians", 0, "multiplier"), -1.5, "multiplier"),
    (("technicians", 0, "available_slots"), [0, 3], "available_slots"),
    (("jobs", 0, "value"), -1, "value"),
    (("jobs", 0, "min_slot"), 5, "min_slot"),
    (("jobs", 0, "eligible_technicians"), ["ghost"], "eligible_technicians"),
    (("jobs", 0, "value"), None, "value"),
])
def test_bad_input_names_the_field(path: tuple[Any, ...], value: Any, field: str) -> None:
    """Malformed instances raise ValueError naming the offending field (None here means: field missing)."""
    data = json.loads(json.dumps(GOOD))
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    with pytest.raises(ValueError, match=field):
        SlotProblem.from_dict(data)


def test_duplicate_ids_are_rejected() -> None:
    """Two jobs with one id would make the answer ambiguous: rejected, naming the id."""
    data = instance(1, [("x", 1.0, [0])], [("a", 1.0, 0, ["x"]), ("a", 2.0, 0, ["x"])])
    with pytest.raises(ValueError, match="duplicate id 'a'"):
        SlotProblem.from_dict(data)


def test_check_plan_catches_a_double_booked_cell() -> None:
    """check_plan (used by the tests above) rejects two jobs in one technician's slot."""
    problem = SlotProblem.from_dict(instance(1, [("x", 1.0, [0])], [("a", 1.0, 0, ["x"]), ("b", 1.0, 0, ["x"])]))
    with pytest.raises(ValueError, match="two jobs in slot 0"):
        check_plan(problem, [Assignment("a", "x", 0), Assignment("b", "x", 0)])


# ----------------------------------------------------------------------------------------- CLI


def test_cli_prints_the_json_answer(tmp_path: Any) -> None:
    """``truckroll optimize-slots`` prints the optimal plan as JSON on stdout."""
    path = tmp_path / "i.json"
    path.write_text(json.dumps(instance(1, [("x", 2.0, [0]), ("y", 1.0, [0])],
                                        [("a", 100.0, 0, ["x", "y"]), ("b", 90.0, 0, ["x"])])))
    result = CliRunner().invoke(app, ["optimize-slots", str(path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] == "optimal" and out["objective"] == pytest.approx(280)


def test_cli_bad_input_is_a_one_line_error(tmp_path: Any) -> None:
    """A malformed instance gives a one-line error naming the field and a non-zero exit code."""
    path = tmp_path / "bad.json"
    data = json.loads(json.dumps(GOOD))
    data["technicians"][0]["multiplier"] = 0
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["optimize-slots", str(path)])
    assert result.exit_code != 0
    assert "multiplier" in result.output
    assert "Traceback" not in result.output
    # one error message (Rich may wrap it at the console width, so count messages, not lines)
    assert result.output.count("error:") == 1
