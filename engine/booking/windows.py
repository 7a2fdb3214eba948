"""Which arrival windows to offer a customer who is booking a visit, and how good each one is.

For a prospective job and each bookable window of the grid (``engine.booking.forecast.WindowGrid``) over the next
days, the window is *offered* only when the dispatch rules would place the job in it: the same eligibility,
capacity threshold and cheapest insertion as the per-request dispatch (``engine.dispatch.decision``), with the job's
windows restricted to that window. So an offered window is really bookable.

Each offered window gets a grade from 0 to 100 and its reasons:

- travel: the added driving of the insertion dispatch would choose;
- route fit: the wait before the window opens and the other customers the insertion would move;
- capacity: the expected value of forecast jobs the booking would displace. Per window, technicians have
  capacity units (free minutes / ``capacity_unit_minutes``) and the forecast jobs still to come (those
  usually booked later than now, or the forecast minus what is already booked) are assigned to them by the
  slot optimiser (``engine.booking.slots``: value x upsell multiplier). The displaced value is that optimum minus
  the optimum once the booking took the chosen technician's time, summed over the windows whose capacity
  the booking changes;
- technician match: skill level and upsell multiplier of that technician.

Plain data in, plain data out; ``truckroll.booking.windows`` feeds it from the database and ``demo.simulate``
from memory.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from engine.booking.forecast import Forecast, WindowGrid, main_skill, remaining_demand
from engine.booking.slots import SlotJob, SlotProblem, SlotTechnician, solve
from engine.config import DispatchSettings
from engine.dispatch.decision import decide, escalation_reason
from engine.dispatch.insertion import apply_insertion
from engine.dispatch.scoring import skill_match
from engine.travel import TravelTimeProvider
from models.domain import Candidate, JobRequirements, TechnicianDay, TimeWindow

logger = logging.getLogger(__name__)

POLICIES = ("first-available", "value-aware")


class GradeWeights(BaseModel):
    """Weights of the grade's components (each 0..1); the grade is 100 x the weighted mean."""

    travel: float = Field(0.25, ge=0)
    route_fit: float = Field(0.15, ge=0)
    value: float = Field(0.40, ge=0)
    match: float = Field(0.20, ge=0)


class BookingSettings(BaseModel):
    """Rules of the booking offer."""

    window_hours: list[tuple[int, int]] = [(8, 10), (10, 12), (12, 14), (14, 16), (16, 18)]
    horizon_days: int = Field(7, ge=1, le=60)
    # A window must start at least this long after the booking is made.
    min_lead_minutes: int = Field(60, ge=0)
    # One unit of a technician's capacity in a window: a typical job with its travel.
    capacity_unit_minutes: float = Field(90.0, gt=0)
    max_offers: int = Field(3, ge=1)
    # value-aware offers, after withholding the windows that displace more than they earn: "earliest" first
    # or best "grade" first (docs/benchmarks.md, "Booking simulation", compares the two).
    value_aware_order: str = Field("earliest", pattern="^(earliest|grade)$")
    # Weeks of history the forecast averages over.
    forecast_weeks: int = Field(4, ge=1)
    weights: GradeWeights = GradeWeights()


# ----------------------------------------------------------------------------------------- capacity


def _overlap_minutes(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds() / 60.0)


def free_minutes(day: TechnicianDay, window: TimeWindow) -> float:
    """Minutes of the window inside the shift, outside the technician's absences, not taken by a stop or the
    drive to it."""
    if day.available is not None:  # the shift minus absences (truckroll.rules.store.attach_rules)
        total = sum(_overlap_minutes(window.start, window.end, a.start, a.end) for a in day.available)
    else:
        total = _overlap_minutes(window.start, window.end, day.shift_start, day.shift_end)
    for s in day.stops:
        busy_from = s.start - timedelta(minutes=s.travel_minutes)
        total -= _overlap_minutes(window.start, window.end, busy_from, s.end)
    return max(0.0, total)


def capacity_units(day: TechnicianDay, window: TimeWindow, unit_minutes: float) -> int:
    """How many typical jobs the technician could still start in the window (0 when off shift)."""
    if not day.active:
        return 0
    return int(math.floor(free_minutes(day, window) / unit_minutes + 1e-9))


# ------------------------------------------------------------------------------------- displacement


