"""The console's JSON views (dispatchers and admins): the board, a request's timeline, the ranking of the
candidates for an escalation, and reassigning a job. The console also calls the existing operations directly:
``POST /escalations/{id}/resolve``, ``POST /reoptimize`` (dry run first), ``POST /auth/token``."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from engine.dispatch.eligibility import OVERRIDABLE_RULES
from flows.runs import request_flow_runs
from models.schemas import MAX_ID
from service.auth import AUTH_RESPONSES, Principal, require_roles
from service.deps import OutboxDep, SessionDep
from service.errors import ErrorOut, manual_assignment_refused
from service.limits import DbId, check_day
from service.routers.escalations import list_escalations
from service.schemas import EscalationOut
from truckroll import auth, store
from truckroll.db import session_scope
from truckroll.reports import console

router = APIRouter(prefix="/console/api", tags=["console"], responses=AUTH_RESPONSES,
                   dependencies=[Depends(require_roles("dispatcher"))])


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class BoardJob(_Out):
    request_id: int
    customer_name: str
    address: str
    job_type: str
    start: dt.datetime
    end: dt.datetime
    window_start: dt.datetime
    window_end: dt.datetime
    travel_minutes: float
    lat: float
    lon: float
    state: str
    eta: dt.datetime | None = None
    late_minutes: float = 0.0


class BoardRow(_Out):
    technician_id: int
    name: str
    territory: str | None
    timezone: str
    shift_start: dt.datetime
    shift_end: dt.datetime
    home: dict[str, float]
    job_minutes: float
    travel_minutes: float
    idle_minutes: float
    return_minutes: float
    utilisation: float
    utilisation_target: float
    over_target: bool
    live_state: str
    position: dict[str, Any]
    jobs: list[BoardJob]


class BoardTerritory(_Out):
    id: int
    name: str
    timezone: str
    level: int
    geometry: dict[str, Any]


class WaitingRequest(_Out):
    request_id: int
    customer_name: str
    address: str
    job_type: str
    priority: int
    status: str
    received_at: dt.datetime


class BoardOut(BaseModel):
    date: dt.date
    timezone: str = Field(description="The time zone the board's times are shown in (the territory's, else the "
                                      "company's)")
    territory_id: int | None
    rows: list[BoardRow]
    metrics: dict[str, float]
    territories: list[BoardTerritory]
    waiting: list[WaitingRequest]
    escalations: list[EscalationOut]


class TimelineEvent(_Out):
    at: dt.datetime | None
    kind: str
    title: str
    detail: str


class FlowRunLink(BaseModel):
    id: str
    name: str | None
    state: str | None
    url: str | None


class TimelineOut(_Out):
    request_id: int
    status: str
    customer_name: str
    address: str
    job_type: str
    priority: int
    technician_id: int | None
    technician_name: str | None
    events: list[TimelineEvent]
    flow_runs: list[FlowRunLink]


class CandidateOut(_Out):
    technician_id: int
    technician: str
    eligible: bool
    chosen: bool
    score: float | None
    reasons: list[str]


class RankingOut(BaseModel):
    escalation_id: int
    request_id: int
    overridable_rules: list[str] = Field(description="The rules a dispatcher may override with a reason")
    candidates: list[CandidateOut]


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    technician_id: int = Field(ge=1, le=MAX_ID)
    overrides: list[str] = Field(default_factory=list, max_length=len(OVERRIDABLE_RULES),
                                 description=f"Rules to override, of {', '.join(OVERRIDABLE_RULES)}")
    override_reason: str = Field("", max_length=2000)
    note: str = Field("", max_length=2000)


class ReassignOut(BaseModel):
    request_id: int
    from_technician_id: int
    technician_id: int
    technician_name: str
    scheduled_start: dt.datetime
    scheduled_end: dt.datetime
    arrival_window_start: dt.datetime
    arrival_window_end: dt.datetime
    notification_ids: list[int]


def _travel() -> Any:
    from truckroll.settings import get_settings
    from truckroll.travel.provider import get_travel_provider

    return get_travel_provider(get_settings())


# Polls (requests with If-None-Match) of one process share the board of a day for a moment: however many
# dispatchers watch it, it is built at most once per TRUCKROLL_CONSOLE_POLL_CACHE_SECONDS. A request without
# If-None-Match (the first load, the refresh after an action) always builds it afresh.
_board_cache: dict[tuple[str, dt.date, int | None], tuple[float, str, str]] = {}
_board_lock = threading.Lock()


def _board_body(day: dt.date, territory_id: int | None, session: Any) -> tuple[str, str]:
    try:
        from truckroll.settings import get_settings

        data = console.board(day, session=session, travel=_travel(), settings=get_settings(),
                             territory_id=territory_id)
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    data["escalations"] = list_escalations(session, state="open", limit=200)
    body = BoardOut.model_validate(data).model_dump_json()
    return body, '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


@router.get("/board", response_model=BoardOut, summary="The day's board (ETag: send If-None-Match to poll)",
            responses={304: {"description": "Unchanged since the ETag sent in If-None-Match"},
                       404: {"model": ErrorOut, "description": "No such territory"}})
def get_board(
    session: SessionDep,
    day: Annotated[dt.date, Query(alias="date", description="YYYY-MM-DD, company time")],
    territory_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this territory's "
                                                                           "technicians, in its time zone")] = None,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """One row per technician shift of the day (jobs, travel, idle time, promised windows, live state,
    utilisation against the target), the territories, the day's metrics, the requests still waiting for their
    dispatch and the open escalations. Poll it with ``If-None-Match``: 304 while nothing changed (polls may
    be answered from a board built up to ``TRUCKROLL_CONSOLE_POLL_CACHE_SECONDS`` ago)."""
    from truckroll.settings import get_settings

    check_day(day)
    settings = get_settings()
    key = (settings.database_url, day, territory_id)
    ttl = settings.console_poll_cache_seconds
    cached = _board_cache.get(key) if if_none_match is not None and ttl > 0 else None
    if cached is not None and time.monotonic() - cached[0] < ttl:
        body, etag = cached[1], cached[2]
    else:
        body, etag = _board_body(day, territory_id, session)
        if ttl > 0:
            with _board_lock:
                if len(_board_cache) > 64:
                    _board_cache.clear()
                _board_cache[key] = (time.monotonic(), body, etag)
    headers = {"ETag": etag, "Cache-Control": "no-cache, private"}
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)


@router.get("/requests/{request_id}/timeline", response_model=TimelineOut, summary="A request's timeline",
            responses={404: {"model": ErrorOut, "description": "No such request"}})
def get_timeline(request_id: DbId, session: SessionDep) -> dict[str, Any]:
    """Received, decisions, escalations and resolutions, notifications queued and sent, status events, oldest
    first; and the request's flow runs with their links into the Prefect UI."""
    try:
        return console.timeline(request_id, session=session,
                                flow_runs=lambda rid: request_flow_runs(rid, session=session))
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.get("/escalations/{escalation_id}/ranking", response_model=RankingOut,
            summary="Every technician for an escalated request, ranked, with why (not)",
            responses={404: {"model": ErrorOut, "description": "No such escalation"}})
