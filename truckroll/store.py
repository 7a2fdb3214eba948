"""Database I/O as plain functions with a keyword-only ``session``: what the Prefect tasks wrap."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
from sqlmodel import Session, col, select

from engine.dispatch.analysis import analyse_requirements
from engine.travel import TravelTimeProvider
from models import (
    ACTIVE_ASSIGNMENT_STATUSES,
    Assignment,
    AssignmentStatus,
    Escalation,
    JobRequirements,
    JobType,
    JobTypeSpec,
    Location,
    RequestStatus,
    ServiceRequest,
    Shift,
    Stop,
    Technician,
    TechnicianDay,
    TimeWindow,
)
from models.schemas import FieldError, RequestValidationError, ServiceRequestCreate
from truckroll.rules import store as rules_store

log = logging.getLogger(__name__)

FIXED_STATUSES = (AssignmentStatus.LOCKED, AssignmentStatus.IN_PROGRESS, AssignmentStatus.COMPLETED)


class NotFound(LookupError):
    """An id that names nothing; the message says what was looked for."""


# ---------------------------------------------------------------- requests


def known_skills(*, session: Session) -> set[str]:
    """Every skill the company knows: the catalogue's and the technicians'."""
    skills: set[str] = set()
    for levels in session.exec(select(JobType.skill_levels_by_complexity)).all():
        for by_skill in levels.values():
            skills.update(by_skill)
    for tech_skills in session.exec(select(Technician.skills)).all():
        skills.update(tech_skills)
    return skills


def reference_errors(job_type: str, required_skills: Iterable[str], windows: Iterable[Any], *, session: Session,
                     now: datetime, horizon_days: int) -> list[FieldError]:
    """What a request or a prospective job names that does not exist, windows already past, and windows that
    start beyond the planning horizon (``horizon_days``: the setting ``planning_horizon_days``)."""
    horizon = horizon_days
    errors: list[FieldError] = []
    if session.exec(select(JobType.id).where(JobType.name == job_type)).first() is None:
        errors.append(FieldError(field="job_type", message=f"unknown job type {job_type!r}"))
    skills = known_skills(session=session)
    for skill in required_skills:
        if skill not in skills:
            errors.append(FieldError(field=f"required_skills.{skill}", message=f"unknown skill {skill!r}"))
    for i, w in enumerate(windows):
        if w.end <= now:
            errors.append(FieldError(field=f"time_windows.{i}", message="window is in the past"))
        elif w.start > now + timedelta(days=horizon):
            errors.append(FieldError(field=f"time_windows.{i}",
                                     message=f"window starts more than {horizon} days ahead (the planning horizon)"))
    return errors


def validate_request(data: dict[str, Any] | ServiceRequestCreate, *, session: Session, horizon_days: int,
                     now: datetime | None = None) -> ServiceRequestCreate:
    """Check the shape, then every reference (job type, skills, technicians) and that windows are not past.

    Raises
    ------
    RequestValidationError
        Naming every failing field; nothing has been written.
    """
    if isinstance(data, ServiceRequestCreate):
        req = data
    else:
        try:
            req = ServiceRequestCreate.model_validate(data)
        except pydantic.ValidationError as exc:
            raise RequestValidationError.from_pydantic(exc) from None
    now = now or datetime.now(UTC)
    errors = reference_errors(req.job_type, req.required_skills, req.time_windows, session=session, now=now,
                              horizon_days=horizon_days)
    ids = set(req.preferred_technician_ids) | set(req.excluded_technician_ids)
    if ids:
        found = set(session.exec(select(Technician.id).where(col(Technician.id).in_(ids))).all())
        for name in ("preferred_technician_ids", "excluded_technician_ids"):
            for tid in getattr(req, name):
                if tid not in found:
                    errors.append(FieldError(field=name, message=f"unknown technician {tid}"))
    if req.customer_ref is not None:
        from truckroll.company.sync import customer_for_request

        if customer_for_request(req.customer_ref, session=session) is None:
            errors.append(FieldError(field="customer_ref", message=f"unknown customer {req.customer_ref!r}"))
    if errors:
        raise RequestValidationError(errors)
    return req


def create_request(data: dict[str, Any] | ServiceRequestCreate, *, session: Session, horizon_days: int,
                   idempotency_key: str | None = None, now: datetime | None = None) -> tuple[ServiceRequest, bool]:
    """Validate and persist a request (windows within ``horizon_days``, the setting ``planning_horizon_days``).
    Returns (request, created); an idempotency key seen before returns the earlier request and creates nothing."""
    if idempotency_key:
        existing = session.exec(select(ServiceRequest).where(ServiceRequest.idempotency_key == idempotency_key)).first()
        if existing is not None:
            return existing, False
    req = validate_request(data, session=session, now=now, horizon_days=horizon_days)
    row = ServiceRequest(
        idempotency_key=idempotency_key,
        **req.model_dump(exclude={"time_windows", "customer_ref"}),
        time_windows=[[w.start.isoformat(), w.end.isoformat()] for w in req.time_windows],
    )
    customer = None
    if req.customer_ref is not None:
        from truckroll.company.sync import apply_customer, customer_for_request

        customer = customer_for_request(req.customer_ref, session=session)
        assert customer is not None  # validated above
        row.preferred_technician_ids = sorted({*row.preferred_technician_ids, *customer.preferred_technician_ids})
        row.excluded_technician_ids = sorted({*row.excluded_technician_ids, *customer.excluded_technician_ids})
        if customer.notes:
            row.notes = (row.notes + "\n" if row.notes else "") + customer.notes
    session.add(row)
    session.flush()
    if customer is not None:
        assert row.id is not None
        apply_customer(row.id, customer, session=session)
    return row, True


def get_request(request_id: int, *, session: Session) -> ServiceRequest:
    row = session.get(ServiceRequest, request_id)
    if row is None:
        raise NotFound(f"no service request {request_id}")
    return row


def get_technician(technician_id: int, *, session: Session) -> Technician:
    row = session.get(Technician, technician_id)
    if row is None:
        raise NotFound(f"no technician {technician_id}")
    return row


def request_windows(row: ServiceRequest) -> list[TimeWindow]:
    return [TimeWindow(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in row.time_windows]


def job_type_spec(name: str, *, session: Session) -> JobTypeSpec:
    jt = session.exec(select(JobType).where(JobType.name == name)).first()
    if jt is None:
        raise NotFound(f"no job type {name!r}")
    return JobTypeSpec(name=jt.name, default_duration_minutes=jt.default_duration_minutes,
                       skill_levels_by_complexity=jt.skill_levels_by_complexity,
                       required_certifications=tuple(jt.required_certifications), typical_parts=jt.typical_parts)


def requirements_of(request_id: int, *, session: Session, tz: str) -> JobRequirements:
    """Step 2's input from the database: the request combined with its catalogue entry (``tz``: the company's
    time zone, for a job outside every territory)."""
    row = get_request(request_id, session=session)
    job = analyse_requirements(
        request_id=request_id, location=Location(row.lat, row.lon),
        job_type=job_type_spec(row.job_type, session=session), complexity=row.complexity,
        required_skills=row.required_skills, required_certifications=row.required_certifications,
        parts_needed=row.parts_needed, duration_minutes=row.estimated_duration_minutes,
        windows=request_windows(row), priority=row.priority, estimated_value=row.estimated_value,
        preferred_technician_ids=row.preferred_technician_ids,
        excluded_technician_ids=row.excluded_technician_ids, received_at=row.created_at,
    )
    job.rules = rules_store.job_rules(request_id, job.location, job.windows, session=session, tz=tz)
    return job


# ---------------------------------------------------------------- technicians and routes


def _stop(a: Assignment, r: ServiceRequest) -> Stop:
    return Stop(request_id=a.request_id, location=Location(r.lat, r.lon), start=a.scheduled_start,
                end=a.scheduled_end, window=TimeWindow(a.window_start, a.window_end),
                travel_minutes=a.travel_minutes, detour_minutes=a.detour_minutes,
                fixed=a.status in FIXED_STATUSES, priority=r.priority,
                assignment_id=a.id)


def _parse_certs(certs: dict[str, str]) -> dict[str, date]:
    return {name: date.fromisoformat(expiry) for name, expiry in certs.items()}


def technician_days(*, session: Session, start: datetime, end: datetime, tz: str, live: TravelTimeProvider | None,
                    technician_ids: Iterable[int] | None = None) -> list[TechnicianDay]:
    """Step 3: every work block overlapping [start, end) with its technician and the route already in it.

    A work block is a shift, or overlapping shifts and weekly operating hours merged; an on-call shift is a block
    of its own (see ``truckroll.rules.store.work_blocks``). Absences, memberships and the travel policy come
    with it. Work already assigned inside a block (tentative to completed) is the route; sorted by start.
    With ``live`` (the travel provider) the routes carry the day's live state: re-timed from what technicians
    reported, a job in progress ending no earlier than now (``truckroll.live.overlay_live_state``). ``tz``: the
    company's time zone, for technicians outside every territory.
    """
    # Shifts just outside the horizon may overlap one inside it and merge with it.
    q = select(Shift, Technician).join(Technician, col(Technician.id) == Shift.technician_id).where(
        Shift.start < end + timedelta(hours=12), Shift.end > start - timedelta(hours=12))
    if technician_ids is not None:
        technician_ids = list(technician_ids)
        q = q.where(col(Shift.technician_id).in_(technician_ids))
    rows = session.exec(q.order_by(col(Shift.technician_id), col(Shift.start))).all()
    blocks = rules_store.work_blocks(rows, session=session, start=start, end=end, company_tz=tz,
                                     technician_ids=technician_ids)
    if not blocks:
        return []
    lo = min(b.start for b in blocks)
    hi = max(b.end for b in blocks)
    tech_ids = {b.technician.id for b in blocks}
    assigned = session.exec(
        select(Assignment, ServiceRequest).join(ServiceRequest, col(ServiceRequest.id) == Assignment.request_id)
        .where(col(Assignment.technician_id).in_(tech_ids), col(Assignment.status).in_(ACTIVE_ASSIGNMENT_STATUSES),
               Assignment.scheduled_start < hi, Assignment.scheduled_end > lo)
        .order_by(col(Assignment.scheduled_start))).all()
    blocks_of: dict[int | None, list[rules_store.WorkBlock]] = defaultdict(list)
    for block in blocks:
        blocks_of[block.technician.id].append(block)
    by_block: dict[int, list[tuple[Assignment, ServiceRequest]]] = defaultdict(list)
    for a, r in assigned:
        home = _block_of(a, blocks_of[a.technician_id])
        if home is not None:
            by_block[id(home)].append((a, r))
    days = []
    for block in blocks:
        tech = block.technician
        assert tech.id is not None
        stops = [_stop(a, r) for a, r in by_block.get(id(block), [])]
        days.append(TechnicianDay(
            technician_id=tech.id, name=tech.name, home=Location(tech.home_lat, tech.home_lon),
            shift_start=block.start, shift_end=block.end, skills=dict(tech.skills),
            certifications=_parse_certs(tech.certifications), upsell_multiplier=tech.upsell_multiplier,
            van_inventory=dict(tech.van_inventory), stops=stops, max_priority=block.max_priority,
            active=tech.active))
    rules_store.attach_rules(days, blocks, session=session, tz=tz)
    if live is not None:
        from truckroll.live import overlay_live_state

        overlay_live_state(days, session=session, travel=live)
    return days


def _block_of(a: Assignment, blocks: list[rules_store.WorkBlock]) -> rules_store.WorkBlock | None:
    """The work block a visit belongs to: the one it starts in; else the one it overlaps most (a technician who
    set off early is expected before the shift starts, a job reported late may run past its end); else none."""
    for b in blocks:
        if b.start <= a.scheduled_start < b.end:
            return b
    overlaps = [(min(a.scheduled_end, b.end) - max(a.scheduled_start, b.start), b) for b in blocks]
    overlap, best = max(overlaps, key=lambda pair: pair[0], default=(timedelta(0), None))
    return best if overlap > timedelta(0) else None


def job_horizon(job: JobRequirements) -> tuple[datetime, datetime]:
    return min(w.start for w in job.windows), max(w.end for w in job.windows)


# ---------------------------------------------------------------- escalations and metrics


def open_escalation(request_id: int, reason: str, details: dict[str, Any], *, session: Session) -> Escalation:
    """One open escalation per request: a re-run finds the one it made before."""
    existing = session.exec(select(Escalation).where(Escalation.request_id == request_id,
                                                     col(Escalation.resolved_at).is_(None))).first()
    if existing is not None:
        return existing
    esc = Escalation(request_id=request_id, reason=reason, details=details)
    session.add(esc)
    row = get_request(request_id, session=session)
    row.status = RequestStatus.ESCALATED
    session.add(row)
    session.flush()
    return esc


def escalations(state: str, limit: int, *, session: Session) -> list[tuple[Escalation, ServiceRequest]]:
    """Escalations with their requests (``state``: open, resolved or all), most urgent first, then oldest."""
    q = select(Escalation, ServiceRequest).join(ServiceRequest, col(ServiceRequest.id) == Escalation.request_id)
    if state == "open":
        q = q.where(col(Escalation.resolved_at).is_(None))
    elif state == "resolved":
        q = q.where(col(Escalation.resolved_at).is_not(None))
    elif state != "all":
        raise ValueError(f"state must be open, resolved or all, not {state!r}")
    rows = session.exec(q.order_by(col(ServiceRequest.priority), col(Escalation.created_at)).limit(limit)).all()
    return [(e, r) for e, r in rows]


def latest_escalation(request_id: int, *, session: Session) -> Escalation | None:
    """The request's newest escalation, open or resolved (None when it was never escalated)."""
    return session.exec(select(Escalation).where(Escalation.request_id == request_id)
                        .order_by(col(Escalation.id).desc())).first()