@dataclass
class DisplacementCache:
    """Optima of the per-window slot problems, keyed by everything they depend on (safe to keep across
    calls: a changed route or booking changes the key)."""

    optima: dict[tuple[Any, ...], float] = field(default_factory=dict)
    solves: int = 0
    hits: int = 0

    def clear(self) -> None:
        self.optima.clear()


def forecast_optimum(day_techs: Sequence[tuple[TechnicianDay, int]], demand: Mapping[str, Any],
                     cache: DisplacementCache | None = None, key: tuple[Any, ...] = ()) -> float:
    """Best expected value (value x multiplier) the forecast jobs can earn on these capacities.

    Parameters
    ----------
    day_techs:
        (technician shift, capacity units in the window) pairs.
    demand:
        skill -> ``DemandCell`` of jobs still to come. ``expected_jobs`` = 2.4 becomes three jobs, the last
        one worth 0.4 of the mean value (the expected value of a fractional job).
    """
    if cache is not None and key in cache.optima:
        cache.hits += 1
        return cache.optima[key]
    open_shifts = [(d, cap) for d, cap in day_techs if cap > 0]
    # One technician may have two shifts in a day: each shift is its own slot technician.
    techs = [SlotTechnician(f"{d.technician_id}:{k}", d.upsell_multiplier, tuple(range(cap)))
             for k, (d, cap) in enumerate(open_shifts)]
    jobs: list[SlotJob] = []
    for skill, cell in sorted(demand.items()):
        eligible = tuple(t.id for (d, _), t in zip(open_shifts, techs, strict=True) if d.skills.get(skill, 0) >= 1)
        if not eligible:
            continue
        n = math.ceil(cell.expected_jobs - 1e-9)
        for k in range(n):
            share = min(1.0, cell.expected_jobs - k)
            jobs.append(SlotJob(f"{skill}#{k}", round(cell.mean_value * share, 2), 0, eligible))
    value = 0.0
    if techs and jobs:
        slots = max(len(t.available_slots) for t in techs)
        value = solve(SlotProblem(slots, tuple(techs), tuple(jobs)), backend="flow").objective
    if cache is not None:
        cache.solves += 1
        cache.optima[key] = value
    return value


def _caps_key(day_techs: Sequence[tuple[TechnicianDay, int]]) -> tuple[tuple[int, float, int], ...]:
    return tuple(sorted((d.technician_id, d.upsell_multiplier, c) for d, c in day_techs))


def _demand_key(demand: Mapping[str, Any]) -> tuple[tuple[str, float, float], ...]:
    return tuple(sorted((s, round(c.expected_jobs, 6), round(c.mean_value, 4)) for s, c in demand.items()))


@dataclass
class _DayContext:
    """One service day: its shifts and each technician's capacity per grid window."""

    day: date
    shifts: list[TechnicianDay]
    windows: list[TimeWindow]
    caps: dict[int, list[int]]  # id(shift) -> units per window


def _day_context(day: date, days: Sequence[TechnicianDay], grid: WindowGrid, unit: float) -> _DayContext:
    windows = grid.windows_on(day)
    shifts = [d for d in days if d.shift_start.astimezone(grid.tz).date() == day]
    caps = {id(d): [capacity_units(d, w, unit) for w in windows] for d in shifts}
    return _DayContext(day, shifts, windows, caps)


def displaced_value(ctx: _DayContext, chosen: TechnicianDay, after: TechnicianDay, forecast: Forecast,
                    booked: Mapping[tuple[date, int, str], int], settings: BookingSettings,
                    territory: str | None = None, cache: DisplacementCache | None = None,
                    now: datetime | None = None) -> tuple[float, list[int]]:
    """Expected value of forecast jobs lost when ``chosen``'s route becomes ``after``.

    Only the windows where the chosen technician's capacity changes are solved again.

    Returns
    -------
    (value, window indexes whose capacity the booking takes)
    """
    before_caps = ctx.caps[id(chosen)]
    after_caps = [capacity_units(after, w, settings.capacity_unit_minutes) for w in ctx.windows]
    lost = 0.0
    affected = []
    for i, (b, a) in enumerate(zip(before_caps, after_caps, strict=True)):
        if a >= b:
            continue
        affected.append(i)
        booked_here = {s: n for (d, wi, s), n in booked.items() if d == ctx.day and wi == i}
        hours_left = (ctx.windows[i].start - now).total_seconds() / 3600 if now is not None else None
        demand = remaining_demand(forecast, ctx.day, i, booked_here, territory, hours_left)
        if not demand:
            continue
        pairs_before = [(d, ctx.caps[id(d)][i]) for d in ctx.shifts]
        pairs_after = [(d, a if d is chosen else c) for d, c in pairs_before]
        dk = _demand_key(demand)
        v0 = forecast_optimum(pairs_before, demand, cache, (ctx.day, i, _caps_key(pairs_before), dk))
        v1 = forecast_optimum(pairs_after, demand, cache, (ctx.day, i, _caps_key(pairs_after), dk))
        lost += max(0.0, v0 - v1)
    return lost, affected


