"""Experiment: would holding back low-value requests on arrival make dispatch escalate only what the offline plan
cannot serve either?

``python scripts/value_aware_acceptance.py --technicians 100 --factors 0,2.5,1.5``

On the first day of a generated scenario (``truckroll scenario generate``, seed ``--seed``), dispatch one by one
as ``truckroll bench day`` does (``bench.day.one_by_one``), but hold back a request (leave it to the
re-optimisation, no bounded repair) when the expected value of the forecast jobs its visit would displace
exceeds ``factor`` x its own expected value: the displacement the value-aware booking offer uses
(``engine.booking.windows.displaced_value``), with a forecast learned from four earlier weeks of the same
company's demand (other seeds of the generator). Factor 0 holds nothing back (the flow's dispatch). Then the
flow's re-optimisation (``bench.day.reoptimise``, ``--reoptimise-limit`` s), and the verdict against the
offline plan (truckroll, ``--offline-limit`` s) as ``bench day`` prints it (``bench.day.against_offline``).
Figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import copy
from datetime import timedelta
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--technicians", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--factors", default="0,2.5,1.5", help="comma-separated; 0 holds nothing back")
    parser.add_argument("--reoptimise-limit", type=float, default=30.0)
    parser.add_argument("--offline-limit", type=float, default=30.0)
    parser.add_argument("--weeks", type=int, default=4, help="weeks of history the forecast learns from")
    args = parser.parse_args()
    factors = [float(x) for x in args.factors.split(",") if x.strip()]

    from bench import day as bench_day
    from demo.scenario import day_problem, generate
    from engine.booking.forecast import DemandRecord, WindowGrid, forecast_from_history, main_skill
    from engine.booking.windows import BookingSettings, DisplacementCache, _day_context, displaced_value
    from engine.dispatch.insertion import apply_insertion
    from engine.routing.peers import plan_answer
    from engine.routing.solver import solve

    scenario = generate(args.technicians, 1, args.seed)
    day = scenario.days[0]
    grid = WindowGrid(scenario.timezone, ((8, 10), (10, 12), (12, 14), (14, 16)))
    records = []
    for k in range(1, args.weeks + 1):
        past = generate(args.technicians, 1, args.seed + 1000 + k, first_day=day - timedelta(weeks=k))
        for r in past.requests_for(past.days[0]):
            when = r.windows[0].start
            records.append(DemandRecord(when, main_skill(r.skills), r.value,
                                        lead_hours=(when - r.arrives_at).total_seconds() / 3600))
    forecast = forecast_from_history(records, grid, weeks=args.weeks, until=day)
    settings = BookingSettings()
    travel = bench_day.engine_travel()

    capped = day_problem(scenario, day, max_work_share=bench_day.UTILISATION_TARGET)
    coords = bench_day._coords(scenario, day, capped)
    view = bench_day.engine_problem(capped)
    offline = bench_day.measure(capped, solve(capped, time_limit_seconds=args.offline_limit, seed=args.seed),
                                coords, args.offline_limit)
    print(f"offline plan (truckroll {args.offline_limit:g} s): {offline['served']} served, "
          f"${offline['revenue']:,.0f}, {offline['travel_per_job']:.1f} travel/job")

    for factor in factors:
        cache = DisplacementCache()
        held: list[int] = []

        def accept(job: Any, decision: Any, days: list[Any], arrives_at: Any, factor: float = factor,
                   cache: DisplacementCache = cache, held: list[int] = held) -> bool:
            if factor <= 0 or job.priority <= 1:  # emergencies are never held back
                return True
            chosen = decision.chosen
            ctx = _day_context(day, days, grid, settings.capacity_unit_minutes)
            after = copy.deepcopy(chosen.day)
            apply_insertion(after, job, chosen.insertion, decision.arrival_window, travel)
            lost, _ = displaced_value(ctx, chosen.day, after, forecast, {}, settings, None, cache, now=arrives_at)
            if lost > factor * job.estimated_value * chosen.day.upsell_multiplier:
                held.append(job.request_id)
                return False
            return True

        state = bench_day.one_by_one(scenario, day, capped, accept=accept)
        one = bench_day.measure(view, plan_answer(view, state.orders(), 0.0), coords, 0.0)
        reopt = bench_day.measure(view, plan_answer(view, bench_day.reoptimise(state, args.reoptimise_limit), 0.0),
                                  coords, args.reoptimise_limit)
        verdict = bench_day.against_offline(f"{args.technicians} techs", reopt, offline)
        print(f"factor {factor:g}: held back {len(held)}; one by one {one['served']} served "
              f"${one['revenue']:,.0f}; re-optimised {reopt['served']} served ${reopt['revenue']:,.0f} "
              f"{reopt['travel_per_job']:.1f} travel/job; {verdict['error']}")


if __name__ == "__main__":
    main()
