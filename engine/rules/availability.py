"""When work may happen: technician availability (weekly operating hours and dated shifts, minus absences),
territory visiting hours, customer closed hours, and the travel policy's first and last legs.

Pure functions on plain data. Intervals are ``TimeWindow`` (timezone-aware); weekly hours are read in the time
zone given (the territory's or the company's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.travel import TravelTimeProvider
from models.domain import JobRequirements, Location, TechnicianDay, TimeWindow
from models.rules import TravelPolicy, WeeklyHours

# ---------------------------------------------------------------- interval algebra


def merge(intervals: Iterable[TimeWindow]) -> list[TimeWindow]:
    """Sorted, with overlapping or touching intervals joined."""
    out: list[TimeWindow] = []
    for w in sorted(intervals, key=lambda w: w.start):
        if out and w.start <= out[-1].end:
            if w.end > out[-1].end:
                out[-1] = TimeWindow(out[-1].start, w.end)
        else:
            out.append(w)
    return out


def subtract(intervals: Iterable[TimeWindow], remove: Iterable[TimeWindow]) -> list[TimeWindow]:
    """``intervals`` minus every interval of ``remove``."""
    result = merge(intervals)
    for r in merge(remove):
        nxt: list[TimeWindow] = []
        for w in result:
            if r.end <= w.start or r.start >= w.end:
                nxt.append(w)
                continue
            if w.start < r.start:
                nxt.append(TimeWindow(w.start, r.start))
            if r.end < w.end:
                nxt.append(TimeWindow(r.end, w.end))
        result = nxt
    return result


def intersect(a: Iterable[TimeWindow], b: Iterable[TimeWindow]) -> list[TimeWindow]:
    """Where both sets of intervals hold."""
    out = []
    bs = merge(b)
    for w in merge(a):
        for v in bs:
            lo, hi = max(w.start, v.start), min(w.end, v.end)
            if lo < hi:
                out.append(TimeWindow(lo, hi))
    return merge(out)


def weekly_intervals(hours: Sequence[WeeklyHours], start: datetime, end: datetime, tz: str) -> list[TimeWindow]:
    """The dated intervals of weekly ``hours`` (local time in ``tz``) that overlap [start, end)."""
    z = ZoneInfo(tz)
    first = start.astimezone(z).date() - timedelta(days=1)
    last = end.astimezone(z).date()
    out = []
    d = first
    while d <= last:
        for h in hours:
            if h.weekday != d.weekday():
                continue
            s = datetime.combine(d, h.start, tzinfo=z)
            e = datetime.combine(d + timedelta(days=1), time(0), tzinfo=z) if h.end == time(0) \
                else datetime.combine(d, h.end, tzinfo=z)
            if s < end and e > start:
                out.append(TimeWindow(s, e))
        d += timedelta(days=1)
    return merge(out)


def hours_label(hours: Sequence[WeeklyHours]) -> str:
    """"Mon 08:00-12:00, Wed 13:00-18:00"."""
    return ", ".join(h.label() for h in sorted(hours, key=lambda h: (h.weekday, h.start)))


# ---------------------------------------------------------------- technician availability


def available_intervals(start: datetime, end: datetime, *, shifts: Sequence[TimeWindow] = (),
                        operating_hours: Sequence[WeeklyHours] = (), tz: str = "UTC",
                        absences: Sequence[TimeWindow] = ()) -> list[TimeWindow]:
    """When a technician can work inside [start, end): weekly operating hours (local to ``tz``) and dated
    shifts (overlapping ones merged), minus absences.

    Parameters
    ----------
    start, end:
        The horizon (timezone-aware).
    shifts:
        Dated shifts; they may overlap each other and the operating hours.
    operating_hours:
        Weekly hours, read in ``tz``.
    absences:
        Dated absences (leave, training, sickness): nothing is available then.

    Returns
    -------
    list[TimeWindow]
        Sorted, disjoint, clipped to the horizon.
    """
    horizon = [TimeWindow(start, end)]
    working = merge(list(shifts) + weekly_intervals(operating_hours, start, end, tz))
    return subtract(intersect(working, horizon), absences)


# ---------------------------------------------------------------- job windows


def visiting_start_windows(windows: Sequence[TimeWindow], visiting_hours: Sequence[WeeklyHours], tz: str,
                           duration_minutes: float) -> list[TimeWindow]:
    """The parts of ``windows`` in which a job of ``duration_minutes`` can start and still finish inside the
    territory's visiting hours."""
    if not visiting_hours or not windows:
        return list(windows)
    lo = min(w.start for w in windows)
    hi = max(w.end for w in windows)
    starts = []
    for v in weekly_intervals(visiting_hours, lo - timedelta(days=1), hi + timedelta(days=1), tz):
        latest = v.end - timedelta(minutes=duration_minutes)
        if latest > v.start:
            starts.append(TimeWindow(v.start, latest))
        elif latest == v.start:
            starts.append(TimeWindow(v.start, v.start + timedelta(seconds=1)))
    return intersect(windows, starts)


