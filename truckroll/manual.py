"""A dispatcher resolves an escalation by naming the technician (and optionally the start time).

The assignment goes through the same steps as an automatic one: the engine evaluates that technician's
route (qualification, cheapest feasible insertion), ``dispatching.commit_assignment`` writes it under the
technician's write lock and queues the customer, technician and dispatch notifications, and the confirmation
is written. Only the utilisation target is waived: the dispatcher decided to go over it.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from engine.dispatch import choose, evaluate_candidates
from engine.insertion import promised_window
from models import Escalation, JobRequirements, RequestStatus, TimeWindow
from truckroll import dispatching, store
from truckroll.db import session_scope
from truckroll.dispatching import CommittedAssignment
from truckroll.settings import get_settings
from truckroll.travel import get_travel_provider

log = logging.getLogger(__name__)


class EscalationClosed(RuntimeError):
    """The escalation was already resolved (or its request is assigned, cancelled or completed)."""


class ManualAssignmentRejected(RuntimeError):
    """The named technician cannot take the job; ``reasons`` say why, as a dispatcher reads them."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


@dataclasses.dataclass
class Resolution:
    escalation_id: int
    assignment: CommittedAssignment
    confirmation_id: int


def _open_escalation(escalation_id: int, *, session: Session) -> Escalation:
    esc = session.get(Escalation, escalation_id)
    if esc is None:
        raise store.NotFound(f"no escalation {escalation_id}")
    if esc.resolved_at is not None:
        raise EscalationClosed(f"escalation {escalation_id} was resolved by {esc.resolved_by} at "
                               f"{esc.resolved_at.isoformat()}")
    return esc


def _job_at(job: JobRequirements, start: datetime, width_minutes: int) -> tuple[JobRequirements, TimeWindow]:
    """The job pinned to ``start`` and the window to promise the customer around it.

    The promised window is taken inside the customer's own window when ``start`` falls in one; otherwise (the
    dispatcher agreed another time with the customer) it starts at ``start``.
    """
    if start.tzinfo is None:
        raise ValueError("start must include a timezone offset")
    pinned = dataclasses.replace(job, windows=[TimeWindow(start, start + timedelta(seconds=1))])
    rules = get_settings().dispatch
    customer = next((w for w in job.windows if w.contains(start)),
                    TimeWindow(start, start + timedelta(minutes=width_minutes)))
    return pinned, promised_window(start, customer, width_minutes, rules.arrival_window_rounding_minutes)


def resolve_escalation(escalation_id: int, *, technician_id: int, resolved_by: str, note: str = "",
                       start: datetime | None = None) -> Resolution:
    """Assign the escalated request to ``technician_id`` and close the escalation.

    Raises
    ------
    store.NotFound
        No such escalation or technician.
    EscalationClosed
        Already resolved, or the request is no longer waiting.
    ManualAssignmentRejected
        The technician is not qualified, not on shift, or has no room (at ``start`` when given).
    """
    settings = get_settings()
    rules = settings.dispatch.model_copy(update={"utilisation_target": 1.0, "count_new_job_in_utilisation": False})
    travel = get_travel_provider()
    with session_scope() as session:
        esc = _open_escalation(escalation_id, session=session)
        request = store.get_request(esc.request_id, session=session)
        if request.status != RequestStatus.ESCALATED:
            raise EscalationClosed(f"request {request.id} is {request.status}, not waiting for a dispatcher")
        store.get_technician(technician_id, session=session)
        job = store.requirements_of(esc.request_id, session=session)
    window = None
    if start is not None:
        start = start.astimezone(UTC)
        job, window = _job_at(job, start, rules.arrival_window_minutes)
    lo, hi = store.job_horizon(job)
    with session_scope() as session:
        days = store.technician_days(session=session, start=lo, end=hi, technician_ids=[technician_id])
    candidates = evaluate_candidates(job, days, travel, rules)
    if not candidates:
        when = f"at {start.isoformat()}" if start else "in the customer's windows"
        raise ManualAssignmentRejected([f"technician {technician_id} has no shift {when}"])
    if not candidates[0].eligible:
        raise ManualAssignmentRejected(candidates[0].reasons)
    decision = choose(job, candidates, rules)
    try:
        with session_scope() as session:
            # A second resolve racing this one waits on the technician's lock and finds the assignment.
            esc = _open_escalation(escalation_id, session=session)
            result = dispatching.commit_assignment(decision, job, session=session, travel=travel, rules=rules,
                                                   tz=settings.company_timezone, arrival_window=window)
            conf = dispatching.write_confirmation(result, session=session)
            esc.resolved_at = datetime.now(UTC)
            esc.resolved_by = resolved_by
            esc.resolution = (f"assigned to technician {technician_id} ({result.technician_name})"
                              + (f": {note}" if note else ""))
            session.add(esc)
            assert esc.id is not None and conf.id is not None
            resolution = Resolution(esc.id, result, conf.id)
    except dispatching.ScheduleConflict as exc:
        raise ManualAssignmentRejected([str(exc)]) from None
    log.info("escalation %s resolved by %s: request %s -> technician %s", escalation_id, resolved_by,
             result.request_id, technician_id)
    _emit_resolved_event(resolution, resolved_by)
    return resolution


def _emit_resolved_event(resolution: Resolution, resolved_by: str) -> None:
    from truckroll.flowruns import prefect_api_configured

    if not prefect_api_configured():
        return
    try:
        from prefect.events import emit_event

        from truckroll.db import session_scope
        from truckroll.requeue import last_run_id

        with session_scope() as session:
            run_id = last_run_id(resolution.assignment.request_id, session=session)
        # Related to the dispatch run that escalated it: the event shows on that run's page in the UI.
        related = [{"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.role": "flow-run"}
                   ] if run_id else None
        emit_event(event="truckroll.escalation.resolved", related=related,
                   resource={"prefect.resource.id": f"truckroll.request.{resolution.assignment.request_id}"},
                   payload={"escalation_id": resolution.escalation_id, "resolved_by": resolved_by,
                            "technician_id": resolution.assignment.technician_id})
    except Exception:  # noqa: BLE001 - the assignment is written; an event that cannot be sent must not undo it
        log.debug("could not emit the resolution event", exc_info=True)
