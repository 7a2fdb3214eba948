"""The live day against the database: status events from the technician's app (en route, arrived, completed,
running late, cannot complete, customer not home) and from dispatchers and customer portals (cancel,
reschedule). No FastAPI, no Prefect here: ``service/routers/live.py`` and ``truckroll live ...`` call these.

Each event is validated against the stop's state, recorded (``LiveEvent``), and re-times the technician's
route from actual progress (``engine.live.propagate``): the assignments' scheduled times become the true
ETAs (completed stops keep their actual times, so the day's metrics use them), customers whose promised
window no longer holds are told and re-promised (``customer_reschedule``), the customer of a stop en route
gets its ETA (``customer_eta_update``) and the technician the new route (``technician_route_update``).
Time that an event frees (a cancellation, a customer not home, a job finished early or cut short) is offered
to escalated work that fits it (``offer_freed_time``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from engine.live import StopFacts, eta_after, propagate
from engine.travel import TravelTimeProvider
from models import (
    Assignment,
    AssignmentStatus,
    Confirmation,
    Escalation,
    RequestStatus,
    ServiceRequest,
    TechnicianDay,
    TimeWindow,
)
from models.company_tables import LiveEvent, StopProgress
from truckroll import store
from truckroll.notifications import messages
from truckroll.settings import Settings

log = logging.getLogger(__name__)

TECHNICIAN_EVENTS = ("en_route", "arrived", "completed", "late", "cannot_complete", "not_home")
PORTAL_EVENTS = ("cancel", "reschedule")
EVENT_KINDS = TECHNICIAN_EVENTS + PORTAL_EVENTS
# Which stop states each technician event may follow.
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "en_route": ("planned", "en_route"),
    "arrived": ("planned", "en_route"),
    "completed": ("arrived",),
    "late": ("planned", "en_route", "arrived"),
    "cannot_complete": ("arrived",),
    "not_home": ("planned", "en_route", "arrived"),
}
STATUS_OF_STATE = {"en_route": AssignmentStatus.LOCKED, "arrived": AssignmentStatus.IN_PROGRESS,
                   "completed": AssignmentStatus.COMPLETED}
FOLLOW_UP_DEFAULT_DAYS = 1


class EventRefused(ValueError):
    """The event does not apply (wrong state, missing or bad field); the message says why. Nothing changed."""


@dataclass
class EventOutcome:
    event_id: int
    request_id: int
    kind: str
    state: str
    technician_id: int | None = None
    # The technician's route after the event: request, start, end, promised window, state.
    route: list[dict[str, Any]] = field(default_factory=list)
    # Requests whose customer was re-promised a later window.
    repromised: list[int] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)
    follow_up_request_id: int | None = None
    # Requests to hand to the dispatch flow (a reschedule, a follow-up visit).
    dispatch: list[int] = field(default_factory=list)
    # Escalated requests placed in the time the event freed.
    offered: list[dict[str, Any]] = field(default_factory=list)
    freed_window: tuple[datetime, datetime] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "freed_window"}
        out["freed_window"] = [t.isoformat() for t in self.freed_window] if self.freed_window else None
        return out


# ---------------------------------------------------------------- reading the live state


def facts_of(row: StopProgress) -> StopFacts | None:
    """The engine's facts of a stop (None once the stop left the route: cancelled, not home)."""
    if row.state in ("cancelled", "not_home"):
        return None
    state = "completed" if row.state == "cannot_complete" else row.state
    return StopFacts(state=state, departed_at=row.departed_at, eta=row.eta, arrived_at=row.arrived_at,
                     finished_at=row.finished_at, late_minutes=row.late_minutes, planned_start=row.planned_start,
                     planned_end=row.planned_end)


def progress_by_request(request_ids: list[int], *, session: Session) -> dict[int, StopProgress]:
    if not request_ids:
        return {}
    rows = session.exec(select(StopProgress).where(col(StopProgress.request_id).in_(request_ids))).all()
    return {r.request_id: r for r in rows}


