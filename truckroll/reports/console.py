"""What the dispatcher's console shows, read from the application layer (docs/console.md).

Nothing here decides or computes anew: the board is ``truckroll.reports.plan.build_day_plan`` (routes, travel, idle,
utilisation, the day's metrics) with the live state of ``truckroll.live`` laid over it; the ranking is
``truckroll.dispatch.whynot.ranking`` (the one decision); a reassignment goes through
``truckroll.dispatch.decision`` and
``commit.commit_assignment`` like every other assignment. Plain dicts out, for the service to type.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from engine.travel import TravelTimeProvider
from models import (
    Assignment,
    AssignmentDecision,
    AssignmentStatus,
    Confirmation,
    Escalation,
    LiveEvent,
    Notification,
    RequestStatus,
    ServiceRequest,
    TechnicianDay,
    Territory,
)
from truckroll import store
from truckroll.db import session_scope
from truckroll.settings import Settings

log = logging.getLogger(__name__)

# Live states of a stop in which the technician is (or was last) there.
_AT_STOP = ("en_route", "arrived", "completed", "cannot_complete")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _territory_of(day: TechnicianDay, on: date, territories: dict[int, Territory]) -> Territory | None:
    """The technician's territory on ``on``: a relocation first, else the primary membership."""
    if day.rules is None:
        return None
    members = [m for m in day.rules.memberships if m.active_on(on) and m.territory_id in territories]
    for kind in ("relocation", "primary", "secondary"):
        for m in members:
            if m.kind == kind:
                return territories[m.territory_id]
    return None


def board(day: date, *, session: Session, travel: TravelTimeProvider, settings: Settings,
          territory_id: int | None = None) -> dict[str, Any]:
    """The day's board: one row per technician shift (jobs, travel, idle, promised windows, live state,
    utilisation against the target), the territories' polygons, the day's metrics, and the requests of the day
    still waiting for their dispatch.

    ``territory_id`` keeps the technicians of that territory and shows times in its time zone (else the
    company's). Raises ``store.NotFound`` for an unknown territory.
    """
    from truckroll.live import current_position, progress_by_request
    from truckroll.reports.plan import build_day_plan

    territories = {t.id: t for t in session.exec(select(Territory).order_by(col(Territory.id))).all()
                   if t.id is not None}
    if territory_id is not None and territory_id not in territories:
        raise store.NotFound(f"no territory {territory_id}")
    tz = territories[territory_id].timezone if territory_id is not None else settings.company_timezone
    plan = build_day_plan(day, tz=settings.company_timezone, session=session, travel=travel)
    by_shift = {(d.technician_id, d.shift_start): d for d in plan.days}
    progress = progress_by_request([j.request_id for t in plan.technicians for j in t.jobs], session=session)
    target = settings.dispatch.utilisation_target
    rows = []
    for t in plan.technicians:
        d = by_shift.get((t.technician_id, t.shift_start))
        terr = _territory_of(d, day, territories) if d is not None else None
        if territory_id is not None and (terr is None or terr.id != territory_id):
            continue
        where = (current_position(d, session=session, progress=progress) if d is not None
                 else {"state": "not started", "at": "home"})
        at = where.get("at")
        position = ({"lat": t.home.lat, "lon": t.home.lon, "label": "home"} if not isinstance(at, dict) else
                    {"lat": at["lat"], "lon": at["lon"], "label": f"{where['state']} #{where.get('request_id')}"})
        jobs = []
        for j in t.jobs:
            p = progress.get(j.request_id)
            jobs.append({
                "request_id": j.request_id, "customer_name": j.customer_name, "address": j.address,
                "job_type": j.job_type, "start": _iso(j.start), "end": _iso(j.end),
                "window_start": _iso(j.window_start), "window_end": _iso(j.window_end),
                "travel_minutes": round(j.travel_minutes, 1), "lat": j.location.lat, "lon": j.location.lon,
                "state": p.state if p is not None else "planned", "eta": _iso(p.eta) if p is not None else None,
                "late_minutes": p.late_minutes if p is not None else 0.0})
        rows.append({
            "technician_id": t.technician_id, "name": t.name,
            "territory": terr.name if terr is not None else None,
            "timezone": terr.timezone if terr is not None else settings.company_timezone,
            "shift_start": _iso(t.shift_start), "shift_end": _iso(t.shift_end),
            "home": {"lat": t.home.lat, "lon": t.home.lon},
            "job_minutes": round(t.job_minutes, 1), "travel_minutes": round(t.travel_minutes, 1),
            "idle_minutes": round(t.idle_minutes, 1), "return_minutes": round(t.return_minutes, 1),
            "utilisation": round(t.utilisation, 4), "utilisation_target": target,
            "over_target": t.utilisation > target + 1e-9,
            "live_state": where.get("state", "not started"), "position": position, "jobs": jobs})
    return {
        "date": day.isoformat(), "timezone": tz, "territory_id": territory_id,
        "rows": rows, "metrics": {k: round(v, 4) for k, v in plan.metrics.items()},
        "territories": [{"id": i, "name": t.name, "timezone": t.timezone, "level": t.level, "geometry": t.geometry}
                        for i, t in territories.items()],
        "waiting": waiting_requests(day, session=session, tz=settings.company_timezone),
    }


