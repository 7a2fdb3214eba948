"""``truckroll solve --solver vroom``: VROOM's plan of a generated technician day through the CLI, re-timed and
checked by our own scheduler and checker, in the same answer shape as the route optimiser's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from engine.routing.check import check_answer_json
from engine.routing.problem import problem_from_json

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def day_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenario")
    res = CliRunner().invoke(app, ["scenario", "generate", "--technicians", "5", "--days", "1", "--seed", "3",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    (day,) = out.glob("day-*.json")
    return day


def _solve(*args: str) -> dict:
    res = CliRunner().invoke(app, ["solve", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_vroom_plans_the_day_feasibly_with_every_job_accounted_for(day_file: Path):
    raw = json.loads(day_file.read_text())
    answer = _solve(str(day_file), "--solver", "vroom", "--time-limit", "1")
    assert answer["status"] == "vroom"
    assert check_answer_json(problem_from_json(raw), answer) == []
    skills = {t["id"]: set(t["skills"]) for t in raw["technicians"]}
    jobs = {j["id"]: j for j in raw["jobs"]}
    routed = [(r["technician"], s["job"]) for r in answer["routes"] for s in r["stops"]
              if s.get("kind", "job") == "job"]
    unassigned = {u["job"]: u["reason"] for u in answer["unassigned"]}
    # Every job exactly once: in a route or unassigned with a reason.
    assert sorted([j for _, j in routed] + list(unassigned)) == sorted(jobs)
    assert all(reason.strip() for reason in unassigned.values())
    assert len(routed) >= len(jobs) // 2
    # Skills: each job's required capabilities are held by the technician who does it.
    for tech, job in routed:
        assert set(jobs[job]["skills"]) <= skills[tech], (tech, job)
    # A job no technician has the skills for says so (seed 3 has gas work and nobody certified for it).
    nobody = [j for j in jobs if not any(set(jobs[j]["skills"]) <= s for s in skills.values())]
    assert nobody and all(unassigned[j].startswith("no technician has the skills") for j in nobody)
    # Totals match the routes.
    totals = answer["totals"]
    assert totals["travel_minutes"] == pytest.approx(sum(r["travel_minutes"] for r in answer["routes"]), abs=1e-3)
    assert totals["jobs_served"] == len(routed)
    assert totals["jobs_unassigned"] == len(unassigned)
    assert totals["value_served"] == pytest.approx(sum(jobs[j]["value"] for _, j in routed), abs=1e-3)


def test_vroom_keeps_a_maximum_working_time_by_taking_stops_out(day_file: Path, tmp_path: Path):
    """VROOM cannot express a maximum working time: the stops over it are taken out (as ``truckroll bench day``
    does), so the plan keeps the cap and the jobs taken out say why."""
    raw = json.loads(day_file.read_text())
    free = _solve(str(day_file), "--solver", "vroom", "--time-limit", "1")
    cap = 150.0
    capped_raw = {**raw, "technicians": [{**t, "max_work_minutes": cap} for t in raw["technicians"]]}
    capped_file = tmp_path / "capped.json"
    capped_file.write_text(json.dumps(capped_raw))
    capped = _solve(str(capped_file), "--solver", "vroom", "--time-limit", "1")
    assert check_answer_json(problem_from_json(capped_raw), capped) == []  # includes the working-time cap
    # The uncapped plan breaks the cap, so the cap took work out and said so.
    assert check_answer_json(problem_from_json(capped_raw), free) != []
    assert capped["totals"]["jobs_served"] < free["totals"]["jobs_served"]
    assert any("maximum working time" in u["reason"] for u in capped["unassigned"])


def test_check_answer_json_catches_a_job_given_to_a_technician_without_the_skill(day_file: Path):
    raw = json.loads(day_file.read_text())
    problem = problem_from_json(raw)
    answer = _solve(str(day_file), "--solver", "vroom", "--time-limit", "1")
    skills = {t["id"]: set(t["skills"]) for t in raw["technicians"]}
    jobs = {j["id"]: j for j in raw["jobs"]}
    route = answer["routes"][0]
    job = next(u["job"] for u in answer["unassigned"]
               if not set(jobs[u["job"]]["skills"]) <= skills[route["technician"]])
    broken = {**answer, "routes": [{**route, "stops": route["stops"] + [route["stops"][-1] | {"job": job}]},
                                   *answer["routes"][1:]],
              "unassigned": [u for u in answer["unassigned"] if u["job"] != job]}
    assert any("lacks skills" in issue for issue in check_answer_json(problem, broken))
    wrong_totals = {**answer, "totals": {**answer["totals"], "travel_minutes": answer["totals"]["travel_minutes"] - 5}}
    assert check_answer_json(problem, wrong_totals) == ["the totals do not match the routes"]


def test_unknown_solver_is_a_one_line_error(day_file: Path):
    res = CliRunner().invoke(app, ["solve", str(day_file), "--solver", "nope"])
    assert res.exit_code != 0
    assert "nope" in res.output and "truckroll, vroom" in res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


@pytest.mark.parametrize("solver, absent, present", [("vroom", {"pyvrp", "pyomo"}, {"vroom"}),
                                                     ("truckroll", {"pyomo"}, {"vroom", "pyvrp"})])
def test_each_solver_imports_only_its_own_engine(day_file: Path, tmp_path: Path, solver: str, absent: set[str],
                                                 present: set[str]):
    """Whole-process comparisons count imports: ``--solver vroom`` loads neither PyVRP nor Pyomo; the route
    optimiser loads pyvroom (its start) and PyVRP (its search), and under 4 s no Pyomo (no set partitioning)."""
    raw = json.loads(day_file.read_text())
    problem = tmp_path / "min_travel.json"
    problem.write_text(json.dumps({**raw, "objective": "min_travel", "jobs": raw["jobs"][:4]}))
    code = ("import json, sys\nfrom cli import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('pyvrp', 'pyomo', 'vroom'))),"
            " file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", code, "solve", str(problem), "--solver", solver, "--time-limit", "1"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = {m.split(".")[0] for m in json.loads(out.stderr.strip().splitlines()[-1])}
    assert json.loads(out.stdout)["objective"] == "min_travel"
    assert not loaded & absent, loaded
    assert present <= loaded, loaded