def overlay_live_state(days: list[TechnicianDay], *, session: Session, travel: TravelTimeProvider,
                       now: datetime | None = None) -> None:
    """Step 3's live state, in place: each route re-timed from what was reported (a job in progress ends no
    earlier than ``now``), stops under way or done fixed. Routes without any report are left as planned."""
    now = now or datetime.now(UTC)
    ids = [s.request_id for d in days for s in d.stops]
    progress = progress_by_request(ids, session=session)
    if not progress:
        return
    for d in days:
        facts = {s.request_id: f for s in d.stops if s.request_id in progress
                 for f in [facts_of(progress[s.request_id])] if f is not None}
        if not facts:
            continue
        # A job never reported finished on a past day ends at the end of that shift at the latest.
        for s, eta in zip(d.stops, propagate(d.stops, facts, min(now, d.shift_end), travel), strict=True):
            s.start, s.end, s.window, s.travel_minutes = eta.start, eta.end, eta.window, eta.travel_minutes
            if eta.state != "planned":
                s.fixed = True


def current_position(day: TechnicianDay, *, session: Session,
                     progress: dict[int, StopProgress] | None = None) -> dict[str, Any]:
    """Where the technician is in their day: the stop under way (or last done) and when it ends. ``progress``:
    the stops' progress rows already read (``progress_by_request``), for a caller reading many days."""
    if progress is None:
        progress = progress_by_request([s.request_id for s in day.stops], session=session)
    current = None
    for s in day.stops:
        p = progress.get(s.request_id)
        if p is not None and p.state in ("en_route", "arrived", "completed", "cannot_complete"):
            current = (s, p.state)
    if current is None:
        return {"technician_id": day.technician_id, "state": "not started", "at": "home",
                "free_at": day.shift_start.isoformat()}
    s, state = current
    return {"technician_id": day.technician_id, "state": state, "request_id": s.request_id,
            "at": {"lat": s.location.lat, "lon": s.location.lon}, "free_at": s.end.isoformat()}


# ---------------------------------------------------------------- events


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise EventRefused(f"{name} must include a timezone offset, e.g. 2030-01-07T09:15:00-06:00")
    return value


def _progress_row(a: Assignment, *, session: Session) -> StopProgress:
    assert a.id is not None
    row = session.exec(select(StopProgress).where(StopProgress.assignment_id == a.id)).first()
    if row is None:
        row = StopProgress(assignment_id=a.id, request_id=a.request_id, technician_id=a.technician_id,
                           planned_start=a.scheduled_start, planned_end=a.scheduled_end)
    return row


def _day_of(a: Assignment, *, session: Session, tz: str) -> TechnicianDay | None:
    """The work block holding the assignment, as planned (no live overlay)."""
    days = store.technician_days(session=session, start=a.scheduled_start, end=a.scheduled_end + timedelta(seconds=1),
                                 tz=tz, live=None, technician_ids=[a.technician_id])
    return next((d for d in days if any(s.request_id == a.request_id for s in d.stops)),
                next((d for d in days if d.shift_start <= a.scheduled_start < d.shift_end), days[0] if days else None))


