"""Escalations: the requests waiting for a dispatcher, and the dispatcher's manual assignment."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status

from flows.runs import emit_resolved_event
from models import Escalation, ServiceRequest
from service.auth import AUTH_RESPONSES, Principal, require_roles
from service.deps import OutboxDep, SessionDep
from service.errors import ErrorOut, manual_assignment_refused
from service.limits import DbId
from service.schemas import EscalationOut, ResolveIn, ResolveOut, WindowOut
from truckroll import auth, store
from truckroll.db import session_scope
from truckroll.dispatch import manual
from truckroll.settings import get_settings

router = APIRouter(prefix="/escalations", tags=["escalations"], responses=AUTH_RESPONSES,
                   dependencies=[Depends(require_roles("dispatcher"))])


def escalation_out(esc: Escalation, request: ServiceRequest) -> EscalationOut:
    assert esc.id is not None and request.id is not None
    return EscalationOut(
        escalation_id=esc.id, request_id=request.id, reason=esc.reason, details=esc.details,
        created_at=esc.created_at, resolved_at=esc.resolved_at, resolved_by=esc.resolved_by,
        resolution=esc.resolution, customer_name=request.customer_name, address=request.address,
        job_type=request.job_type, priority=request.priority,
        time_windows=[WindowOut(start=w.start, end=w.end) for w in store.request_windows(request)])


@router.get("", response_model=list[EscalationOut], summary="Escalations (open ones by default)")
def list_escalations(
    session: SessionDep,
    state: Annotated[Literal["open", "resolved", "all"], Query(description="Which escalations")] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[EscalationOut]:
    """Most urgent first (priority 1 = emergency), then oldest."""
    return [escalation_out(e, r) for e, r in store.escalations(state, limit, session=session)]


@router.post(
    "/{escalation_id}/resolve", response_model=ResolveOut, summary="Assign the request manually",
    responses={404: {"model": ErrorOut, "description": "No such escalation or technician"},
               409: {"model": ErrorOut,
                     "description": "Already resolved, or the technician cannot take it (reasons given)"}},
)
def resolve_escalation(escalation_id: DbId, body: ResolveIn, outbox: OutboxDep,
                       who: Annotated[Principal, Depends(require_roles("dispatcher"))]) -> ResolveOut:
    """Assign the escalated request to the named technician (at ``start`` when given, else the best time in
    their route). The schedule update, notifications and confirmation are those of an automatic assignment;
    the utilisation target is waived. ``overrides`` (territory, skill_level; expired_certification only when
    the setting allows it) with an ``override_reason`` override those rules too; both are recorded. A 409 lists
    in ``overridable`` the rules behind the refusal that could be overridden."""
    resolved_by = body.resolved_by or who.name
    try:
        res = manual.resolve_escalation(escalation_id, technician_id=body.technician_id, start=body.start,
                                        resolved_by=resolved_by, note=body.note, overrides=body.overrides,
                                        override_reason=body.override_reason,
                                        on_resolved=emit_resolved_event, settings=get_settings())
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except manual.EscalationClosed as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except manual.ManualAssignmentRejected as exc:
        raise manual_assignment_refused(body.technician_id, exc.reasons, exc.overridable) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    a = res.assignment
    outbox.deliver(a.notification_ids)
    with session_scope() as session:
        # Resolving overrides the dispatch rules' utilisation target for this job.
        auth.audit(session, actor=who.name, actor_role=who.role, action="escalation.resolved",
                   target=f"escalation {escalation_id}",
                   details={"request_id": a.request_id, "technician_id": a.technician_id,
                            "start": a.start.isoformat(), "resolved_by": resolved_by, "note": body.note,
                            "overridden": ["utilisation target"]})
    return ResolveOut(escalation_id=res.escalation_id, request_id=a.request_id, technician_id=a.technician_id,
                      technician_name=a.technician_name, scheduled_start=a.start, scheduled_end=a.end,
                      arrival_window=WindowOut(start=a.window_start, end=a.window_end),
                      confirmation_id=res.confirmation_id, other_stops_moved=len(a.moved),
                      notification_ids=a.notification_ids)