# ------------------------------------------------------------------------------------------- offers


@dataclass
class WindowOption:
    """A bookable arrival window, its grade 0..100 and why."""

    window: TimeWindow
    grade: int
    reasons: list[str]
    technician_id: int
    technician_name: str
    free_technicians: int
    added_travel_minutes: float
    expected_value: float
    displaced_value: float
    components: dict[str, float] = field(default_factory=dict)
    # value-aware policy: the displaced value exceeds the job's own, and there are other windows.
    withheld: bool = False

    def as_dict(self, tz: Any = None) -> dict[str, Any]:
        return {
            "start": self.window.start.astimezone(tz).isoformat() if tz else self.window.start.isoformat(),
            "end": self.window.end.astimezone(tz).isoformat() if tz else self.window.end.isoformat(),
            "grade": self.grade, "reasons": list(self.reasons), "technician_id": self.technician_id,
            "technician": self.technician_name, "free_technicians": self.free_technicians,
            "added_travel_minutes": round(self.added_travel_minutes, 1),
            "expected_value": round(self.expected_value, 2), "displaced_value": round(self.displaced_value, 2),
            "components": {k: round(v, 3) for k, v in self.components.items()}, "withheld": self.withheld,
        }


@dataclass
class UnavailableWindow:
    window: TimeWindow
    reason: str


@dataclass
class Availability:
    """Every candidate window: the bookable ones (chronological) and why the others are not."""

    options: list[WindowOption]
    unavailable: list[UnavailableWindow]
    reason: str | None = None

    def offers(self, policy: str, max_offers: int, order: str = "earliest") -> list[WindowOption]:
        """The windows a policy puts in front of the customer.

        ``first-available``: the earliest bookable windows. ``value-aware``: without the windows whose
        displaced value exceeds the job's expected value (unless nothing else is left), then the earliest
        (``order="earliest"``) or the best grades (``order="grade"``) first.

        Raises
        ------
        ValueError
            On an unknown policy.
        """
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)} (got {policy!r})")
        if policy == "first-available":
            return self.options[:max_offers]
        kept = [o for o in self.options if not o.withheld] or self.options
        if order == "earliest":
            return kept[:max_offers]
        return sorted(kept, key=lambda o: (-o.grade, o.window.start))[:max_offers]


def candidate_windows(grid: WindowGrid, *, now: datetime, settings: BookingSettings,
                      allowed: Sequence[TimeWindow] = ()) -> list[TimeWindow]:
    """The grid windows from ``now`` + lead time over the horizon, inside the customer's windows if any."""
    first_day = now.astimezone(grid.tz).date()
    earliest = now + timedelta(minutes=settings.min_lead_minutes)
    out = []
    for k in range(settings.horizon_days + 1):
        for w in grid.windows_on(first_day + timedelta(days=k)):
            if w.start < earliest or w.start > now + timedelta(days=settings.horizon_days):
                continue
            if allowed and not any(a.start <= w.start and w.end <= a.end for a in allowed):
                continue
            out.append(w)
    return out


def _money(x: float) -> str:
    return f"${x:,.0f}"


