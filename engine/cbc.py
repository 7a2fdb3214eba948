"""The one place truckroll runs CBC on a Pyomo model: find the binary, solve, check why it stopped, load.

Every Pyomo model of the engine (the re-optimisation's set partitioning and assignment, the booking slots)
is solved through ``solve``. The caller passes the executable (``settings.cbc_executable``: a name on PATH
or a path), a time limit and a relative gap; ``solve`` returns ``"optimal"`` or ``"time_limit"`` (CBC
stopped at a limit holding a feasible solution, which is loaded) and raises ``CbcError`` otherwise, with the
reason in words. Callers decide what a time-limited answer means for them and what to fall back to.
"""

from __future__ import annotations

import shutil
from typing import Any

OPTIMAL = "optimal"
TIME_LIMIT = "time_limit"


class CbcError(RuntimeError):
    """CBC is missing, crashed, or stopped without a usable solution."""


def cbc_path(executable: str = "cbc") -> str | None:
    """The CBC binary ``executable`` names (a path or a name on PATH), or None when there is none."""
    return shutil.which(executable)


def solve(model: Any, *, executable: str = "cbc", time_limit_seconds: float | None = None, mip_gap: float = 0.0,
          warmstart: bool = False) -> str:
    """Solve ``model`` with CBC and load the solution into it.

    Parameters
    ----------
    model:
        A Pyomo ``ConcreteModel``.
    executable:
        The CBC binary (``settings.cbc_executable``).
    time_limit_seconds:
        CBC's ``seconds`` limit (at least 0.1 s); None for no limit.
    mip_gap:
        Relative gap CBC may stop at (``ratioGap``), in [0, 1).
    warmstart:
        Pass the variables' current values to CBC as its first incumbent.

    Returns
    -------
    str
        ``"optimal"``, or ``"time_limit"`` when CBC stopped at a limit with a feasible solution.

    Raises
    ------
    CbcError
        If CBC is missing, fails, proves the model infeasible, or stops without a feasible solution.
    ValueError
        If ``time_limit_seconds`` is not positive or ``mip_gap`` is outside [0, 1).
    """
    import pyomo.environ as pyo
    from pyomo.opt import SolverStatus, TerminationCondition

    if time_limit_seconds is not None and not time_limit_seconds > 0:
        raise ValueError(f"time_limit_seconds must be > 0 (got {time_limit_seconds})")
    if not 0 <= mip_gap < 1:
        raise ValueError(f"mip_gap must be in [0, 1) (got {mip_gap})")
    path = cbc_path(executable)
    if path is None:
        raise CbcError(f"CBC not found at {executable!r}: not installed (Debian: apt-get install coinor-cbc) "
                       "or TRUCKROLL_CBC_EXECUTABLE names no executable")
    opt = pyo.SolverFactory("cbc", executable=path)
    if time_limit_seconds is not None:
        opt.options["seconds"] = round(max(time_limit_seconds, 0.1), 2)
    opt.options["ratioGap"] = mip_gap
    try:
        results = opt.solve(model, load_solutions=False, warmstart=warmstart)
    except Exception as exc:  # the plugin raises ApplicationError, ValueError, ... when CBC crashes
        raise CbcError(f"CBC failed: {exc}") from exc
    term = results.solver.termination_condition
    if term == TerminationCondition.optimal and results.solver.status == SolverStatus.ok:
        status = OPTIMAL
    elif term in (TerminationCondition.maxTimeLimit, TerminationCondition.maxIterations,
                  TerminationCondition.intermediateNonInteger) and len(results.solution) > 0:
        status = TIME_LIMIT
        # A limited run reports 'aborted' while holding a feasible incumbent; loading it is safe.
        results.solver.status = SolverStatus.ok
    else:
        raise CbcError(f"CBC stopped without a solution: {results.solver.status}, {term}")
    model.solutions.load_from(results)
    return status