def record_event(request_id: int, kind: str, *, session: Session, travel: TravelTimeProvider, settings: Settings,
                 at: datetime | None = None, eta: datetime | None = None, minutes: float | None = None,
                 note: str = "", by: str = "", time_windows: list[TimeWindow] | None = None,
                 follow_up: dict[str, Any] | None = None) -> EventOutcome:
    """Validate and apply one event in the caller's transaction. See the module docstring.

    Raises
    ------
    store.NotFound
        No such request.
    EventRefused
        The event does not apply to the request's state, or a field is missing or wrong.
    """
    if kind not in EVENT_KINDS:
        raise EventRefused(f"unknown event {kind!r} (one of {', '.join(EVENT_KINDS)})")
    at = _aware(at, "at") or datetime.now(UTC)
    eta = _aware(eta, "eta")
    request = store.get_request(request_id, session=session)
    from truckroll.dispatch.commit import existing_assignment

    a = existing_assignment(request_id, session=session)
    if kind in PORTAL_EVENTS:
        if request.status in (RequestStatus.CANCELLED, RequestStatus.COMPLETED):
            raise EventRefused(f"request {request_id} is {request.status}; it cannot be {kind}d")
        if kind == "reschedule" and not time_windows:
            raise EventRefused("a reschedule needs the new time_windows")
        if a is not None:
            progress = session.exec(select(StopProgress).where(StopProgress.assignment_id == a.id)).first()
            if progress is not None and progress.state not in ("planned", "en_route"):
                raise EventRefused(f"request {request_id} is already {progress.state}; it cannot be {kind}d")
    else:
        if a is None or request.status != RequestStatus.ASSIGNED:
            raise EventRefused(f"request {request_id} has no assignment under way ({request.status})")
        state = (session.exec(select(StopProgress.state).where(StopProgress.assignment_id == a.id)).first()
                 or "planned")
        if state not in ALLOWED_FROM[kind]:
            raise EventRefused(f"request {request_id} is {state.replace('_', ' ')}: '{kind}' cannot follow it "
                               f"(allowed after {', '.join(ALLOWED_FROM[kind])})")
        if kind == "late" and (minutes is None or minutes <= 0):
            raise EventRefused("a 'late' report needs minutes > 0")
        if kind == "cannot_complete" and not (follow_up or note):
            raise EventRefused("'cannot_complete' needs a note or a follow_up (parts needed, return visit)")

    event = LiveEvent(request_id=request_id, assignment_id=a.id if a else None,
                      technician_id=a.technician_id if a else None, kind=kind, at=at, minutes=minutes, eta=eta,
                      note=note, by=by)
    outcome = EventOutcome(event_id=0, request_id=request_id, kind=kind, state=kind,
                           technician_id=a.technician_id if a else None)
    day = _day_of(a, session=session, tz=settings.company_timezone) if a is not None else None
    old_end = day.stops[-1].end if day and day.stops else None

    if kind in PORTAL_EVENTS:
        _leave_route(a, request, "cancelled", at, session=session, outcome=outcome)
        if kind == "cancel":
            request.status = RequestStatus.CANCELLED
            outcome.state = "cancelled"
        else:
            assert time_windows is not None
            request.time_windows = [[w.start.isoformat(), w.end.isoformat()] for w in time_windows]
            request.status = RequestStatus.RECEIVED
            outcome.state = "received"
            outcome.dispatch.append(request_id)
        for esc in session.exec(select(Escalation).where(Escalation.request_id == request_id,
                                                         col(Escalation.resolved_at).is_(None))).all():
            esc.resolved_at, esc.resolved_by, esc.resolution = at, by or kind, f"{kind} by {by or 'the customer'}"
            session.add(esc)
        request.notes = (request.notes + "\n" if request.notes else "") + f"{kind} at {at.isoformat()}" + \
            (f": {note}" if note else "")
        session.add(request)
    else:
        assert a is not None
        row = _progress_row(a, session=session)
        if kind == "en_route":
            row.state, row.departed_at = "en_route", at
            if eta is None:
                here = _position_before(a, day, session=session)
                stop = next(s for s in day.stops if s.request_id == request_id) if day else None
                eta = eta_after(at, here, stop, travel) if stop is not None and here is not None else a.scheduled_start
            row.eta, event.eta = eta, eta
            row.late_minutes = 0.0
        elif kind == "arrived":
            row.state, row.arrived_at, row.late_minutes = "arrived", at, 0.0
        elif kind == "completed":
            row.state, row.finished_at = "completed", at
            request.status = RequestStatus.COMPLETED
        elif kind == "late":
            row.late_minutes += float(minutes or 0)
        elif kind == "cannot_complete":
            row.state, row.finished_at = "cannot_complete", at
            request.status = RequestStatus.COMPLETED
            follow = _follow_up(request, at, follow_up or {}, note, session=session,
                                tz=ZoneInfo(settings.company_timezone))
            row.follow_up_request_id = event.follow_up_request_id = follow.id
            outcome.follow_up_request_id = follow.id
            assert follow.id is not None
            outcome.dispatch.append(follow.id)
        elif kind == "not_home":
            row.state, row.finished_at = "not_home", at
            if row.arrived_at is None:
                row.arrived_at = at
        row.updated_at = datetime.now(UTC)
        session.add(row)
        session.add(request)
        outcome.state = row.state
        if kind == "not_home":
            _leave_route(a, request, "not_home", at, session=session, outcome=outcome)
            reason = f"customer not home at {at.isoformat()}" + (f": {note}" if note else "")
            esc = store.open_escalation(request_id, reason, {}, session=session)
            assert esc.id is not None
            alert = messages.escalation_alert(session=session, escalation_id=esc.id, request=request, reason=reason,
                                              why_not=[], dispatch_email=settings.dispatch_email,
                                              console_url=settings.console_url)
            outcome.notification_ids.append(alert.id or 0)
    session.add(event)
    session.flush()
    assert event.id is not None
    outcome.event_id = event.id

    if a is not None:
        retime_route(a, at, session=session, travel=travel, settings=settings, outcome=outcome, old_end=old_end)
        if kind == "en_route" and eta is not None:
            _tell_eta(a, request, eta, session=session, settings=settings, outcome=outcome)
    return outcome


