"""Steps 6 and 7 against the database: commit the assignment in one transaction (with the decision's record),
queue the notifications, write the confirmation; and the one way to escalate. The decision itself is
``truckroll.dispatch.decision``'s."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import Session, col, select

from engine.dispatch.decision import apply_decision
from engine.dispatch.eligibility import missing_parts
from engine.dispatch.repair import relink
from engine.travel import TravelTimeProvider
from models import (
    Assignment,
    AssignmentDecision,
    AssignmentStatus,
    Candidate,
    Confirmation,
    Decision,
    JobRequirements,
    RequestStatus,
    ServiceRequest,
    Stop,
    StopChange,
    Technician,
    TimeWindow,
)
from truckroll import store
from truckroll.dispatch import decision as one_decision
from truckroll.notifications import messages
from truckroll.settings import Settings

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
    # Requests an emergency displaced (cancelled, to dispatch again): see truckroll.dispatch.displacement.
    displaced: list[dict[str, Any]] = field(default_factory=list)
    boundary: str | None = None
    relaxation: str | None = None


def _lock_for_write(session: Session, technician_id: int) -> None:
    """Take the write lock first, before any read: a row lock on PostgreSQL, the database write lock on
    SQLite. Two dispatches for the same technician therefore run one after the other."""
    session.execute(update(Technician).where(col(Technician.id) == technician_id).values(active=Technician.active))


def existing_assignment(request_id: int, *, session: Session) -> Assignment | None:
    return session.exec(select(Assignment).where(
        Assignment.request_id == request_id,
        col(Assignment.status).notin_([AssignmentStatus.CANCELLED]))).first()


def cancel_displaced(stops: list[Stop], *, technician_id: int, emergency_request_id: int,
                     session: Session) -> list[dict[str, Any]]:
    """Cancel the displaced stops' assignments and put their requests back to "received" (inside the
    emergency's transaction). Returns what the customers were promised, for the reschedule message; the
    requests are dispatched again by ``truckroll.dispatch.displacement.redispatch_displaced``."""
    out = []
    for s in stops:
        row = session.exec(select(Assignment).where(
            Assignment.request_id == s.request_id, Assignment.technician_id == technician_id,
            col(Assignment.status).notin_([AssignmentStatus.CANCELLED]))).first()
        if row is None:
            continue
        row.status = AssignmentStatus.CANCELLED
        session.add(row)
        request = store.get_request(s.request_id, session=session)
        request.status = RequestStatus.RECEIVED
        request.notes = (request.notes + "\n" if request.notes else "") + \
            f"displaced by emergency #{emergency_request_id}"
        session.add(request)
        # The confirmation described the cancelled assignment; the next dispatch writes a new one.
        for conf in session.exec(select(Confirmation).where(Confirmation.request_id == s.request_id)).all():
            session.delete(conf)
        out.append({"request_id": s.request_id, "assignment_id": row.id, "technician_id": technician_id,
                    "window_start": row.window_start.isoformat(), "window_end": row.window_end.isoformat(),
                    "emergency_request_id": emergency_request_id})
    session.flush()
    return out


def escalate(job: JobRequirements, reason: str, candidates: list[Candidate], *, session: Session,
             dispatch_email: str, console_url: str, notes: list[int] | None = None) -> int:
    """The one way a request goes to a dispatcher: an open Escalation with every technician's reasons, the
    request marked escalated, and the alert to dispatch. Returns the escalation's id (the caller emits the
    ``truckroll.request.escalated`` event once the transaction is committed); ``notes`` (when given) receives
    the alert's id, for the caller to deliver."""
    return escalate_request(job.request_id, reason, candidates, session=session, dispatch_email=dispatch_email,
                            console_url=console_url, notes=notes)


def escalate_request(request_id: int, reason: str, candidates: list[Candidate], *, session: Session,
                     dispatch_email: str, console_url: str, notes: list[int] | None = None) -> int:
    """``escalate`` for a request whose job could not even be analysed (a dead letter: no candidates)."""
    why_not = {str(c.technician_id): {"name": c.name, "reasons": c.reasons} for c in candidates}
    esc = store.open_escalation(request_id, reason, why_not, session=session)
    assert esc.id is not None
    row = store.get_request(request_id, session=session)
    alert = messages.escalation_alert(session=session, escalation_id=esc.id, request=row, reason=esc.reason,
                                      why_not=[(c.name, c.reasons) for c in candidates],
                                      dispatch_email=dispatch_email, console_url=console_url)
    if notes is not None:
        notes.extend(messages.ids_of(alert))
    return esc.id


