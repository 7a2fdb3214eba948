"""``truckroll bench day``: the overlap measure by hand, and every plan of a small generated day checked."""

from __future__ import annotations

import pytest

from truckroll.bench.day import bench_rows, route_overlap


def test_route_overlap_counts_stops_inside_another_technicians_hull():
    """A's hull is the triangle (0,0) (0,10) (10,0); B's stop (1,1) lies inside it, B's other stop does not;
    A's stops are outside B's (degenerate, a segment) hull: 1 of 4 stops overlaps."""
    a = [(0.0, 0.0), (0.0, 10.0), (10.0, 0.0)]
    b = [(20.0, 20.0), (1.0, 1.0), (30.0, 30.0)]
    assert route_overlap([a, b]) == pytest.approx(1 / 4)
    assert route_overlap([a, [(20.0, 20.0), (21.0, 21.0)]]) == 0.0


def test_bench_day_rows_are_checked_and_the_offline_bound_is_the_best_capped_plan():
    rows = bench_rows(6, seed=2, offline_limit=1.0, peer_limit=1.0, equal_times=[], peers=["vroom", "ortools"])
    plans = {r["plan"]: r for r in rows}
    assert any(p.startswith("one by one (dispatch engine") for p in plans)
    assert "not on this branch" in plans["one by one + re-optimisation"]["error"]
    measured = [r for r in rows if "error" not in r]
    assert len(measured) >= 5
    for r in measured:
        assert r["feasible"], (r["plan"], r["issues"])
        assert r["served"] + r["escalated"] == measured[0]["served"] + measured[0]["escalated"]
    bound = next(r for r in measured if r["plan"].startswith("offline plan = best of"))
    capped = [r for r in measured if "85% cap" in r["plan"] and not r["plan"].startswith("offline plan")]
    assert capped and all(bound["revenue"] >= r["revenue"] - 1e-6 for r in capped)
    assert bound["util_max"] <= 0.85 + 1e-6