def _position_before(a: Assignment, day: TechnicianDay | None, *, session: Session) -> Any:
    """Where the technician leaves from for ``a``: the stop before it on the route, else their start base."""
    if day is None:
        return None
    from engine.rules.availability import start_location

    before = [s for s in day.stops if s.start < a.scheduled_start and s.request_id != a.request_id]
    return before[-1].location if before else start_location(day)


def _leave_route(a: Assignment | None, request: ServiceRequest, state: str, at: datetime, *, session: Session,
                 outcome: EventOutcome) -> None:
    """Take the assignment off the route (its time is freed); the confirmation no longer holds."""
    if a is None:
        return
    row = _progress_row(a, session=session)
    row.state, row.updated_at = state, datetime.now(UTC)
    session.add(row)
    a.status = AssignmentStatus.CANCELLED
    session.add(a)
    for conf in session.exec(select(Confirmation).where(Confirmation.request_id == request.id)).all():
        session.delete(conf)
    if state == "not_home":
        request.status = RequestStatus.ESCALATED
    session.flush()


def _follow_up(request: ServiceRequest, at: datetime, spec: dict[str, Any], note: str, *,
               session: Session, tz: ZoneInfo) -> ServiceRequest:
    """The return visit, linked to the first request: same customer and place, the parts it needs, windows
    given or the next days' working hours."""
    allowed = {"parts_needed", "estimated_duration_minutes", "time_windows", "description", "priority"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise EventRefused(f"follow_up: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    windows = spec.get("time_windows")
    if windows:
        try:
            parsed = [TimeWindow(datetime.fromisoformat(str(w["start"])), datetime.fromisoformat(str(w["end"])))
                      for w in windows]
        except (KeyError, TypeError, ValueError) as exc:
            raise EventRefused(f"follow_up.time_windows: {exc}") from None
    else:
        first = at.astimezone(tz).date() + timedelta(days=FOLLOW_UP_DEFAULT_DAYS)
        parsed = [TimeWindow(datetime.combine(first + timedelta(days=i), datetime.min.time(), tz) + timedelta(hours=8),
                             datetime.combine(first + timedelta(days=i), datetime.min.time(), tz)
                             + timedelta(hours=17)) for i in range(3)]
    parts = spec.get("parts_needed", {})
    if not isinstance(parts, dict) or any(not isinstance(q, int) or q <= 0 for q in parts.values()):
        raise EventRefused("follow_up.parts_needed must map part names to positive quantities")
    follow = ServiceRequest(
        customer_name=request.customer_name, customer_phone=request.customer_phone,
        customer_email=request.customer_email, address=request.address, lat=request.lat, lon=request.lon,
        job_type=request.job_type, complexity=request.complexity,
        description=str(spec.get("description") or f"follow-up of #{request.id}: {note}".strip(": ")),
        required_skills=dict(request.required_skills), required_certifications=list(request.required_certifications),
        parts_needed=parts, estimated_duration_minutes=spec.get("estimated_duration_minutes"),
        priority=int(spec.get("priority", request.priority)), estimated_value=0.0,
        time_windows=[[w.start.isoformat(), w.end.isoformat()] for w in parsed],
        preferred_technician_ids=list(request.preferred_technician_ids),
        excluded_technician_ids=list(request.excluded_technician_ids), channel="dispatcher",
        notes=f"follow-up of request #{request.id}" + (f": {note}" if note else ""),
        idempotency_key=f"follow-up-of-{request.id}")
    session.add(follow)
    session.flush()
    return follow


def retime_route(a: Assignment, now: datetime, *, session: Session, travel: TravelTimeProvider,
                 settings: Settings, outcome: EventOutcome, old_end: datetime | None = None) -> None:
    """Write the technician's re-timed route (true ETAs) and tell the customers whose promise broke."""
    day = _day_of(a, session=session, tz=settings.company_timezone)
    if day is None:
        return
    progress = progress_by_request([s.request_id for s in day.stops], session=session)
    facts = {rid: f for rid, p in progress.items() for f in [facts_of(p)] if f is not None}
    etas = propagate(day.stops, facts, now, travel)
    rows = {r.request_id: r for r in session.exec(select(Assignment).where(
        col(Assignment.request_id).in_([s.request_id for s in day.stops]),
        Assignment.technician_id == a.technician_id,
        col(Assignment.status).notin_([AssignmentStatus.CANCELLED]))).all()}
    tz = settings.company_timezone
    tech = store.get_technician(a.technician_id, session=session)
    for e in etas:
        row = rows[e.request_id]
        row.scheduled_start, row.scheduled_end, row.travel_minutes = e.start, e.end, e.travel_minutes
        if e.state in STATUS_OF_STATE:
            row.status = STATUS_OF_STATE[e.state]
        if e.breaks_promise:
            row.window_start, row.window_end = e.window.start, e.window.end
            outcome.repromised.append(e.request_id)
            other = store.get_request(e.request_id, session=session)
            note = messages.customer_reschedule(
                session=session, key=f"live:{row.id}:{e.window.start.isoformat()}", request=other,
                technician_name=tech.name, old=e.promised, new=e.window,
                reason="the jobs before yours are taking longer than planned", tz=tz,
                company_name=settings.company_name)
            if note is not None:
                outcome.notification_ids.append(note.id or 0)
        session.add(row)
    session.flush()
    outcome.route = [{"request_id": e.request_id, "start": e.start.isoformat(), "end": e.end.isoformat(),
                      "window_start": e.window.start.isoformat(), "window_end": e.window.end.isoformat(),
                      "state": e.state} for e in etas]
    # Time is freed when a stop leaves the route, or when the route now ends earlier than it did.
    new_end = etas[-1].end if etas else None
    if outcome.kind in ("cancel", "reschedule", "not_home", "cannot_complete") or (
            old_end is not None and new_end is not None and new_end < old_end):
        outcome.freed_window = (max(now, day.shift_start), day.shift_end)
    if outcome.kind in ("cancel", "reschedule", "not_home", "cannot_complete") or outcome.repromised:
        outcome.notification_ids.append(_route_update(tech.id or 0, day, etas, session=session, settings=settings))


def _route_update(technician_id: int, day: TechnicianDay, etas: list[Any], *, session: Session,
                  settings: Settings) -> int:
    tz = settings.company_timezone
    tech = store.get_technician(technician_id, session=session)
    requests = {e.request_id: store.get_request(e.request_id, session=session) for e in etas}
    route = [dict(request_id=e.request_id, start=e.start, end=e.end, window_start=e.window.start,
                  window_end=e.window.end, address=requests[e.request_id].address,
                  job_type=requests[e.request_id].job_type, customer_name=requests[e.request_id].customer_name,
                  fixed=e.state != "planned") for e in etas]
    key = ",".join(f"{e.request_id}@{e.start.isoformat()}" for e in etas) or "empty"
    note = messages.technician_route(
        session=session, key=f"live-route:{technician_id}:{day.shift_start.isoformat()}:{key}"[:250], tech=tech,
        day=day.shift_start.astimezone(ZoneInfo(tz)).date(), tz_name=tz, company_name=settings.company_name,
        route=route, travel_minutes=sum(e.travel_minutes for e in etas))
    return note.id or 0


def _tell_eta(a: Assignment, request: ServiceRequest, eta: datetime, *, session: Session, settings: Settings,
              outcome: EventOutcome) -> None:
    tech = store.get_technician(a.technician_id, session=session)
    row = session.get(Assignment, a.id)
    assert row is not None
    note = messages.customer_eta_update(
        session=session, key=f"live-eta:{a.id}:{eta.isoformat()}", request=request, technician_name=tech.name,
        eta=row.scheduled_start, window=TimeWindow(row.window_start, row.window_end),
        reason=f"{tech.name} is on the way", tz=settings.company_timezone, company_name=settings.company_name)
    if note is not None:
        outcome.notification_ids.append(note.id or 0)


# ---------------------------------------------------------------- freed time


def offer_freed_time(technician_id: int, window: tuple[datetime, datetime], *, travel: TravelTimeProvider,
                     settings: Settings, limit: int = 5, exclude: set[int] | None = None) -> list[dict[str, Any]]:
    """Offer the technician's freed time to escalated requests whose windows touch it (most urgent first):
    each is decided on this technician's fresh route and committed through ``commit.commit_assignment``
    (notifications and confirmation included), its escalation closed. ``exclude``: requests not to offer (the
    one whose customer was not home waits for a dispatcher). Returns what was placed."""
    from engine.dispatch.decision import decide
    from truckroll.db import session_scope
    from truckroll.dispatch import commit

    start, end = window
    placed: list[dict[str, Any]] = []
    with session_scope() as session:
        waiting = session.exec(select(ServiceRequest).join(Escalation, col(Escalation.request_id) == ServiceRequest.id)
                               .where(col(Escalation.resolved_at).is_(None),
                                      ServiceRequest.status == RequestStatus.ESCALATED)
                               .order_by(col(ServiceRequest.priority), col(ServiceRequest.created_at))).all()
        ids = [r.id for r in waiting if r.id is not None and r.id not in (exclude or set()) and any(
            datetime.fromisoformat(a) < end and datetime.fromisoformat(b) > start for a, b in r.time_windows)]
    for rid in ids:
        if len(placed) >= limit:
            break
        try:
            with session_scope() as session:
                job = store.requirements_of(rid, session=session, tz=settings.company_timezone)
                lo, hi = store.job_horizon(job)
                days = store.technician_days(session=session, start=lo, end=hi, tz=settings.company_timezone,
                                             live=travel, technician_ids=[technician_id])
                decision = decide(job, days, travel, settings.dispatch)
                if decision.chosen is None:
                    continue
                result = commit.commit_assignment(decision, job, session=session, travel=travel, settings=settings)
                commit.write_confirmation(result, session=session)
                for esc in session.exec(select(Escalation).where(Escalation.request_id == rid,
                                                                 col(Escalation.resolved_at).is_(None))).all():
                    esc.resolved_at, esc.resolved_by = datetime.now(UTC), "live day: freed time"
                    esc.resolution = f"assigned to {result.technician_name} in time freed on the day"
                    session.add(esc)
                placed.append({"request_id": rid, "technician_id": technician_id,
                               "window_start": result.window_start.isoformat(),
                               "window_end": result.window_end.isoformat(),
                               "notification_ids": result.notification_ids})
        except commit.ScheduleConflict:
            continue
    return placed


def apply_event(request_id: int, kind: str, *, settings: Settings, **kwargs: Any) -> EventOutcome:
    """``record_event`` in its own transaction, then the freed time offered to escalated work."""
    from truckroll.db import session_scope
    from truckroll.travel.provider import get_travel_provider

    travel = get_travel_provider(settings)
    with session_scope() as session:
        outcome = record_event(request_id, kind, session=session, travel=travel, settings=settings, **kwargs)
    if outcome.freed_window is not None and outcome.technician_id is not None:
        outcome.offered = offer_freed_time(outcome.technician_id, outcome.freed_window, travel=travel,
                                           settings=settings, exclude={request_id})
        # Every message the event led to, for the caller to deliver at once.
        outcome.notification_ids += [i for placed in outcome.offered for i in placed["notification_ids"]]
    return outcome
