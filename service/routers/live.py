"""The live day over HTTP: the technician's app reports status (technician role), dispatchers and customer
portals cancel and reschedule. Each event re-times the technician's route (``truckroll.live``).

The routes carry no authentication of their own: the technician and dispatcher roles are wired in front."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from models.schemas import WindowIn
from service.deps import DispatcherDep, SessionDep
from truckroll import store
from truckroll.live import EventRefused, apply_event, current_position
from truckroll.settings import get_settings

router = APIRouter(tags=["live day"])


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


def _run(request_id: int, kind: str, dispatcher: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        outcome = apply_event(request_id, kind, **kwargs)
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except EventRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    for rid in outcome.dispatch:
        dispatcher.submit(rid)
    return outcome.as_dict()


@router.post("/service-requests/{request_id}/status", summary="Technician: report a stop's status")
def post_status(request_id: int, body: StatusIn, dispatcher: DispatcherDep) -> dict[str, Any]:
    """en route (with an ETA), arrived, completed, running late (minutes), cannot complete (a follow-up request
    linked to this one is created and dispatched), customer not home (escalated to a dispatcher). Answers
    with the re-timed route, re-promised customers and any escalated work placed in freed time."""
    follow = None
    if body.follow_up is not None:
        follow = body.follow_up.model_dump(mode="json", exclude_none=True)
        if not follow.get("time_windows"):
            follow.pop("time_windows", None)
    return _run(request_id, body.event, dispatcher, at=body.at, eta=body.eta, minutes=body.minutes, note=body.note,
                by="technician", follow_up=follow)


@router.post("/service-requests/{request_id}/cancel", summary="Dispatcher or customer: cancel a visit")
def post_cancel(request_id: int, body: CancelIn, dispatcher: DispatcherDep) -> dict[str, Any]:
    return _run(request_id, "cancel", dispatcher, at=body.at, note=body.reason, by=body.by)


@router.post("/service-requests/{request_id}/reschedule", summary="Dispatcher or customer: move a visit")
def post_reschedule(request_id: int, body: RescheduleIn, dispatcher: DispatcherDep) -> dict[str, Any]:
    """The visit leaves its route and the request is dispatched again in the new windows."""
    from models import TimeWindow

    windows = [TimeWindow(w.start, w.end) for w in body.time_windows]
    return _run(request_id, "reschedule", dispatcher, at=body.at, note=body.reason, by=body.by,
                time_windows=windows)


@router.get("/technicians/{technician_id}/live", summary="Where a technician is in their day")
def technician_live(technician_id: int, session: SessionDep,
                    day: Annotated[date, Query(alias="date", description="YYYY-MM-DD")]) -> list[dict[str, Any]]:
    """Per shift of the day: the stop under way or last done, and when the technician is free."""
    try:
        store.get_technician(technician_id, session=session)
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    start, end = store.day_bounds(day, ZoneInfo(get_settings().company_timezone))
    days = [d for d in store.technician_days(session=session, start=start, end=end, technician_ids=[technician_id])
            if start <= d.shift_start < end]
    return [current_position(d, session=session) for d in days]