def _commit_moves(decision: Decision, *, session: Session, travel: TravelTimeProvider,
                  settings: Settings, notes: list[int]) -> list[int]:
    """Write a bounded repair's moves (under the locks the caller took): each moved job is decided again on its
    receiver's fresh route, inside the window its customer was promised, and the assignment changes technician;
    its customer is told who now comes (the window is unchanged; the message's id is added to ``notes``).
    Returns the moved request ids.

    Raises
    ------
    ScheduleConflict
        When a moved job can no longer leave its route or fit the receiver's.
    """
    rules, tz = settings.dispatch, settings.company_timezone
    out = []
    for m in decision.moves:
        row = session.exec(select(Assignment).where(
            Assignment.request_id == m.request_id, Assignment.technician_id == m.from_technician,
            col(Assignment.status).in_([AssignmentStatus.TENTATIVE, AssignmentStatus.CONFIRMED]))).first()
        if row is None or TimeWindow(row.window_start, row.window_end) != m.stop.window:
            raise ScheduleConflict(f"request {m.request_id} can no longer move from technician {m.from_technician}")
        days = one_decision.load_days(m.job, session=session, travel=travel, tz=tz, technician_ids=[m.to_technician])
        again = one_decision.decide(m.job, days, travel=travel, rules=rules, repair=False, tz=tz) if days else None
        if again is None or again.chosen is None or again.displaced or again.chosen.insertion is None:
            why = ("no shift of theirs holds it" if again is None
                   else f"it would displace {[d.request_id for d in again.displaced]}" if again.displaced
                   else "; ".join(r for c in again.candidates for r in c.reasons) or again.escalation_reason
                   or "no insertion")
            raise ScheduleConflict(f"technician {m.to_technician} can no longer take request {m.request_id}: {why}")
        again.arrival_window = m.stop.window  # the promise stands
        apply_decision(again, m.job, travel)
        chosen = again.chosen
        assert chosen.day is not None and chosen.insertion is not None
        ins = chosen.insertion
        row.technician_id = m.to_technician
        row.scheduled_start, row.scheduled_end = ins.start, ins.end
        row.travel_minutes, row.detour_minutes = ins.travel_from_previous_minutes, ins.parts_detour_minutes
        session.add(row)
        by_request = {s.request_id: s for s in chosen.day.stops}
        later = [c.request_id for c in ins.later_stops]
        if ins.position + 1 < len(chosen.day.stops):
            later.append(chosen.day.stops[ins.position + 1].request_id)
        for other in session.exec(select(Assignment).where(
                col(Assignment.request_id).in_(later), Assignment.technician_id == m.to_technician,
                col(Assignment.status).notin_([AssignmentStatus.CANCELLED]))).all():
            stop = by_request[other.request_id]
            other.scheduled_start, other.scheduled_end = stop.start, stop.end
            other.window_start, other.window_end = stop.window.start, stop.window.end
            other.travel_minutes = stop.travel_minutes
            session.add(other)
        for conf in session.exec(select(Confirmation).where(Confirmation.request_id == m.request_id)).all():
            conf.technician_id, conf.estimated_completion = m.to_technician, ins.end
            session.add(conf)
        session.flush()
        request = store.get_request(m.request_id, session=session)
        job_tz = (m.job.rules.timezone if m.job.rules else None) or tz
        note = messages.customer_reschedule(
            session=session, key=f"repair:{m.request_id}:{row.id}:{m.to_technician}", request=request,
            technician_name=chosen.name, old=m.stop.window, new=m.stop.window,
            reason="routes were re-planned to fit an urgent visit; your arrival window is unchanged",
            tz=job_tz, company_name=settings.company_name)
        notes.extend(messages.ids_of(note))
        out.append(m.request_id)
    return out


