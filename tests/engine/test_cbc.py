"""engine.cbc: the one CBC helper (solve, check why CBC stopped, load)."""

from __future__ import annotations

import shutil

import pyomo.environ as pyo
import pytest

from engine import cbc

needs_cbc = pytest.mark.skipif(shutil.which("cbc") is None, reason="needs CBC (Debian coinor-cbc)")


def _knapsack(capacity: float) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, 2)
    m.x = pyo.Var(m.I, domain=pyo.Binary)
    value, size = [5.0, 4.0, 3.0], [4.0, 3.0, 2.0]
    m.cap = pyo.Constraint(expr=sum(size[i] * m.x[i] for i in m.I) <= capacity)
    m.obj = pyo.Objective(expr=sum(value[i] * m.x[i] for i in m.I), sense=pyo.maximize)
    return m


@needs_cbc
def test_optimum_is_loaded() -> None:
    m = _knapsack(5.0)
    assert cbc.solve(m, time_limit_seconds=10) == cbc.OPTIMAL
    assert [round(pyo.value(m.x[i])) for i in m.I] == [0, 1, 1]  # 4 + 3 beats 5 alone


@needs_cbc
def test_infeasible_model_is_an_error_naming_the_stop() -> None:
    m = _knapsack(5.0)
    m.force = pyo.Constraint(expr=m.x[0] + m.x[1] + m.x[2] >= 3)
    with pytest.raises(cbc.CbcError, match="infeasible"):
        cbc.solve(m, time_limit_seconds=10)


def test_missing_executable_is_named() -> None:
    with pytest.raises(cbc.CbcError, match="/nonexistent/cbc"):
        cbc.solve(_knapsack(5.0), executable="/nonexistent/cbc")


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="time_limit_seconds"):
        cbc.solve(_knapsack(5.0), time_limit_seconds=0)
    with pytest.raises(ValueError, match="mip_gap"):
        cbc.solve(_knapsack(5.0), mip_gap=1.0)