def get_ranking(escalation_id: DbId, session: SessionDep) -> RankingOut:
    """The one decision, made now among every technician: who would get it, who could (by score), who cannot
    and why. Resolve with ``POST /escalations/{id}/resolve``."""
    from truckroll.dispatch.whynot import ranking
    from truckroll.settings import get_settings

    try:
        esc = store.get_escalation(escalation_id, session=session)
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    rules = get_settings().dispatch
    try:
        rows = ranking(esc.request_id, session=session, travel=_travel(), rules=rules,
                       tz=get_settings().company_timezone)
    except (store.NotFound, ValueError) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    overridable = [r for r in OVERRIDABLE_RULES if r != "utilisation"
                   and (r != "expired_certification" or rules.allow_expired_certification_override)]
    return RankingOut(escalation_id=escalation_id, request_id=esc.request_id, overridable_rules=overridable,
                      candidates=[CandidateOut.model_validate(r) for r in rows])


@router.post("/requests/{request_id}/reassign", response_model=ReassignOut,
             summary="Move an assigned job to another technician",
             responses={404: {"model": ErrorOut, "description": "No such request or technician"},
                        409: {"model": ErrorOut, "description": "The job cannot move, or the technician cannot "
                                                                "take it (reasons and overridable rules given)"}})
def reassign(request_id: DbId, body: ReassignIn, outbox: OutboxDep,
             who: Annotated[Principal, Depends(require_roles("dispatcher"))]) -> ReassignOut:
    """Through the same decision and commit as every assignment, among the named technician alone (the
    utilisation target waived). A 409 lists the reasons and, in ``overridable``, the rules that ``overrides``
    with an ``override_reason`` would lift. Customer, technicians and dispatch are notified as for any
    assignment; nothing changes when it is refused."""
    from truckroll.dispatch import manual
    from truckroll.settings import get_settings

    try:
        res = console.reassign(request_id, technician_id=body.technician_id, by=who.name, settings=get_settings(),
                               overrides=body.overrides, override_reason=body.override_reason)
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except console.ReassignRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except manual.ManualAssignmentRejected as exc:
        raise manual_assignment_refused(body.technician_id, exc.reasons, exc.overridable) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    outbox.deliver(res.notification_ids)
    with session_scope() as session:
        auth.audit(session, actor=who.name, actor_role=who.role, action="request.reassigned",
                   target=f"request {request_id}",
                   details={"from_technician_id": res.from_technician_id, "technician_id": res.to_technician_id,
                            "overrides": sorted(body.overrides), "override_reason": body.override_reason,
                            "note": body.note})
    return ReassignOut(request_id=request_id, from_technician_id=res.from_technician_id,
                       technician_id=res.to_technician_id, technician_name=res.technician_name,
                       scheduled_start=res.start, scheduled_end=res.end, arrival_window_start=res.window_start,
                       arrival_window_end=res.window_end, notification_ids=res.notification_ids)
