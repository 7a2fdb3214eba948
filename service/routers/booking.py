"""Booking: the arrival windows to offer, booking one, and the capacity per window (docs/booking.md)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse

from models.schemas import RequestValidationError
from models.security_tables import Role
from service.auth import AUTH_RESPONSES, require_roles
from service.deps import DispatcherDep
from service.errors import ErrorOut
from service.limits import check_day
from truckroll.booking import windows as booking
from truckroll.settings import get_settings

router = APIRouter(tags=["booking"], responses=AUTH_RESPONSES,
                   dependencies=[Depends(require_roles(Role.INTEGRATION, Role.DISPATCHER))])
_INVALID = {"model": ErrorOut, "description": "Failing fields, each named; nothing was written"}


def _invalid(exc: RequestValidationError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[e.model_dump() for e in exc.errors])


@router.post("/availability", summary="Bookable arrival windows for a prospective job, graded 0-100",
             responses={422: _INVALID})
def post_availability(job: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """``offered``: the windows to put in front of the customer (value-aware); ``options``: every bookable window
    with its grade and reasons; ``unavailable``: the other windows and why."""
    try:
        return booking.availability_for(job, settings=get_settings())
    except RequestValidationError as exc:
        raise _invalid(exc) from None


@router.post("/bookings", status_code=status.HTTP_201_CREATED, summary="Book one offered window",
             responses={409: {"model": ErrorOut,
                              "description": "The window was taken meanwhile: `detail` and fresh `options`"},
                        422: _INVALID})
def post_booking(payload: Annotated[dict[str, Any], Body()], dispatcher: DispatcherDep) -> Any:
    """Create the service request for the chosen window and assign it, in one transaction; 409 with fresh options
    if it is gone (nothing written). The booked request is then handed to its dispatch flow run (the record in
    Prefect, and the delivery of its messages)."""
    try:
        booked = booking.book(payload, settings=get_settings())
    except RequestValidationError as exc:
        raise _invalid(exc) from None
    except booking.WindowTaken as exc:
        return JSONResponse(status_code=status.HTTP_409_CONFLICT, content={"detail": str(exc), "options": exc.options})
    dispatcher.submit(booked["request_id"])
    return booked


@router.get("/capacity", summary="Per window: share booked and technicians still free",
            responses={422: _INVALID})
def get_capacity(day: Annotated[date, Query(alias="date", description="YYYY-MM-DD in the company's time zone, "
                                                                     "within ten years of today")],
                 skill: Annotated[str | None, Query(max_length=200,
                                                    description="Only technicians with this skill")] = None
                 ) -> list[dict[str, Any]]:
    check_day(day)
    try:
        return booking.capacity(day, skill=skill, settings=get_settings())
    except RequestValidationError as exc:
        raise _invalid(exc) from None
