"""The plans' figures of whole-process runs of ``truckroll solve`` (any ``--solver``), checked by our checker.

    .venv/bin/python scripts/solve_totals.py PROBLEM.json ANSWERS [ANSWERS ...]

Each ANSWERS file holds one or more answers as ``truckroll solve`` prints them, one after another (for example
every run of ``sh -c 'exec truckroll solve PROBLEM.json --solver vroom --time-limit 2 >>FILE'`` timed by an
outside timer). Every answer is checked with ``engine.routing.check.check_answer_json``; one line per file
gives the runs, how many were feasible, and the medians of jobs served, value served, total travel (minutes),
travel per job and the solver's own runtime.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def answers(text: str) -> list[dict]:
    """The JSON objects of ``text``, one after another."""
    decoder, out, k = json.JSONDecoder(), [], 0
    while True:
        while k < len(text) and text[k].isspace():
            k += 1
        if k >= len(text):
            return out
        obj, k = decoder.raw_decode(text, k)
        out.append(obj)


def main() -> int:
    from engine.routing.check import check_answer_json
    from engine.routing.problem import problem_from_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem", type=Path)
    parser.add_argument("answers", type=Path, nargs="+")
    args = parser.parse_args()
    problem = problem_from_json(json.loads(args.problem.read_text()))
    print("| answers | runs | feasible | served | value $ | travel min | travel/job | solver s |")
    print("|---|---|---|---|---|---|---|---|")
    for path in args.answers:
        runs = answers(path.read_text())
        if not runs:
            print(f"| {path.name} | 0 | | | | | | |")
            continue
        feasible = sum(1 for a in runs if not check_answer_json(problem, a))
        med = statistics.median
        served = [a["totals"]["jobs_served"] for a in runs]
        travel = [a["totals"]["travel_minutes"] for a in runs]
        print(f"| {path.name} | {len(runs)} | {feasible} | {med(served):g} | "
              f"{med(a['totals']['value_served'] for a in runs):,.0f} | {med(travel):.1f} | "
              f"{med(t / s for t, s in zip(travel, served, strict=True) if s):.2f} | "
              f"{med(a['solver']['runtime_seconds'] for a in runs):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
