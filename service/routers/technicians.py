"""A technician's schedule for a day."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, status

from models.security_tables import Role
from service.auth import AUTH_RESPONSES, Principal, require_roles
from service.deps import SessionDep
from service.errors import ErrorOut
from service.limits import DbId, check_day
from service.schemas import ScheduleOut, ShiftOut, StopOut, WindowOut
from truckroll import store
from truckroll.settings import get_settings
from truckroll.travel.provider import get_travel_provider

router = APIRouter(prefix="/technicians", tags=["technicians"])


@router.get("/{technician_id}/schedule", response_model=ScheduleOut, summary="A technician's route for a day",
            responses={**AUTH_RESPONSES, 404: {"model": ErrorOut, "description": "No such technician"}})
def technician_schedule(
    technician_id: DbId, session: SessionDep,
    day: Annotated[date, Query(alias="date", description="YYYY-MM-DD in the company's time zone, within the "
                                                         "API's date range (ten years either side of today)")],
    who: Annotated[Principal, Depends(require_roles(Role.DISPATCHER, Role.TECHNICIAN))],
) -> ScheduleOut:
    """Each shift that starts on the day, with its stops in order: times, promised windows, travel. A technician
    sees only their own day."""
    if not who.may_see_technician(technician_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a technician sees only their own schedule")
    check_day(day)
    try:
        tech = store.get_technician(technician_id, session=session)
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    settings = get_settings()
    start, end = store.day_bounds(day, ZoneInfo(settings.company_timezone))
    days = [d for d in store.technician_days(session=session, start=start, end=end, tz=settings.company_timezone,
                                             live=get_travel_provider(settings), technician_ids=[technician_id])
            if start <= d.shift_start < end]
    ids = [s.request_id for d in days for s in d.stops]
    requests = store.requests_by_id(ids, session=session)
    shifts = [ShiftOut(start=d.shift_start, end=d.shift_end, stops=[
        StopOut(request_id=s.request_id, start=s.start, end=s.end,
                arrival_window=WindowOut(start=s.window.start, end=s.window.end), travel_minutes=s.travel_minutes,
                fixed=s.fixed, customer_name=requests[s.request_id].customer_name,
                address=requests[s.request_id].address, job_type=requests[s.request_id].job_type)
        for s in d.stops]) for d in days]
    return ScheduleOut(technician_id=technician_id, name=tech.name, date=day, shifts=shifts)
