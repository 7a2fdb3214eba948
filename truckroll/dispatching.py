"""Steps 6 and 7 against the database: commit the assignment in one transaction, queue the notifications,
write the confirmation. The decision itself is the engine's (engine.dispatch)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from engine.config import DispatchSettings
from engine.dispatch import apply_decision, choose, evaluate_candidates
from engine.eligibility import missing_parts
from engine.travel import TravelTimeProvider
from models import (
    Assignment,
    AssignmentStatus,
    Confirmation,
    Decision,
    JobRequirements,
    RequestStatus,
    ServiceRequest,
    StopChange,
    Technician,
    TimeWindow,
)
from truckroll import displacement, notify, store
from truckroll.settings import get_settings

log = logging.getLogger(__name__)


class ScheduleConflict(RuntimeError):
    """The technician's route changed between the decision and the write; decide again."""


@dataclass
class CommittedAssignment:
    request_id: int
    assignment_id: int
    technician_id: int
    technician_name: str
    start: datetime
    end: datetime
    window_start: datetime
    window_end: datetime
    moved: list[StopChange] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)
    route: list[dict[str, Any]] = field(default_factory=list)
    score: dict[str, float] = field(default_factory=dict)
    # Requests an emergency displaced (cancelled, to dispatch again): see truckroll.displacement.
    displaced: list[dict[str, Any]] = field(default_factory=list)
    boundary: str | None = None


def _lock_for_write(session: Session, technician_id: int) -> None:
    """Take the write lock first, before any read: a row lock on PostgreSQL, the database write lock on
    SQLite. Two dispatches for the same technician therefore run one after the other."""
    session.execute(update(Technician).where(col(Technician.id) == technician_id).values(active=Technician.active))


def existing_assignment(request_id: int, *, session: Session) -> Assignment | None:
    return session.exec(select(Assignment).where(
        Assignment.request_id == request_id,
        col(Assignment.status).notin_([AssignmentStatus.CANCELLED]))).first()


def commit_assignment(
    decision: Decision, job: JobRequirements, *, session: Session, travel: TravelTimeProvider,
    rules: DispatchSettings, tz: str, arrival_window: TimeWindow | None = None,
) -> CommittedAssignment:
    """Write the chosen insertion: the new assignment, the later stops it moves, the notifications.

    The chosen technician's route is re-read under the write lock and the insertion re-evaluated on it, so a
    concurrent dispatch can never double-book that technician's time. The request's row is locked next, so
    two runs for one request (a requeue racing a slow run) can never both assign it.
    ``arrival_window`` replaces the computed one (a dispatcher's manual start).

    Raises
    ------
    ScheduleConflict
        When the technician can no longer take the job on the fresh route.
    """
    if decision.chosen is None:
        raise ValueError(f"request {decision.request_id} was escalated; there is nothing to commit")
    tech_id = decision.chosen.technician_id
    _lock_for_write(session, tech_id)
    session.execute(update(ServiceRequest).where(col(ServiceRequest.id) == job.request_id)
                    .values(status=ServiceRequest.status))
    if existing_assignment(job.request_id, session=session) is not None:
        raise ScheduleConflict(f"request {job.request_id} is already assigned")
    start, end = store.job_horizon(job)
    days = store.technician_days(session=session, start=start, end=end, technician_ids=[tech_id])
    fresh = evaluate_candidates(job, days, travel, rules)
    final = choose(job, fresh, rules) if fresh else None
    # An emergency's displacement must be the one decided (the route may have changed since).
    if final is None or final.chosen is None or (
            {s.request_id for s in final.displaced} != {s.request_id for s in decision.displaced}):
        reason = "; ".join(fresh[0].reasons) if fresh else "no shift"
        raise ScheduleConflict(f"technician {tech_id} can no longer take request {job.request_id}: {reason}")
    # Keep the score that chose this technician among all candidates.
    final.chosen.score = decision.chosen.score  # type: ignore[union-attr]
    if arrival_window is not None:
        final.arrival_window = arrival_window
    apply_decision(final, job, travel)
    chosen = final.chosen
    assert chosen is not None and chosen.insertion is not None and chosen.day is not None
    assert final.arrival_window is not None
    ins = chosen.insertion

    request = store.get_request(job.request_id, session=session)
    tech = store.get_technician(tech_id, session=session)
    score = chosen.score.as_dict() if chosen.score else {}
    displaced = displacement.cancel_displaced(final.displaced, technician_id=tech_id,
                                              emergency_request_id=job.request_id, session=session)
    # The assignment also records which boundary placed the job and whom an emergency displaced.
    details: dict[str, Any] = dict(score)
    if final.boundary:
        details["boundary"] = final.boundary
    if displaced:
        details["displaced"] = [d["request_id"] for d in displaced]
    assignment = Assignment(
        request_id=job.request_id, technician_id=tech_id, scheduled_start=ins.start, scheduled_end=ins.end,
        window_start=final.arrival_window.start, window_end=final.arrival_window.end,
        travel_minutes=ins.travel_from_previous_minutes, detour_minutes=ins.parts_detour_minutes,
        status=AssignmentStatus.CONFIRMED, score=details)
    session.add(assignment)
    request.status = RequestStatus.ASSIGNED
    session.add(request)

    # Later stops: new times, the leg from the new job into the next stop, re-promised windows.
    by_request = {s.request_id: s for s in chosen.day.stops}
    ids = [c.request_id for c in ins.later_stops]
    nxt = chosen.day.stops[ins.position + 1] if ins.position + 1 < len(chosen.day.stops) else None
    if nxt is not None:
        ids.append(nxt.request_id)
    if displaced:
        # The stop after each displaced one now comes from somewhere else: rewrite the whole route's legs.
        ids = [s.request_id for s in chosen.day.stops if s.request_id != job.request_id]
    rows = {a.request_id: a for a in session.exec(select(Assignment).where(
        col(Assignment.request_id).in_(ids), Assignment.technician_id == tech_id,
        col(Assignment.status).notin_([AssignmentStatus.CANCELLED]))).all()}
    for rid, row in rows.items():
        stop = by_request[rid]
        row.scheduled_start, row.scheduled_end = stop.start, stop.end
        row.window_start, row.window_end = stop.window.start, stop.window.end
        row.travel_minutes = stop.travel_minutes
        session.add(row)
    session.flush()
    assert assignment.id is not None

    route = [{"request_id": s.request_id, "start": s.start.isoformat(), "end": s.end.isoformat(),
              "window_start": s.window.start.isoformat(), "window_end": s.window.end.isoformat()}
             for s in chosen.day.stops]
    result = CommittedAssignment(
        request_id=job.request_id, assignment_id=assignment.id, technician_id=tech_id, technician_name=tech.name,
        start=ins.start, end=ins.end, window_start=final.arrival_window.start,
        window_end=final.arrival_window.end, moved=list(ins.later_stops), route=route, score=score,
        displaced=displaced, boundary=final.boundary)
    # Customers read times in their territory's time zone.
    job_tz = (job.rules.timezone if job.rules else None) or tz
    result.notification_ids = queue_assignment_notifications(
        result, job, request, tech, session=session, tz=job_tz, decision=decision, rules=rules)
    return result