def _record(decision: Decision, final: Decision, assignment_id: int, displaced: list[dict[str, Any]], *,
            decided_by: str, override_reason: str | None) -> AssignmentDecision:
    chosen = final.chosen
    assert chosen is not None
    sc = chosen.score
    return AssignmentDecision(
        assignment_id=assignment_id, request_id=decision.request_id,
        score_total=sc.total if sc else None, travel=sc.travel if sc else None, skill=sc.skill if sc else None,
        workload=sc.workload if sc else None, preference=sc.preference if sc else None,
        value=sc.value if sc else None,
        added_travel_minutes=chosen.insertion.added_travel_minutes if chosen.insertion else None,
        utilisation_before=chosen.utilisation, utilisation_after=chosen.utilisation_after,
        expected_value=sc.expected_value if sc else None,
        candidates=len(decision.candidates), eligible=sum(c.eligible for c in decision.candidates),
        boundary=final.boundary, relaxation=final.relaxation,
        displaced_request_ids=",".join(str(d["request_id"]) for d in displaced),
        moved_request_ids=",".join(f"{m.request_id}:{m.from_technician}>{m.to_technician}" for m in decision.moves),
        overrides=",".join(sorted(final.overrides)), override_reason=override_reason, decided_by=decided_by)


def commit_assignment(
    decision: Decision, job: JobRequirements, *, session: Session, travel: TravelTimeProvider,
    settings: Settings, arrival_window: TimeWindow | None = None, decided_by: str = "dispatch",
    override_reason: str | None = None,
) -> CommittedAssignment:
    """Write the chosen insertion: the new assignment and its decision record, the later stops it moves, the
    notifications.

    The chosen technician's route is re-read under the write lock and the decision made again on it (with the
    same overrides), so a concurrent dispatch can never double-book that technician's time. The request's row is
    locked next, so two runs for one request (a requeue racing a slow run) can never both assign it.
    ``arrival_window`` replaces the computed one (a dispatcher's manual start). The rules are
    ``settings.dispatch``; times default to ``settings.company_timezone``.

    Raises
    ------
    ScheduleConflict
        When the technician can no longer take the job on the fresh route.
    """
    if decision.chosen is None:
        raise ValueError(f"request {decision.request_id} was escalated; there is nothing to commit")
    rules, tz = settings.dispatch, settings.company_timezone
    tech_id = decision.chosen.technician_id
    # Every technician whose route changes, locked in one order (two repairs can never deadlock).
    for tid in sorted({tech_id} | {m.to_technician for m in decision.moves}):
        _lock_for_write(session, tid)
    session.execute(update(ServiceRequest).where(col(ServiceRequest.id) == job.request_id)
                    .values(status=ServiceRequest.status))
    if existing_assignment(job.request_id, session=session) is not None:
        raise ScheduleConflict(f"request {job.request_id} is already assigned")
    # The repair's own messages (moved customers, receivers' routes), delivered with the assignment's.
    repair_notes: list[int] = []
    moved = _commit_moves(decision, session=session, travel=travel, settings=settings, notes=repair_notes)
    days = one_decision.load_days(job, session=session, travel=travel, tz=tz, technician_ids=[tech_id])
    if moved:
        days = [relink(d, travel) for d in days]
    final = one_decision.decide(job, days, travel=travel, rules=rules, overrides=decision.overrides,
                                repair=False, tz=tz) if days else None
    # An emergency's displacement must be the one decided (the route may have changed since).
    if final is None or final.chosen is None or (
            {s.request_id for s in final.displaced} != {s.request_id for s in decision.displaced}):
        reason = "; ".join(final.candidates[0].reasons) if final and final.candidates else "no shift"
        raise ScheduleConflict(f"technician {tech_id} can no longer take request {job.request_id}: {reason}")
    # Keep the score that chose this technician among all candidates, and the relaxation that allowed it.
    final.chosen.score = decision.chosen.score
    final.relaxation = decision.relaxation or final.relaxation
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
    displaced = cancel_displaced(final.displaced, technician_id=tech_id, emergency_request_id=job.request_id,
                                 session=session)
    assignment = Assignment(
        request_id=job.request_id, technician_id=tech_id, scheduled_start=ins.start, scheduled_end=ins.end,
        window_start=final.arrival_window.start, window_end=final.arrival_window.end,
        travel_minutes=ins.travel_from_previous_minutes, detour_minutes=ins.parts_detour_minutes,
        status=AssignmentStatus.CONFIRMED)
    session.add(assignment)
    request.status = RequestStatus.ASSIGNED
    session.add(request)

    # Later stops: new times, the leg from the new job into the next stop, re-promised windows.
    by_request = {s.request_id: s for s in chosen.day.stops}
    ids = [c.request_id for c in ins.later_stops]
    nxt = chosen.day.stops[ins.position + 1] if ins.position + 1 < len(chosen.day.stops) else None
    if nxt is not None:
        ids.append(nxt.request_id)
    if displaced or moved:
        # The stop after each displaced or moved one now comes from somewhere else: rewrite the route's legs.
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
    session.add(_record(decision, final, assignment.id, displaced, decided_by=decided_by,
                        override_reason=override_reason))
    for m in decision.moves:
        # The technician who received a moved job: the update of their route.
        update_note = messages.technician_route_update(
            session=session, technician_id=m.to_technician, live=travel,
            day=m.insertion.start.astimezone(ZoneInfo(tz)).date(), tz=ZoneInfo(tz), tz_name=tz,
            company_name=settings.company_name, key_prefix="repair-route")
        repair_notes.extend(messages.ids_of(update_note))

    route = [{"request_id": s.request_id, "start": s.start.isoformat(), "end": s.end.isoformat(),
              "window_start": s.window.start.isoformat(), "window_end": s.window.end.isoformat()}
             for s in chosen.day.stops]
    result = CommittedAssignment(
        request_id=job.request_id, assignment_id=assignment.id, technician_id=tech_id, technician_name=tech.name,
        start=ins.start, end=ins.end, window_start=final.arrival_window.start,
        window_end=final.arrival_window.end, moved=list(ins.later_stops), route=route, score=score,
        displaced=displaced, boundary=final.boundary, relaxation=final.relaxation)
    # Customers read times in their territory's time zone.
    job_tz = (job.rules.timezone if job.rules else None) or tz
    result.notification_ids = queue_assignment_notifications(
        result, job, request, tech, session=session, tz=job_tz, decision=decision, settings=settings) + repair_notes
    return result


