"""The dispatch rules from the database, as the engine needs them: a technician's work blocks (operating hours
and shifts merged, on-call shifts apart, minus absences), their memberships, radius and travel policy, and a
job's territory, boundary mode and closed hours. ``truckroll.store`` calls these.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from engine.rules.availability import merge, on_date, subtract, weekly_intervals
from engine.rules.shifts import ShiftExceptionSpec, apply_exceptions
from engine.rules.territories import home_base, job_rules_for, polygons_from_geojson
from models import Location, Shift, Technician, TechnicianDay, TimeWindow
from models.rules import (
    Absence,
    JobRules,
    Membership,
    SchedulingPolicy,
    TechnicianRules,
    Territory,
    TravelPolicy,
    WeeklyHours,
)
from models.territory_tables import (
    CustomerClosedHours,
    OperatingHours,
    ShiftScope,
    TechnicianAbsence,
    TechnicianMembership,
    TravelPolicyRecord,
)
from models.territory_tables import SchedulingPolicy as SchedulingPolicyRow
from models.territory_tables import Territory as TerritoryRow


def parse_clock(value: str) -> time:
    """"08:00" -> 08:00; "24:00" -> midnight (the end of the day)."""
    if value in ("24:00", "24:00:00"):
        return time(0)
    return time.fromisoformat(value)


def clock(t: time) -> str:
    return f"{t:%H:%M}"


def weekly(rows: Iterable[dict[str, str | int]]) -> tuple[WeeklyHours, ...]:
    return tuple(WeeklyHours(int(r["weekday"]), parse_clock(str(r["start"])), parse_clock(str(r["end"])))
                 for r in rows)


# ---------------------------------------------------------------- rows -> rule types


def territory_of_row(row: TerritoryRow) -> Territory:
    assert row.id is not None
    return Territory(id=row.id, name=row.name, timezone=row.timezone,
                     polygons=polygons_from_geojson(row.geometry, name=row.name), parent_id=row.parent_id,
                     level=row.level, visiting_hours=weekly(row.visiting_hours))


def _location(lat: float | None, lon: float | None) -> Location | None:
    return Location(lat, lon) if lat is not None and lon is not None else None


def membership_of_row(row: TechnicianMembership) -> Membership:
    return Membership(technician_id=row.technician_id, territory_id=row.territory_id, kind=row.kind,
                      effective_from=row.effective_from, effective_until=row.effective_until,
                      max_radius_km=row.max_radius_km, max_radius_minutes=row.max_radius_minutes,
                      home=_location(row.home_lat, row.home_lon),
                      radius_centre=_location(row.radius_centre_lat, row.radius_centre_lon))


def travel_policy_of_row(row: TravelPolicyRecord) -> TravelPolicy:
    depot = Location(row.depot_lat, row.depot_lon) if row.depot_lat is not None and row.depot_lon is not None \
        else None
    return TravelPolicy(start_at=row.start_at, end_at=row.end_at, depot=depot, outbound=row.outbound,
                        outbound_own_minutes=row.outbound_own_minutes, inbound=row.inbound,
                        inbound_own_minutes=row.inbound_own_minutes, max_radius_km=row.max_radius_km,
                        max_radius_minutes=row.max_radius_minutes)


def territories(*, session: Session) -> list[Territory]:
    return [territory_of_row(r) for r in session.exec(select(TerritoryRow)).all()]


# ---------------------------------------------------------------- work blocks


@dataclass
class WorkBlock:
    """A stretch of time a technician can work in: one TechnicianDay."""

    technician: Technician
    start: datetime
    end: datetime
    max_priority: int | None = None
    all_territories: bool = False


def territory_rows(*, session: Session) -> list[TerritoryRow]:
    """Every territory row, top level first (for listing; the engine reads ``territories``)."""
    return list(session.exec(select(TerritoryRow).order_by(col(TerritoryRow.level), col(TerritoryRow.name))).all())


def membership_rows(technician_id: int | None = None, *, session: Session) -> list[TechnicianMembership]:
    """Memberships by technician and start date, of one technician or of all."""
    q = select(TechnicianMembership).order_by(col(TechnicianMembership.technician_id),
                                              col(TechnicianMembership.effective_from))
    if technician_id is not None:
        q = q.where(col(TechnicianMembership.technician_id) == technician_id)
    return list(session.exec(q).all())


def policy_rows(*, session: Session) -> tuple[list[SchedulingPolicyRow], list[TravelPolicyRecord]]:
    """The stored scheduling and travel policies."""
    return (list(session.exec(select(SchedulingPolicyRow)).all()),
            list(session.exec(select(TravelPolicyRecord)).all()))


def _technician_tz(technician_id: int, memberships: Sequence[Membership], by_id: dict[int, Territory],
                   on: date, company_tz: str) -> str:
    for m in memberships:
        if m.kind in ("primary", "relocation") and m.active_on(on) and m.territory_id in by_id:
            return by_id[m.territory_id].timezone
    return company_tz


def work_blocks(shift_rows: Sequence[tuple[Shift, Technician]], *, session: Session, start: datetime,
                end: datetime, company_tz: str, technician_ids: Iterable[int] | None = None) -> list[WorkBlock]:
    """Each technician's work blocks overlapping [start, end): regular shifts and weekly operating hours merged
    (overlaps joined); on-call shifts (those with a priority limit) kept apart, minus the regular time, with
    their own limit and territory scope. Without operating hours and overlaps this is one block per shift."""
    hours_q = select(OperatingHours, Technician).join(Technician, col(Technician.id) == OperatingHours.technician_id)
    if technician_ids is not None:
        hours_q = hours_q.where(col(OperatingHours.technician_id).in_(list(technician_ids)))
    hour_rows = session.exec(hours_q).all()
    techs: dict[int, Technician] = {}
    regular: dict[int, list[TimeWindow]] = defaultdict(list)
    on_call: dict[int, list[tuple[Shift, bool]]] = defaultdict(list)
    shift_ids = [s.id for s, _ in shift_rows if s.id is not None]
    scope = {r.shift_id: r.all_territories for r in session.exec(
        select(ShiftScope).where(col(ShiftScope.shift_id).in_(shift_ids))).all()} if shift_ids else {}
    for shift, tech in shift_rows:
        assert tech.id is not None
        techs[tech.id] = tech
        if shift.max_priority is not None or scope.get(shift.id or -1, False):
            on_call[tech.id].append((shift, scope.get(shift.id or -1, False)))
        else:
            regular[tech.id].append(TimeWindow(shift.start, shift.end))
    if hour_rows:
        memberships = [membership_of_row(m) for m in session.exec(select(TechnicianMembership).where(
            col(TechnicianMembership.technician_id).in_({t.id for _, t in hour_rows}))).all()]
        by_tech_m: dict[int, list[Membership]] = defaultdict(list)
        for m in memberships:
            by_tech_m[m.technician_id].append(m)
        by_id = {t.id: t for t in territories(session=session)}
        hours_by_tech: dict[int, list[WeeklyHours]] = defaultdict(list)
        for h, tech in hour_rows:
            assert tech.id is not None
            techs[tech.id] = tech
            hours_by_tech[tech.id].append(WeeklyHours(h.weekday, parse_clock(h.start), parse_clock(h.end)))
        exceptions = shift_exceptions(hours_by_tech, start, end, session=session)
        for tid, hours in hours_by_tech.items():
            tz = _technician_tz(tid, by_tech_m[tid], by_id, start.date(), company_tz)
            regular[tid] += apply_exceptions(
                weekly_intervals(hours, start - timedelta(hours=12), end + timedelta(hours=12), tz),
                exceptions.get(tid, []), tz)
    blocks: list[WorkBlock] = []
    for tid, tech in techs.items():
        reg = merge(regular.get(tid, []))
        blocks += [WorkBlock(tech, w.start, w.end) for w in reg if w.start < end and w.end > start]
        taken = list(reg)
        for shift, all_territories in sorted(on_call.get(tid, []), key=lambda x: x[0].start):
            for piece in subtract([TimeWindow(shift.start, shift.end)], taken):
                if piece.start < end and piece.end > start:
                    blocks.append(WorkBlock(tech, piece.start, piece.end, shift.max_priority, all_territories))
                taken.append(piece)
    blocks.sort(key=lambda b: (b.technician.id or 0, b.start))
    return blocks


def shift_exceptions(technician_ids: Iterable[int], start: datetime, end: datetime, *,
                     session: Session) -> dict[int, list[ShiftExceptionSpec]]:
    """The dated exceptions to the technicians' weekly patterns around [start, end) (truckroll.company.sync)."""
    from models.company_tables import ShiftException

    ids = list(technician_ids)
    out: dict[int, list[ShiftExceptionSpec]] = defaultdict(list)
    if not ids:
        return out
    for r in session.exec(select(ShiftException).where(
            col(ShiftException.technician_id).in_(ids), ShiftException.day >= start.date() - timedelta(days=2),
            ShiftException.day <= end.date() + timedelta(days=2))).all():
        out[r.technician_id].append(ShiftExceptionSpec(
            r.day, parse_clock(r.start) if r.start else None, parse_clock(r.end) if r.end else None))
    return out