def waiting_requests(day: date, *, session: Session, tz: str, limit: int = 200) -> list[dict[str, Any]]:
    """Requests whose windows touch ``day`` (company time) and that no dispatch has placed or escalated yet."""
    start, end = store.day_bounds(day, ZoneInfo(tz))
    rows = session.exec(select(ServiceRequest).where(
        col(ServiceRequest.status).in_([RequestStatus.RECEIVED, RequestStatus.ANALYSED]))
        .order_by(col(ServiceRequest.priority), col(ServiceRequest.id)).limit(5000)).all()
    out = []
    for r in rows:
        if any(datetime.fromisoformat(a) < end and datetime.fromisoformat(b) > start for a, b in r.time_windows):
            out.append({"request_id": r.id, "customer_name": r.customer_name, "address": r.address,
                        "job_type": r.job_type, "priority": r.priority, "status": r.status,
                        "received_at": _iso(r.created_at)})
            if len(out) >= limit:
                break
    return out


def timeline(request_id: int, *, session: Session,
             flow_runs: Callable[[int], list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """A request's story, oldest first: received, each decision (automatic or a dispatcher's, with overrides
    and reasons), escalations and their resolution, every notification queued and sent, every status event;
    with the Prefect flow runs that dispatched it (``flow_runs(request_id)``, given by the caller: the application
    layer does not talk to Prefect). Raises ``store.NotFound``."""

    r = store.get_request(request_id, session=session)
    events: list[dict[str, Any]] = [{
        "at": _iso(r.created_at), "kind": "received", "title": f"Received from {r.channel}",
        "detail": f"{r.job_type}, priority {r.priority}, {r.customer_name}, {r.address}"}]
    techs: dict[int, str] = {}

    def tech_name(tid: int) -> str:
        if tid not in techs:
            try:
                techs[tid] = store.get_technician(tid, session=session).name
            except store.NotFound:
                techs[tid] = f"technician {tid}"
        return techs[tid]

    assignments = {a.id: a for a in session.exec(select(Assignment).where(Assignment.request_id == request_id)
                                                 .order_by(col(Assignment.id))).all()}
    for d in session.exec(select(AssignmentDecision).where(AssignmentDecision.request_id == request_id)
                          .order_by(col(AssignmentDecision.id))).all():
        a = assignments.get(d.assignment_id)
        who = tech_name(a.technician_id) if a is not None else "?"
        parts = [f"{d.eligible} of {d.candidates} technicians could take it"]
        if d.score_total is not None:
            parts.append(f"score {d.score_total:.3f}")
        if d.overrides:
            parts.append(f"overrode {d.overrides.replace(',', ', ')}")
        if d.override_reason:
            parts.append(f"reason: {d.override_reason}")
        if d.relaxation:
            parts.append(d.relaxation)
        events.append({"at": _iso(d.created_at), "kind": "decision",
                       "title": f"Assigned to {who} by {d.decided_by}", "detail": "; ".join(parts)})
    for a in assignments.values():
        if a.status == AssignmentStatus.CANCELLED:
            events.append({"at": _iso(a.created_at), "kind": "assignment",
                           "title": f"Assignment to {tech_name(a.technician_id)} (since cancelled)",
                           "detail": f"planned {_iso(a.scheduled_start)}"})
    for e in session.exec(select(Escalation).where(Escalation.request_id == request_id)
                          .order_by(col(Escalation.id))).all():
        events.append({"at": _iso(e.created_at), "kind": "escalated", "title": "Escalated to a dispatcher",
                       "detail": e.reason, "escalation_id": e.id})
        if e.resolved_at is not None:
            events.append({"at": _iso(e.resolved_at), "kind": "resolved", "title": f"Resolved by {e.resolved_by}",
                           "detail": e.resolution or "", "escalation_id": e.id})
    for n in session.exec(select(Notification).where(Notification.request_id == request_id)
                          .order_by(col(Notification.id))).all():
        events.append({"at": _iso(n.created_at), "kind": "notification",
                       "title": f"Message to the {n.recipient_kind} ({n.channel}): {n.status}",
                       "detail": n.subject, "recipient_kind": n.recipient_kind, "template": n.template,
                       "status": n.status, "sent_at": _iso(n.sent_at)})
    for ev in session.exec(select(LiveEvent).where(LiveEvent.request_id == request_id)
                           .order_by(col(LiveEvent.at), col(LiveEvent.id))).all():
        detail = "; ".join(x for x in (f"by {ev.by}" if ev.by else "", ev.note,
                                       f"{ev.minutes:g} min" if ev.minutes else "",
                                       f"ETA {_iso(ev.eta)}" if ev.eta else "") if x)
        events.append({"at": _iso(ev.at), "kind": "status", "title": ev.kind.replace("_", " "), "detail": detail})
    events.sort(key=lambda e: e["at"] or "")
    active = next((a for a in assignments.values() if a.status != AssignmentStatus.CANCELLED), None)
    return {
        "request_id": request_id, "status": r.status, "customer_name": r.customer_name, "address": r.address,
        "job_type": r.job_type, "priority": r.priority,
        "time_windows": [{"start": a, "end": b} for a, b in r.time_windows],
        "technician_id": active.technician_id if active else None,
        "technician_name": tech_name(active.technician_id) if active else None,
        "scheduled_start": _iso(active.scheduled_start) if active else None,
        "arrival_window": ({"start": _iso(active.window_start), "end": _iso(active.window_end)}
                           if active else None),
        "events": events, "flow_runs": flow_runs(request_id) if flow_runs is not None else [],
    }


# ---------------------------------------------------------------- reassigning an assigned job


class ReassignRefused(RuntimeError):
    """The job cannot move (not assigned, already done, or the same technician)."""


@dataclasses.dataclass
class Reassignment:
    request_id: int
    from_technician_id: int
    to_technician_id: int
    technician_name: str
    start: datetime
    end: datetime
    window_start: datetime
    window_end: datetime
    notification_ids: list[int]


def reassign(request_id: int, *, technician_id: int, by: str, settings: Settings,
             overrides: list[str] | tuple[str, ...] = (), override_reason: str = "") -> Reassignment:
    """Move an assigned job to another technician, through the one decision (among that technician alone, the
    utilisation target waived as in a manual resolution) and the one commit. The old assignment is cancelled
    and the new one written in one transaction: a refusal changes nothing.

    Raises
    ------
    store.NotFound
        No such request or technician.
    ReassignRefused
        The request is not assigned, is under way or done, or is already the technician's.
    manual.ManualAssignmentRejected
        The technician cannot take it; ``overridable`` names the rules an override with a reason would lift.
    ValueError
        Bad overrides (``manual.check_overrides``).
    """
    from truckroll.dispatch import commit
    from truckroll.dispatch import decision as one_decision
    from truckroll.dispatch.manual import ManualAssignmentRejected, _rule_of, waived_rules
    from truckroll.live import progress_by_request
    from truckroll.notifications import messages
    from truckroll.travel.provider import get_travel_provider

    rules, tz = settings.dispatch, settings.company_timezone
    waived = waived_rules(overrides, override_reason, settings)
    asked = waived - {"utilisation"}  # what the dispatcher overrode, recorded with the reason
    travel = get_travel_provider(settings)
    with session_scope() as session:
        store.get_technician(technician_id, session=session)
        old = _movable(request_id, technician_id, session=session)
        from_tid = old.technician_id
        job = one_decision.load_job(request_id, session=session, tz=tz)
        days = one_decision.load_days(job, session=session, travel=travel, tz=tz, technician_ids=[technician_id])
    if not days:
        raise ManualAssignmentRejected([f"technician {technician_id} has no shift in the customer's windows"])
    decision = one_decision.decide(job, days, travel=travel, rules=rules, overrides=waived, repair=False, tz=tz)
    if decision.chosen is None or decision.displaced:
        reasons = decision.candidates[0].reasons if decision.candidates else []
        if decision.displaced:
            reasons = ["only by displacing " + ", ".join(f"#{s.request_id}" for s in decision.displaced)]
        overridable = sorted({r for r in map(_rule_of, reasons) if r and r not in waived
                              and (r != "expired_certification" or rules.allow_expired_certification_override)})
        raise ManualAssignmentRejected(list(reasons), overridable)
    try:
        with session_scope() as session:
            old = _movable(request_id, technician_id, session=session)
            old.status = AssignmentStatus.CANCELLED
            session.add(old)
            for row in progress_by_request([request_id], session=session).values():
                row.state, row.updated_at = "cancelled", datetime.now(UTC)
                session.add(row)
            for conf in session.exec(select(Confirmation).where(Confirmation.request_id == request_id)).all():
                session.delete(conf)
            request = store.get_request(request_id, session=session)
            request.status = RequestStatus.ANALYSED
            session.add(request)
            session.flush()
            result = commit.commit_assignment(decision, job, session=session, travel=travel, settings=settings,
                                              decided_by=by, override_reason=override_reason.strip() or None)
            commit.write_confirmation(result, session=session)
            session.add(LiveEvent(request_id=request_id, assignment_id=result.assignment_id,
                                  technician_id=technician_id, kind="reassigned", at=datetime.now(UTC), by=by,
                                  note=f"from technician {from_tid} to {result.technician_name}"
                                       + (f" (overrode {', '.join(sorted(asked))}: {override_reason.strip()})"
                                          if asked else "")))
            # The technician who lost the job gets the day's route as it now stands.
            note = messages.technician_route_update(
                session=session, technician_id=from_tid, day=old.scheduled_start.astimezone(ZoneInfo(tz)).date(),
                tz=ZoneInfo(tz), tz_name=tz, company_name=settings.company_name, live=travel,
                key_prefix="reassign-route")
            ids = list(result.notification_ids) + ([note.id] if note is not None and note.id is not None else [])
    except commit.ScheduleConflict as exc:
        raise ManualAssignmentRejected([str(exc)]) from None
    log.info("request %s reassigned by %s: technician %s -> %s", request_id, by, from_tid, technician_id)
    return Reassignment(request_id=request_id, from_technician_id=from_tid, to_technician_id=technician_id,
                        technician_name=result.technician_name, start=result.start, end=result.end,
                        window_start=result.window_start, window_end=result.window_end, notification_ids=ids)


def _movable(request_id: int, technician_id: int, *, session: Session) -> Assignment:
    from truckroll.dispatch import commit
    from truckroll.live import progress_by_request

    request = store.get_request(request_id, session=session)
    a = commit.existing_assignment(request_id, session=session)
    if a is None or request.status != RequestStatus.ASSIGNED:
        raise ReassignRefused(f"request {request_id} is {request.status}, not assigned: only an assigned job moves "
                              f"(an escalated one is resolved from the escalation queue)")
    if a.technician_id == technician_id:
        raise ReassignRefused(f"request {request_id} is already assigned to technician {technician_id}")
    p = progress_by_request([request_id], session=session).get(request_id)
    if a.status in (AssignmentStatus.IN_PROGRESS, AssignmentStatus.COMPLETED) or (
            p is not None and p.state not in ("planned",)):
        raise ReassignRefused(f"request {request_id} is under way or done; it can no longer move")
    return a