def queue_assignment_notifications(
    result: CommittedAssignment, job: JobRequirements, request: ServiceRequest, tech: Technician, *,
    session: Session, tz: str, decision: Decision, settings: Settings,
) -> list[int]:
    """Customer (arrival window), technician (job card), dispatch (summary), and every customer whose
    promised window moved. Keys make each message unique, so a retried run queues nothing twice."""
    rid = result.request_id
    window = TimeWindow(result.window_start, result.window_end)
    common: dict[str, Any] = dict(session=session, request=request, window=window, start=result.start,
                                  end=result.end, tz=tz, company_name=settings.company_name)
    notes = [messages.customer_arrival_window(key=f"assign:{result.assignment_id}:customer",
                                              technician_name=tech.name, **common)]
    day = decision.chosen.day if decision.chosen else None
    short = missing_parts(day, job) if day else {}
    notes.append(messages.technician_job_card(
        key=f"assign:{result.assignment_id}:technician", tech=tech, parts=job.parts_needed,
        missing_parts=short, route=[{"request_id": r["request_id"], "start": datetime.fromisoformat(r["start"]),
                                     "end": datetime.fromisoformat(r["end"])} for r in result.route],
        **common))
    score = result.score
    notes.append(messages.dispatch_summary(
        key=f"assign:{result.assignment_id}:dispatch", technician_name=tech.name,
        dispatch_email=settings.dispatch_email, added_travel_minutes=score.get("added_travel_minutes", 0.0),
        utilisation_before=score.get("utilisation_before", 0.0),
        utilisation_after=score.get("utilisation_after", 0.0), score_total=score.get("total", 0.0),
        candidates=len(decision.candidates), eligible=sum(c.eligible for c in decision.candidates),
        moved=result.moved, **common))
    for change in result.moved:
        if not change.breaks_promise:
            continue
        shift = change.new_start - change.old_start
        notes.append(messages.customer_reschedule(
            session=session, key=f"move:{change.request_id}:{change.new_start.isoformat()}",
            request=store.get_request(change.request_id, session=session), technician_name=tech.name,
            old=change.window, new=TimeWindow(change.window.start + shift, change.window.end + shift),
            reason=f"an urgent job (#{rid}) was added before yours", tz=tz, company_name=settings.company_name))
    return [n.id for n in notes if n is not None and n.id is not None]


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