def grade_option(job: JobRequirements, chosen: Candidate, displaced: float, best_multiplier: float,
                 settings: BookingSettings, rules: DispatchSettings, affected_labels: Sequence[str]
                 ) -> tuple[int, dict[str, float], list[str]]:
    """The grade 0..100 of one window, its components and the reasons a person reads."""
    assert chosen.insertion is not None and chosen.day is not None
    ins, day = chosen.insertion, chosen.day
    added = max(0.0, ins.added_travel_minutes)
    travel = max(0.0, 1.0 - added / rules.travel_reference_minutes)
    wait = max(0.0, (ins.start - ins.arrival).total_seconds() / 60.0)
    moved = len(ins.later_stops)
    fit = max(0.0, 1.0 - min(1.0, wait / 60.0) - 0.15 * moved)
    expected = job.estimated_value * day.upsell_multiplier
    if displaced <= 0:
        value = 1.0
    elif expected <= 0:
        value = 0.0
    else:
        value = max(0.0, min(1.0, (expected - displaced) / expected))
    skill = skill_match(day, job)
    mult = day.upsell_multiplier / best_multiplier if best_multiplier > 0 else 1.0
    match = 0.5 * skill + 0.5 * min(1.0, mult)
    w = settings.weights
    total_w = w.travel + w.route_fit + w.value + w.match
    score = (w.travel * travel + w.route_fit * fit + w.value * value + w.match * match) / total_w if total_w else 0
    grade = max(0, min(100, round(100 * score)))
    reasons = [f"travel: {added:.0f} min added to {day.name}'s route"]
    if wait >= 1 or moved:
        parts = []
        if wait >= 1:
            parts.append(f"waits {wait:.0f} min for the window to open")
        if moved:
            parts.append(f"moves {moved} later stop{'s' if moved > 1 else ''}")
        reasons.append("route fit: " + ", ".join(parts))
    else:
        reasons.append(f"route fit: slots into {day.name}'s route without waiting or moving anyone")
    if displaced > 0:
        where = ", ".join(affected_labels)
        reasons.append(f"capacity: displaces {_money(displaced)} of expected forecast jobs ({where}) "
                       f"for this job's expected {_money(expected)}")
    else:
        reasons.append("capacity: no forecast job is expected to need this capacity")
    reasons.append(f"technician: {day.name}, skill match {skill:.0%}, upsell x{day.upsell_multiplier:.2f}")
    components = {"travel": travel, "route_fit": fit, "value": value, "match": match}
    return grade, components, reasons


def availability(
    job: JobRequirements,
    days: Sequence[TechnicianDay],
    travel: TravelTimeProvider,
    rules: DispatchSettings,
    grid: WindowGrid,
    *,
    now: datetime,
    settings: BookingSettings,
    forecast: Forecast | None = None,
    booked: Mapping[tuple[date, int, str], int] | None = None,
    territory: str | None = None,
    allowed: Sequence[TimeWindow] = (),
    cache: DisplacementCache | None = None,
    grade: bool = True,
) -> Availability:
    """The bookable arrival windows of a prospective job, graded, and why the other windows are not.

    Parameters
    ----------
    job:
        The analysed prospective job; its ``windows`` are ignored (each candidate window replaces them).
    days:
        Technician shifts over the horizon with their current routes.
    grid, settings:
        The bookable windows and the offer's rules.
    forecast, booked:
        Expected demand, and jobs already booked per (day, window index, skill); without a forecast nothing
        is displaced.
    allowed:
        The customer's own windows (empty: any time).
    grade:
        False skips grading (first-available offers need only feasibility); options then have grade 0.

    Returns
    -------
    Availability
        ``options`` chronological; ``reason`` set when no window is bookable.
    """
    booked = booked or {}
    windows = candidate_windows(grid, now=now, settings=settings, allowed=allowed)
    if not windows:
        return Availability([], [], reason="no bookable window in the horizon matches the customer's constraints")
    contexts: dict[date, _DayContext] = {}
    best_mult = max((d.upsell_multiplier for d in days), default=1.0)
    options: list[WindowOption] = []
    unavailable: list[UnavailableWindow] = []
    for w in windows:
        local_day = w.start.astimezone(grid.tz).date()
        ctx = contexts.get(local_day)
        if ctx is None:
            ctx = contexts[local_day] = _day_context(local_day, days, grid, settings.capacity_unit_minutes)
        jw = replace(job, windows=[w])
        shifts = [d for d in ctx.shifts if d.shift_start < w.end and d.shift_end > w.start]
        # The same decision the dispatch flow makes (engine.dispatch.decision.decide); a booking never displaces work.
        decision = decide(jw, shifts, travel, rules)
        feasible = [c for c in decision.candidates if c.eligible and not c.displaced]
        if decision.chosen is None or decision.displaced:
            unavailable.append(UnavailableWindow(w, decision.escalation_reason
                                                 or escalation_reason(decision.candidates, rules)))
            continue
        chosen = decision.chosen
        assert chosen is not None and chosen.day is not None and chosen.insertion is not None
        opt = WindowOption(window=w, grade=0, reasons=[], technician_id=chosen.technician_id,
                           technician_name=chosen.name, free_technicians=len(feasible),
                           added_travel_minutes=chosen.insertion.added_travel_minutes,
                           expected_value=job.estimated_value * chosen.day.upsell_multiplier, displaced_value=0.0)
        if grade:
            displaced, affected = 0.0, list[int]()
            if forecast is not None and decision.arrival_window is not None:
                after = copy.deepcopy(chosen.day)
                apply_insertion(after, jw, chosen.insertion, decision.arrival_window, travel)
                displaced, affected = displaced_value(ctx, chosen.day, after, forecast, booked, settings,
                                                      territory, cache, now)
            labels = [f"{local_day:%a} {grid.label(i)}" for i in affected]
            opt.grade, opt.components, opt.reasons = grade_option(jw, chosen, displaced, best_mult, settings,
                                                                  rules, labels)
            opt.displaced_value = displaced
            opt.reasons.insert(0, f"{len(feasible)} technician{'s' if len(feasible) > 1 else ''} free")
        options.append(opt)
    if grade and len(options) > 1:
        for o in options:
            o.withheld = o.displaced_value > o.expected_value
        if all(o.withheld for o in options):
            for o in options:
                o.withheld = False
    reason = None
    if not options:
        reasons = sorted({u.reason for u in unavailable})
        reason = "no window can be booked: " + "; ".join(reasons)
    return Availability(options, unavailable, reason)


