"""``POST /reoptimize``: re-plan the horizon now (or only compare, with ``dry_run``). Dispatchers and admins."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from service.auth import AUTH_RESPONSES, require_roles
from service.errors import ErrorOut
from service.limits import check_day

router = APIRouter(tags=["reoptimize"], dependencies=[Depends(require_roles("dispatcher"))],
                   responses={**AUTH_RESPONSES, 422: {"model": ErrorOut,
                                                      "description": "A horizon over the maximum, or a bad date"}})


class ReoptimizeIn(BaseModel):
    date: dt.date | None = Field(None, description="First day of the horizon (default: today, company time).")
    horizon_days: int | None = Field(None, ge=1, le=366,
                                     description="Days re-planned together (default from the settings).")
    dry_run: bool = Field(False, description="Compare only; write nothing.")
    time_limit_seconds: float | None = Field(None, gt=0, le=3600, description="PyVRP + CBC budget.")


@router.post("/reoptimize", summary="Re-optimise the horizon's routes now")
def reoptimize(body: ReoptimizeIn) -> dict[str, Any]:
    """Runs the reoptimize-day flow and answers its outcome: before/after measures, applied or not, the
    pinned visits that cannot be kept. A horizon over ``reoptimize_max_horizon_days`` is a 422."""
    from flows.reoptimize import reoptimize_day
    from truckroll.reoptimize.day import HorizonTooLong, horizon_dates
    from truckroll.settings import get_settings

    s = get_settings()
    if body.date is not None:
        check_day(body.date)
    first = body.date or dt.date.today()
    try:
        horizon_dates(first, s.reoptimize_horizon_days if body.horizon_days is None else body.horizon_days,
                      maximum=s.reoptimize_max_horizon_days)
    except HorizonTooLong as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
    state: Any = reoptimize_day(day=body.date.isoformat() if body.date else None,
                                time_limit_seconds=body.time_limit_seconds or s.reoptimize_time_limit_seconds,
                                mip_gap=s.reoptimize_mip_gap, rescue_escalations=s.reoptimize_rescue_escalations,
                                dry_run=body.dry_run, horizon_days=body.horizon_days, return_state=True)
    out = state.result(raise_on_failure=False)
    if not isinstance(out, dict):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"re-optimisation failed: {state.message}")
    return {"state": state.name, "message": state.message, **out}
