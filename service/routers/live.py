"""The live day over HTTP: the technician's app reports status (technician role), dispatchers and customer
portals cancel and reschedule. Each event re-times the technician's route (``truckroll.live``).

Roles: a technician reports status on their own jobs only and reads their own day; dispatchers (and admins) do
everything; a customer portal (integration role) cancels and reschedules."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from models.schemas import WindowIn
from service.auth import AUTH_RESPONSES, Principal, require_roles
from service.deps import DispatcherDep, Outbox, OutboxDep, SessionDep
from service.errors import ErrorOut
from service.limits import DbId, check_day
from truckroll import store
from truckroll.auth import Role
from truckroll.db import session_scope
from truckroll.dispatch import commit
from truckroll.live import EventRefused, apply_event, current_position
from truckroll.settings import get_settings
from truckroll.travel.provider import get_travel_provider

router = APIRouter(tags=["live day"], responses={**AUTH_RESPONSES,
                                                  404: {"model": ErrorOut, "description": "No such request"},
                                                  409: {"model": ErrorOut,
                                                        "description": "The event does not fit the job's state"}})
TechnicianOrDispatcher = Annotated[Principal, Depends(require_roles("technician", "dispatcher"))]
DispatcherOrPortal = Annotated[Principal, Depends(require_roles("dispatcher", "integration"))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FollowUpIn(_Strict):
    parts_needed: dict[str, int] = Field(default_factory=dict)
    estimated_duration_minutes: int | None = Field(None, gt=0, le=24 * 60)
    time_windows: list[WindowIn] = Field(default_factory=list)
    description: str = ""


class StatusIn(_Strict):
    """A technician's report. ``at`` defaults to now; ``eta`` (en route) defaults to the computed arrival."""

    event: Literal["en_route", "arrived", "completed", "late", "cannot_complete", "not_home"]
    at: datetime | None = None
    eta: datetime | None = None
    minutes: float | None = Field(None, gt=0, le=24 * 60)
    note: str = Field("", max_length=2000)
    follow_up: FollowUpIn | None = None


class CancelIn(_Strict):
    at: datetime | None = None
    reason: str = Field("", max_length=2000)
    by: str = Field("portal", max_length=100)


class RescheduleIn(_Strict):
    time_windows: list[WindowIn] = Field(min_length=1, max_length=20)
    at: datetime | None = None
    reason: str = Field("", max_length=2000)
    by: str = Field("portal", max_length=100)


def _run(request_id: int, kind: str, dispatcher: Any, outbox: Outbox, **kwargs: Any) -> dict[str, Any]:
    try:
        outcome = apply_event(request_id, kind, settings=get_settings(), **kwargs)
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except EventRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    for rid in outcome.dispatch:
        dispatcher.submit(rid)
    outbox.deliver(outcome.notification_ids)
    return outcome.as_dict()


@router.post("/service-requests/{request_id}/status", summary="Technician: report a stop's status")
def post_status(request_id: DbId, body: StatusIn, dispatcher: DispatcherDep, outbox: OutboxDep,
                who: TechnicianOrDispatcher) -> dict[str, Any]:
    """en route (with an ETA), arrived, completed, running late (minutes), cannot complete (a follow-up request
    linked to this one is created and dispatched), customer not home (escalated to a dispatcher). Answers
    with the re-timed route, re-promised customers and any escalated work placed in freed time. A technician
    reports only on their own jobs (404 for anyone else's)."""
    if who.role == Role.TECHNICIAN:
        with session_scope() as session:
            mine = commit.existing_assignment(request_id, session=session)
        if mine is None or not who.may_see_technician(mine.technician_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job of yours for request {request_id}")
    follow = None
    if body.follow_up is not None:
        follow = body.follow_up.model_dump(mode="json", exclude_none=True)
        if not follow.get("time_windows"):
            follow.pop("time_windows", None)
    return _run(request_id, body.event, dispatcher, outbox, at=body.at, eta=body.eta, minutes=body.minutes,
                note=body.note, by="technician", follow_up=follow)


@router.post("/service-requests/{request_id}/cancel", summary="Dispatcher or customer: cancel a visit")
def post_cancel(request_id: DbId, body: CancelIn, dispatcher: DispatcherDep, outbox: OutboxDep,
                _who: DispatcherOrPortal) -> dict[str, Any]:
    return _run(request_id, "cancel", dispatcher, outbox, at=body.at, note=body.reason, by=body.by)


@router.post("/service-requests/{request_id}/reschedule", summary="Dispatcher or customer: move a visit")
def post_reschedule(request_id: DbId, body: RescheduleIn, dispatcher: DispatcherDep, outbox: OutboxDep,
                    _who: DispatcherOrPortal) -> dict[str, Any]:
    """The visit leaves its route and the request is dispatched again in the new windows."""
    from models import TimeWindow

    windows = [TimeWindow(w.start, w.end) for w in body.time_windows]
    return _run(request_id, "reschedule", dispatcher, outbox, at=body.at, note=body.reason, by=body.by,
                time_windows=windows)


@router.get("/technicians/{technician_id}/live", summary="Where a technician is in their day")
def technician_live(technician_id: DbId, session: SessionDep, who: TechnicianOrDispatcher,
                    day: Annotated[date, Query(alias="date", description="YYYY-MM-DD")]) -> list[dict[str, Any]]:
    """Per shift of the day: the stop under way or last done, and when the technician is free. A technician
    sees only their own day."""
    if not who.may_see_technician(technician_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a technician sees only their own day")
    check_day(day)
    try:
        store.get_technician(technician_id, session=session)
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    settings = get_settings()
    start, end = store.day_bounds(day, ZoneInfo(settings.company_timezone))
    days = [d for d in store.technician_days(session=session, start=start, end=end, tz=settings.company_timezone,
                                             live=get_travel_provider(settings), technician_ids=[technician_id])
            if start <= d.shift_start < end]
    return [current_position(d, session=session) for d in days]
