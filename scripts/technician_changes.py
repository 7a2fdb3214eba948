"""Experiment: does a higher price per technician change make the re-optimisation give fewer promised visits to
another technician?

``python scripts/technician_changes.py --technicians 25 --limit 30 --penalties 2,25,100``

On the first day of a generated scenario (seed ``--seed``), dispatch one by one as ``truckroll bench day`` does
(``bench.day.one_by_one``), then re-optimise with every accepted visit promised (its window kept, its technician
free: the flow's rule) at each price per visit moved (``AssignmentOptions.change_penalty``, $2 by default). Prints,
per price, the requests served, the promised visits given to another technician, travel per job and revenue.
Figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    from bench import day as bench_day
    from demo.scenario import day_problem, generate
    from engine.reoptimize.day import ReoptimizeOptions, is_better, score_plan
    from engine.reoptimize.horizon import HorizonOptions, reoptimize_horizon
    from engine.reoptimize.model import AssignmentOptions

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--technicians", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=float, default=30.0, help="re-optimisation budget (seconds)")
    parser.add_argument("--penalties", default="2,25,100", help="dollars per visit moved, comma-separated")
    args = parser.parse_args()

    scenario = generate(args.technicians, 1, args.seed)
    day = scenario.days[0]
    state = bench_day.one_by_one(scenario, day, day_problem(scenario, day, max_work_share=bench_day.UTILISATION_TARGET))
    before_tech = {s.request_id: d.technician_id for d in state.days for s in d.stops}
    print(f"one by one: {len(before_tech)} served")
    for penalty in (float(x) for x in args.penalties.split(",")):
        options = ReoptimizeOptions(assignment=AssignmentOptions(utilisation_target=bench_day.UTILISATION_TARGET,
                                                                 change_penalty=penalty),
                                    time_limit_seconds=args.limit)
        t0 = time.perf_counter()
        plan = reoptimize_horizon(state.days, state.jobs, state.travel, HorizonOptions(base=options, seed=0),
                                  promised=frozenset(before_tech))
        seconds = time.perf_counter() - t0
        before = score_plan(state.days, state.jobs, state.travel, options)
        after = score_plan(plan.days, state.jobs, state.travel, options)
        after_tech = {s.request_id: d.technician_id for d in plan.days for s in d.stops}
        changed = sum(1 for r, t in before_tech.items() if r in after_tech and after_tech[r] != t)
        print(f"${penalty:g} per change: served {len(after_tech)}, promised visits given to another technician "
              f"{changed} of {len(before_tech)}, better {is_better(after, before, options.min_gain)}, travel/job "
              f"{before.travel_minutes / before.jobs:.1f} -> {after.travel_minutes / after.jobs:.1f}, revenue "
              f"{before.revenue:,.0f} -> {after.revenue:,.0f}, {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
