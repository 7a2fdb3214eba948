"""The webhook: accept a signed service request, persist it once, start its dispatch; and its status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Response, status

from models.schemas import RequestValidationError, ServiceRequestCreate
from models.security_tables import Role
from service.auth import AUTH_RESPONSES, Principal, require_roles
from service.deps import DispatcherDep, SessionDep
from service.errors import ErrorOut
from service.limits import DbId
from service.routers.escalations import escalation_out
from service.schemas import AcceptedOut, AssignmentOut, RequestStatusOut, WindowOut
from service.security import MAX_BODY_BYTES, SIGNATURE_HEADER, SignedJSON
from truckroll import store
from truckroll.dispatch import commit
from truckroll.dispatch.intake import IdempotencyKeyReused, accept_request
from truckroll.settings import get_settings

router = APIRouter(prefix="/service-requests", tags=["service requests"])


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` inlined, so the docs page can show the body."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)  # type: ignore[no-any-return]


# The body is read raw (the signature covers its bytes), so its schema is declared for the docs by hand.
_BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": _inline_refs(ServiceRequestCreate.model_json_schema())}}}}


@router.post(
    "", status_code=status.HTTP_202_ACCEPTED, response_model=AcceptedOut, openapi_extra=_BODY_DOC,
    summary="Accept a service request (signed webhook)",
    responses={400: {"model": ErrorOut, "description": "Malformed JSON"},
               401: {"model": ErrorOut,
                     "description": f"Missing, wrong, stale or replayed {SIGNATURE_HEADER}"},
               413: {"model": ErrorOut, "description": f"Body over {MAX_BODY_BYTES} bytes"},
               415: {"model": ErrorOut, "description": "Content-Type is not application/json"},
               422: {"model": ErrorOut, "description": "Failing fields, each named, or an Idempotency-Key used "
                                                       "before with another body; nothing was written"}},
)
def create_service_request(
    payload: SignedJSON, response: Response, dispatcher: DispatcherDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)] = None,
) -> AcceptedOut:
    """Validate and persist the request, then start its dispatch flow run in the background.

    Sign every delivery afresh: ``X-Truckroll-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw
    body>" with the shared secret>``. A signature more than the tolerance (5 minutes) from now, or seen before,
    is refused (401). Send the same ``Idempotency-Key`` and body when retrying a delivery: the answer names the
    first request and nothing new is created; the same key with another body is refused (422).
    """
    try:
        accepted = accept_request(payload, idempotency_key=idempotency_key,
                                  horizon_days=get_settings().planning_horizon_days)
    except RequestValidationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[e.model_dump() for e in exc.errors]) from None
    except IdempotencyKeyReused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"field": "Idempotency-Key", "message": str(exc)}]) from None
    if accepted.created:
        dispatcher.submit(accepted.request_id)
    else:
        response.headers["Idempotent-Replayed"] = "true"
    url = f"/service-requests/{accepted.request_id}"
    response.headers["Location"] = url
    return AcceptedOut(request_id=accepted.request_id, status="received", status_url=url, created=accepted.created)


@router.get("/{request_id}", response_model=RequestStatusOut, summary="Status, assignment and arrival window",
            responses={**AUTH_RESPONSES, 404: {"model": ErrorOut, "description": "No such request (or, for a "
                                                                                 "technician, not their job)"}})
def get_service_request(request_id: DbId, session: SessionDep,
                        who: Annotated[Principal, Depends(require_roles(Role.DISPATCHER, Role.TECHNICIAN))]
                        ) -> RequestStatusOut:
    """Where the request stands: received, analysed, assigned (technician, start, arrival window), escalated.
    A technician sees only the jobs assigned to them."""
    try:
        row = store.get_request(request_id, session=session)
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    a = commit.existing_assignment(request_id, session=session)
    if who.role == Role.TECHNICIAN and (a is None or not who.may_see_technician(a.technician_id)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no service request {request_id} among your jobs")
    out = RequestStatusOut(request_id=request_id, status=row.status, job_type=row.job_type, priority=row.priority,
                           created_at=row.created_at)
    if a is not None:
        assert a.id is not None
        tech = store.get_technician(a.technician_id, session=session)
        out.assignment = AssignmentOut(assignment_id=a.id, technician_id=a.technician_id, technician_name=tech.name,
                                       scheduled_start=a.scheduled_start, scheduled_end=a.scheduled_end,
                                       status=a.status)
        out.arrival_window = WindowOut(start=a.window_start, end=a.window_end)
    esc = store.latest_escalation(request_id, session=session)
    if esc is not None:
        out.escalation = escalation_out(esc, row)
    return out