def attach_rules(days: list[TechnicianDay], blocks: Sequence[WorkBlock], *, session: Session, tz: str) -> None:
    """Absences, availability, memberships, radius and travel policy onto the days (in place).

    A day keeps ``rules`` None when the company has no territory configured and the technician no policy.
    """
    if not days:
        return
    tech_ids = {d.technician_id for d in days}
    lo = min(d.shift_start for d in days)
    hi = max(d.shift_end for d in days)
    absences: dict[int, list[Absence]] = defaultdict(list)
    for a in session.exec(select(TechnicianAbsence).where(
            col(TechnicianAbsence.technician_id).in_(tech_ids), TechnicianAbsence.start < hi,
            TechnicianAbsence.end > lo)).all():
        absences[a.technician_id].append(Absence(a.technician_id, a.start, a.end, a.reason))
    memberships: dict[int, list[Membership]] = defaultdict(list)
    for m in session.exec(select(TechnicianMembership).where(
            col(TechnicianMembership.technician_id).in_(tech_ids))).all():
        memberships[m.technician_id].append(membership_of_row(m))
    policies = {p.technician_id: travel_policy_of_row(p) for p in session.exec(select(TravelPolicyRecord).where(
        (col(TravelPolicyRecord.technician_id).in_(tech_ids)) | (col(TravelPolicyRecord.technician_id).is_(None))
    )).all()}
    names = dict(session.exec(select(TerritoryRow.id, TerritoryRow.name)).all()) if memberships else {}
    for day, block in zip(days, blocks, strict=True):
        tid = day.technician_id
        mine = [a for a in absences.get(tid, []) if a.start < day.shift_end and a.end > day.shift_start]
        if mine:
            day.absences = mine
            day.available = subtract([TimeWindow(day.shift_start, day.shift_end)],
                                     [TimeWindow(a.start, a.end) for a in mine])
        policy = policies.get(tid) or policies.get(None)
        day.travel_policy = policy
        if memberships.get(tid) or policy is not None or block.all_territories:
            day.rules = TechnicianRules(
                technician_id=tid, home=day.home, memberships=tuple(memberships.get(tid, [])),
                max_radius_km=policy.max_radius_km if policy else None,
                max_radius_minutes=policy.max_radius_minutes if policy else None,
                all_territories=block.all_territories, territory_names={k: v for k, v in names.items() if k})
            # A relocation with its own home base: the day starts and ends there for its dates.
            day.home = home_base(day.rules, day.home, on_date(day, tz))