# --------------------------------------------------------------------------------------- capacity view


@dataclass
class WindowCapacity:
    window: TimeWindow
    technicians: int
    free_technicians: int
    booked_share: float
    free_units: int
    by_skill: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self, grid: WindowGrid) -> dict[str, Any]:
        return {"start": self.window.start.isoformat(), "end": self.window.end.isoformat(),
                "window": f"{self.window.start.astimezone(grid.tz):%H}-{self.window.end.astimezone(grid.tz):%H}",
                "technicians": self.technicians, "free_technicians": self.free_technicians,
                "booked_share": round(self.booked_share, 4), "free_units": self.free_units,
                "by_skill": self.by_skill}


def capacity_view(days: Sequence[TechnicianDay], grid: WindowGrid, on: date, settings: BookingSettings,
                  skill: str | None = None) -> list[WindowCapacity]:
    """Per window of ``on``: the share of technician time already booked and the technicians still free,
    overall (or of one skill) and per skill."""
    ctx = _day_context(on, days, grid, settings.capacity_unit_minutes)
    out = []
    for i, w in enumerate(ctx.windows):
        shifts = [d for d in ctx.shifts if d.active and _overlap_minutes(w.start, w.end, d.shift_start,
                                                                          d.shift_end) > 0]

        def stats(group: list[TechnicianDay], i: int = i, w: TimeWindow = w) -> tuple[int, int, float, int]:
            avail = sum(_overlap_minutes(w.start, w.end, d.shift_start, d.shift_end) for d in group)
            free = sum(free_minutes(d, w) for d in group)
            units = sum(ctx.caps[id(d)][i] for d in group)
            share = 1.0 - free / avail if avail > 0 else 0.0
            return len(group), sum(1 for d in group if ctx.caps[id(d)][i] > 0), share, units

        group = [d for d in shifts if skill is None or d.skills.get(skill, 0) >= 1]
        n, free_n, share, units = stats(group)
        skills = sorted({s for d in shifts for s in d.skills})
        by_skill = {}
        for s in skills:
            sn, sf, ss, su = stats([d for d in shifts if d.skills.get(s, 0) >= 1])
            by_skill[s] = {"technicians": sn, "free_technicians": sf, "booked_share": round(ss, 4),
                           "free_units": su}
        out.append(WindowCapacity(w, n, free_n, share, units, by_skill))
    return out


def forecast_skill(job: JobRequirements, fallback: str = "") -> str:
    """The skill under which a job counts in the forecast."""
    return main_skill(job.required_skills, fallback)