def queue_assignment_notifications(
    result: CommittedAssignment, job: JobRequirements, request: ServiceRequest, tech: Technician, *,
    session: Session, tz: str, decision: Decision, rules: DispatchSettings,
) -> list[int]:
    """Customer (arrival window), technician (job card), dispatch (summary), and every customer whose
    promised window moved. Keys make each message unique, so a retried run queues nothing twice."""
    settings = get_settings()
    rid = result.request_id
    base = dict(request_id=rid, tz=tz, company_name=settings.company_name, customer_name=request.customer_name,
                address=request.address, job_type=request.job_type, description=request.description,
                technician_name=tech.name, window_start=result.window_start, window_end=result.window_end,
                start=result.start, end=result.end, priority=request.priority)
    notes = []
    contact = notify.customer_contact(request)
    if contact is not None:
        notes.append(notify.queue(
            session=session, dedupe_key=f"assign:{result.assignment_id}:customer", template="customer_arrival_window",
            recipient=contact[0], recipient_kind="customer", channel=contact[1], request_id=rid, context=base))
    day = decision.chosen.day if decision.chosen else None
    short = missing_parts(day, job) if day else {}
    notes.append(notify.queue(
        session=session, dedupe_key=f"assign:{result.assignment_id}:technician", template="technician_job_card",
        recipient=tech.email or tech.phone or f"technician-{tech.id}", recipient_kind="technician", request_id=rid,
        context=base | dict(lat=request.lat, lon=request.lon, customer_phone=request.customer_phone,
                            parts=job.parts_needed, missing_parts=short, notes=request.notes,
                            route=[{"request_id": r["request_id"], "start": datetime.fromisoformat(r["start"]),
                                    "end": datetime.fromisoformat(r["end"])} for r in result.route])))
    score = result.score
    notes.append(notify.queue(
        session=session, dedupe_key=f"assign:{result.assignment_id}:dispatch", template="dispatch_summary",
        recipient=settings.dispatch_email, recipient_kind="dispatch", request_id=rid,
        context=base | dict(channel=request.channel, added_travel_minutes=score.get("added_travel_minutes", 0.0),
                            utilisation_before=score.get("utilisation_before", 0.0),
                            utilisation_after=score.get("utilisation_after", 0.0),
                            score_total=score.get("total", 0.0), candidates=len(decision.candidates),
                            eligible=sum(c.eligible for c in decision.candidates), moved=result.moved)))
    for change in result.moved:
        if not change.breaks_promise:
            continue
        other = store.get_request(change.request_id, session=session)
        other_contact = notify.customer_contact(other)
        if other_contact is None:
            continue
        shift = change.new_start - change.old_start
        notes.append(notify.queue(
            session=session, dedupe_key=f"move:{change.request_id}:{change.new_start.isoformat()}",
            template="customer_reschedule", recipient=other_contact[0], channel=other_contact[1],
            recipient_kind="customer", request_id=change.request_id,
            context=dict(request_id=change.request_id, tz=tz, company_name=settings.company_name,
                         customer_name=other.customer_name, technician_name=tech.name,
                         old_window_start=change.window.start, old_window_end=change.window.end,
                         window_start=change.window.start + shift, window_end=change.window.end + shift,
                         reason=f"an urgent job (#{rid}) was added before yours")))
    return [n.id for n in notes if n.id is not None]


def write_confirmation(result: CommittedAssignment, *, session: Session) -> Confirmation:
    """Step 7: the confirmation record (one per request)."""
    existing = session.exec(select(Confirmation).where(Confirmation.request_id == result.request_id)).first()
    if existing is not None:
        return existing
    conf = Confirmation(request_id=result.request_id, assignment_id=result.assignment_id,
                        technician_id=result.technician_id, window_start=result.window_start,
                        window_end=result.window_end, estimated_completion=result.end, route=result.route)
    session.add(conf)
    session.flush()
    return conf