# ---------------------------------------------------------------- a job's rules


def boundary_mode(path: Sequence[int], on: date, *, session: Session) -> str:
    """The scheduling policy's boundary mode on ``on``: the nearest territory on the path with a policy, else
    the company default, else "soft"."""
    rows = {p.territory_id: p for p in session.exec(select(SchedulingPolicyRow)).all()}
    for tid in list(path) + [None]:  # type: ignore[list-item]
        row = rows.get(tid)
        if row is not None and row.boundaries:
            return SchedulingPolicy(tuple(row.boundaries)).mode_on(on)  # type: ignore[arg-type]
    return "soft"


def job_rules(request_id: int, location: Location, windows: Sequence[TimeWindow], *,
              session: Session, tz: str) -> JobRules | None:
    """The job's territory (lowest level containing it), boundary mode on the day of its first window (in the
    territory's time zone), visiting hours and the customer's closed hours. None when nothing applies."""
    terrs = territories(session=session)
    closed = weekly({"weekday": r.weekday, "start": r.start, "end": r.end} for r in session.exec(
        select(CustomerClosedHours).where(CustomerClosedHours.request_id == request_id)).all())
    if not terrs and not closed:
        return None
    rules = job_rules_for(location, terrs, closed_hours=closed)
    tz = rules.timezone or tz
    rules.timezone = tz
    first = min((w.start for w in windows), default=None)
    on = first.astimezone(ZoneInfo(tz)).date() if first else date.today()
    path = rules.territory_path or ((rules.territory_id,) if rules.territory_id else ())
    rules.boundary = boundary_mode(path, on, session=session)
    return rules