def get_escalation(escalation_id: int, *, session: Session) -> Escalation:
    esc = session.get(Escalation, escalation_id)
    if esc is None:
        raise NotFound(f"no escalation {escalation_id}")
    return esc


def requests_by_id(ids: Iterable[int], *, session: Session) -> dict[int, ServiceRequest]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.exec(select(ServiceRequest).where(col(ServiceRequest.id).in_(wanted))).all()
    return {r.id: r for r in rows if r.id is not None}


def day_bounds(day: date, tz: Any) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    return start, start + timedelta(days=1)


def day_plan(day: date, tz: ZoneInfo, *, session: Session,
             live: TravelTimeProvider | None) -> tuple[list[TechnicianDay], dict[int, float], int]:
    """The day's shifts with their routes (with the live state when ``live`` is the travel provider), the value of
    each routed request, and the day's escalations."""
    start, end = day_bounds(day, tz)
    days = [d for d in technician_days(session=session, start=start, end=end, tz=tz.key, live=live)
            if start <= d.shift_start < end]
    ids = [s.request_id for d in days for s in d.stops]
    values = dict(session.exec(select(ServiceRequest.id, ServiceRequest.estimated_value)
                               .where(col(ServiceRequest.id).in_(ids))).all()) if ids else {}
    # Escalations of requests whose windows touch the day, however far ahead they were booked. A request is
    # counted once even when it was escalated more than once.
    escalated_windows = session.exec(
        select(ServiceRequest.id, ServiceRequest.time_windows)
        .where(col(ServiceRequest.id).in_(select(Escalation.request_id).where(Escalation.created_at < end)))).all()
    esc_for_day = sum(
        1 for _, windows in escalated_windows
        if any(datetime.fromisoformat(a) < end and datetime.fromisoformat(b) > start for a, b in windows))
    return days, {k: v for k, v in values.items() if k is not None}, esc_for_day