def customer_windows(windows: Sequence[TimeWindow], closed_hours: Sequence[WeeklyHours], tz: str) -> list[TimeWindow]:
    """Arrival windows minus the customer's closed hours (a shop closed 13:00-15:00 gets no arrival then)."""
    if not closed_hours or not windows:
        return list(windows)
    lo = min(w.start for w in windows)
    hi = max(w.end for w in windows)
    return subtract(windows, weekly_intervals(closed_hours, lo, hi, tz))


def effective_windows(job: JobRequirements, default_tz: str = "UTC") -> list[TimeWindow]:
    """The windows in which the job's service may start: the customer's windows, minus their closed hours,
    inside the territory's visiting hours (whole job inside them)."""
    rules = job.rules
    if rules is None or not (rules.visiting_hours or rules.closed_hours):
        return list(job.windows)
    tz = rules.timezone or default_tz
    windows = customer_windows(job.windows, rules.closed_hours, tz)
    return visiting_start_windows(windows, rules.visiting_hours, tz, job.duration_minutes)


def window_reasons(job: JobRequirements) -> list[str]:
    """Why the job has no possible start at all (the same for every technician)."""
    rules = job.rules
    if rules is None or effective_windows(job):
        return []
    tz = rules.timezone or "UTC"
    if rules.closed_hours and not customer_windows(job.windows, rules.closed_hours, tz):
        return [f"the customer is closed throughout their windows ({hours_label(rules.closed_hours)})"]
    return [f"territory visited only {hours_label(rules.visiting_hours)}"]


def absence_reasons(day: TechnicianDay, windows: Sequence[TimeWindow]) -> list[str]:
    """"not available: absent 2030-01-07" when absences take all the shift time the windows could use."""
    if day.available is None:
        return []
    shift = [TimeWindow(day.shift_start, day.shift_end)]
    wanted = intersect(windows, shift)
    if not wanted or intersect(wanted, day.available):
        return []
    hit = [a for a in day.absences if a.start < day.shift_end and a.end > day.shift_start]
    if not hit:
        return ["not available in the customer's window"]
    days = sorted({a.start.astimezone(day.shift_start.tzinfo).date() for a in hit})
    what = sorted({a.reason for a in hit if a.reason and a.reason != "absent"})
    label = ", ".join(d.isoformat() for d in days)
    return [f"not available: absent {label}" + (f" ({', '.join(what)})" if what else "")]


def fits_available(day: TechnicianDay, start: datetime, duration_minutes: float,
                   latest_start: datetime) -> datetime | None:
    """The earliest start >= ``start`` and <= ``latest_start`` at which [start, start + duration] lies inside
    one available interval of the day (the shift when no availability is given); None if there is none."""
    end_of = timedelta(minutes=duration_minutes)
    intervals = day.available if day.available is not None else [TimeWindow(day.shift_start, day.shift_end)]
    for a in intervals:
        s = max(start, a.start)
        if s > latest_start:
            return None
        if s + end_of <= a.end:
            return s
    return None


# ---------------------------------------------------------------- travel policy


def start_location(day: TechnicianDay) -> Location:
    p = day.travel_policy
    if p is not None and p.start_at == "depot" and p.depot is not None:
        return p.depot
    return day.home


def end_location(day: TechnicianDay) -> Location:
    p = day.travel_policy
    if p is not None and p.end_at == "depot" and p.depot is not None:
        return p.depot
    return day.home


def company_minutes(owner: str, own_minutes: float, leg_minutes: float) -> float:
    """The part of a first or last leg that is working time: all of it ("company"), none ("technician"), or
    all but the first ``own_minutes`` ("partial")."""
    if owner == "technician":
        return 0.0
    if owner == "partial":
        return max(0.0, leg_minutes - own_minutes)
    return leg_minutes


def outbound_company_minutes(policy: TravelPolicy | None, leg_minutes: float) -> float:
    return leg_minutes if policy is None else company_minutes(policy.outbound, policy.outbound_own_minutes,
                                                              leg_minutes)


def inbound_company_minutes(policy: TravelPolicy | None, leg_minutes: float) -> float:
    return leg_minutes if policy is None else company_minutes(policy.inbound, policy.inbound_own_minutes,
                                                              leg_minutes)


def earliest_first_start(day: TechnicianDay, location: Location, travel: TravelTimeProvider) -> datetime:
    """The earliest arrival at a first job at ``location``: the shift start plus the part of the way from home
    (or the depot) that is on company time."""
    leg = travel.minutes(start_location(day), location, day.shift_start)
    return day.shift_start + timedelta(minutes=outbound_company_minutes(day.travel_policy, leg))


def latest_last_end(day: TechnicianDay, location: Location, travel: TravelTimeProvider) -> datetime:
    """The latest end of a last job at ``location``: the shift end minus the part of the way home (or to the
    depot) that is on company time."""
    leg = travel.minutes(location, end_location(day), day.shift_end)
    return day.shift_end - timedelta(minutes=inbound_company_minutes(day.travel_policy, leg))


def on_date(day: TechnicianDay, tz: str | None) -> date:
    """The local date of the shift (for effective-dated rules)."""
    start = day.shift_start
    return start.astimezone(ZoneInfo(tz)).date() if tz else start.date()
