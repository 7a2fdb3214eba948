"""``truckroll bench slots``: the slot optimiser at full size against an exact min-cost-flow reference.

Every timing is a whole process (python start, imports, JSON in, build, solve, JSON out), measured
in the same run and interleaved, so the ratios survive a noisy shared machine.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import typer

from cli.app import bench_app, console

# The reference: an exact min-cost-flow solve written independently of engine/booking/slots.py (numpy arrays
# straight into OR-Tools, same chain network), as a standalone script so its process pays only for what
# it uses. It prints the optimum; the bench checks that every backend reaches it.
REFERENCE_SCRIPT = r"""
import json, sys
import numpy as np
from ortools.graph.python import min_cost_flow
data = json.load(open(sys.argv[1]))
S = data["slots"]
techs = data["technicians"]
jobs = data["jobs"]
tix = {t["id"]: i for i, t in enumerate(techs)}
# chain node of (tech, slot) for available slots; entry[t][k] = first available node >= k
entry = np.full((len(techs), S + 1), -1, dtype=np.int64)
tails, heads = [], []
n = len(jobs)
for i, t in enumerate(techs):
    av = sorted(set(t["available_slots"]))
    ids = list(range(n, n + len(av)))
    nxt = -1
    pos = len(av)
    for k in range(S - 1, -1, -1):
        while pos > 0 and av[pos - 1] >= k:
            pos -= 1
        entry[i, k] = ids[pos] if pos < len(av) else -1
    tails += ids[:-1]
    heads += ids[1:]
    n += len(av)
sink = n
chain_t = np.array(tails, dtype=np.int64)
chain_h = np.array(heads, dtype=np.int64)
pj, pt = [], []
for j, job in enumerate(jobs):
    for tid in job["eligible_technicians"]:
        pj.append(j); pt.append(tix[tid])
pj = np.array(pj, dtype=np.int64); pt = np.array(pt, dtype=np.int64)
ms = np.array([j["min_slot"] for j in jobs], dtype=np.int64)
ph = entry[pt, ms[pj]]
keep = ph >= 0
pj, pt, ph = pj[keep], pt[keep], ph[keep]
w = np.array([j["value"] for j in jobs])[pj] * np.array([t["multiplier"] for t in techs])[pt]
nodes = np.arange(len(jobs), sink, dtype=np.int64)
J = np.arange(len(jobs), dtype=np.int64)
m = min_cost_flow.SimpleMinCostFlow()
m.add_arcs_with_capacity_and_unit_cost(
    np.concatenate([pj, chain_t, nodes, J]),
    np.concatenate([ph, chain_h, np.full(len(nodes) + len(J), sink, dtype=np.int64)]),
    np.concatenate([np.ones(len(pj), dtype=np.int64), np.full(len(chain_t), len(jobs), dtype=np.int64),
                    np.ones(len(nodes) + len(J), dtype=np.int64)]),
    np.concatenate([-np.rint(w * 1e6).astype(np.int64), np.zeros(len(chain_t) + len(nodes) + len(J), dtype=np.int64)]))
m.set_nodes_supplies(np.append(J, sink), np.append(np.ones(len(J), dtype=np.int64), -len(J)))
assert m.solve() == m.OPTIMAL
used = m.flows(np.arange(len(pj), dtype=np.int64)) > 0
print(json.dumps({"objective": round(float(w[used].sum()), 6)}))
"""


def generate_instance(seed: int, technicians: int = 100, slots: int = 30, jobs: int = 3000,
                      eligibility: float = 0.3, availability: float = 0.9) -> dict[str, Any]:
    """A seeded instance in the ``optimize-slots`` JSON format.

    Multipliers 0.8-1.5 (2 decimals), values 40-600 (cents), min_slot skewed early (customers ask for
    soon), each technician eligible for a job with probability ``eligibility`` (at least one), available
    in each slot with probability ``availability``.
    """
    rng = random.Random(seed)
    techs = [{"id": f"tech-{i}", "multiplier": round(rng.uniform(0.8, 1.5), 2),
              "available_slots": [s for s in range(slots) if rng.random() < availability]}
             for i in range(technicians)]
    ids = [t["id"] for t in techs]
    job_list = []
    for j in range(jobs):
        eligible = [t for t in ids if rng.random() < eligibility] or [rng.choice(ids)]
        job_list.append({"id": f"job-{j}", "value": round(rng.uniform(40, 600), 2),
                         "min_slot": int(rng.random() ** 2 * slots), "eligible_technicians": eligible})
    return {"slots": slots, "technicians": techs, "jobs": job_list}


def _timed(cmd: list[str]) -> tuple[float, dict[str, Any]]:
    import subprocess

    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return elapsed, json.loads(proc.stdout)


def _truckroll() -> list[str]:
    exe = Path(sys.executable).with_name("truckroll")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cli"]


@bench_app.command("slots")
def bench_slots(
    seeds: int = typer.Option(3, help="Number of seeded full-size instances."),
    repeats: int = typer.Option(5, help="Timed runs per instance and command (interleaved)."),
    pyomo_repeats: int = typer.Option(1, help="Timed runs of the pyomo backend per instance (0: skip)."),
    technicians: int = typer.Option(100),
    slots: int = typer.Option(30),
    jobs: int = typer.Option(3000),
) -> None:
    """Whole-process time and objective of optimize-slots (flow, pyomo) vs an exact min-cost flow and greedy."""
    import tempfile

    from engine.booking.slots import SlotProblem, solve_greedy, solve_pyomo

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "reference_mcf.py"
        reference.write_text(REFERENCE_SCRIPT)
        for seed in range(seeds):
            data = generate_instance(seed, technicians=technicians, slots=slots, jobs=jobs)
            path = Path(tmp) / f"slots-{seed}.json"
            path.write_text(json.dumps(data))
            problem = SlotProblem.from_dict(data)
            greedy = solve_greedy(problem)
            t_flow, t_ref, t_pyomo = [], [], []
            answers: dict[str, dict[str, Any]] = {}
            for _ in range(repeats):
                t, answers["flow"] = _timed(_truckroll() + ["optimize-slots", str(path)])
                t_flow.append(t)
                t, answers["reference"] = _timed([sys.executable, str(reference), str(path)])
                t_ref.append(t)
            for _ in range(pyomo_repeats):
                t, answers["pyomo"] = _timed(_truckroll() + ["optimize-slots", str(path), "--backend", "pyomo"])
                t_pyomo.append(t)
            phases = solve_pyomo(problem).timings_seconds if pyomo_repeats else {}
            rows.append({
                "seed": seed, "flow_s": statistics.median(t_flow), "reference_s": statistics.median(t_ref),
                "ratio": statistics.median(f / r for f, r in zip(t_flow, t_ref, strict=True)),
                "pyomo_s": statistics.median(t_pyomo) if t_pyomo else None,
                "objective_flow": answers["flow"]["objective"], "status_flow": answers["flow"]["status"],
                "objective_reference": answers["reference"]["objective"],
                "objective_pyomo": answers["pyomo"]["objective"] if "pyomo" in answers else None,
                "objective_greedy": round(greedy.objective, 6),
                "assigned_flow": len(answers["flow"]["assignments"]), "assigned_greedy": len(greedy.assignments),
                "pyomo_phases_s": {k: round(v, 3) for k, v in phases.items()},
            })
    for r in rows:
        console.print_json(json.dumps(r))
    console.print(f"median flow/reference ratio over {seeds} instances x {repeats} runs: "
                  f"{statistics.median(r['ratio'] for r in rows):.2f}")
