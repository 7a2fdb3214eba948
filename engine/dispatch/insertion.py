"""Cheapest feasible insertion of a job into one technician's route, and the route update that follows.

A route is the technician's stops in order, starting and ending at home. Stops never move earlier when a
job is inserted; a stop that is pushed later must still start inside the arrival window its customer was
promised, fixed stops (locked, in progress, completed) must not move at all, and the technician must be
home by the end of the shift.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from engine.rules.availability import (
    effective_windows,
    end_location,
    fits_available,
    inbound_company_minutes,
    outbound_company_minutes,
    start_location,
)
from engine.travel import TravelTimeProvider
from models.domain import Insertion, JobRequirements, Location, Stop, StopChange, TechnicianDay, TimeWindow

_EPS = timedelta(seconds=1)


def _minutes(m: float) -> timedelta:
    # Schedules are kept to the whole second, rounded up (a leg is never planned shorter than estimated,
    # but 10 ms of float noise does not cost a second).
    return timedelta(seconds=math.ceil(m * 60 - 0.01))


def leg_minutes(travel: TravelTimeProvider, origin: Location, stop: Stop, depart_at: datetime | None = None) -> float:
    """Minutes from ``origin`` into ``stop``: the drive plus the stop's depot detour, if it has one."""
    return travel.minutes(origin, stop.location, depart_at) + stop.detour_minutes


def route_travel_minutes(day: TechnicianDay, travel: TravelTimeProvider) -> float:
    """Travel of the whole route: home to the first stop, between stops, and the last stop back home."""
    if not day.stops:
        return 0.0
    total = sum(s.travel_minutes for s in day.stops)
    return total + travel.minutes(day.stops[-1].location, end_location(day), day.stops[-1].end)


def utilisation(day: TechnicianDay, travel: TravelTimeProvider, extra_minutes: float = 0.0) -> float:
    """(scheduled work + travel + extra) / available time (the shift minus its absences)."""
    if day.available_minutes <= 0:
        return 1.0
    work = sum(s.duration_minutes for s in day.stops)
    return (work + route_travel_minutes(day, travel) + extra_minutes) / day.available_minutes


def _propagate(
    stops: list[Stop], first: int, depart: datetime, origin: Location, travel: TravelTimeProvider,
    allow_broken_promises: bool, day: TechnicianDay | None = None,
) -> tuple[list[StopChange], datetime, Location] | None:
    """Push the stops from index ``first`` on after a departure from ``origin`` at ``depart``.

    Returns the changes, the departure time after the last stop and its location; None when infeasible.
    """
    changes: list[StopChange] = []
    here, t = origin, depart
    for i in range(first, len(stops)):
        s = stops[i]
        arrival = t + _minutes(leg_minutes(travel, here, s, t))
        if arrival <= s.start:
            # The delay is absorbed here: this stop and all after it keep their times.
            last = stops[-1]
            return changes, last.end, last.location
        if s.fixed:
            return None
        new_start = arrival
        broken = new_start > s.window.end + _EPS
        if broken and not allow_broken_promises:
            return None
        new_end = new_start + (s.end - s.start)
        if day is not None and day.available is not None and fits_available(
                day, new_start, s.duration_minutes, new_start) is None:
            return None  # pushed into an absence
        changes.append(StopChange(s.request_id, s.start, new_start, new_end, s.window, broken))
        here, t = s.location, new_end
    return changes, t, here


def best_insertion(
    day: TechnicianDay,
    job: JobRequirements,
    travel: TravelTimeProvider,
    *,
    parts_detour_minutes: float = 0.0,
    allow_broken_promises: bool = False,
) -> Insertion | None:
    """The feasible insertion with the least added travel (emergencies: the earliest start).

    Parameters
    ----------
    day:
        The technician's shift and current route (stops sorted by start).
    job:
        The analysed request; its service must start inside one of its windows.
    parts_detour_minutes:
        Added before the job when the van lacks parts (a stop at the depot).
    allow_broken_promises:
        Allow later stops to leave their promised windows (they are then re-promised and notified).

    Returns
    -------
    Insertion | None
        None when no position and window is feasible.
    """
    stops = day.stops
    n = len(stops)
    base_out, base_in = start_location(day), end_location(day)
    home_to_job = travel.minutes(base_out, job.location)
    job_to_home = travel.minutes(job.location, base_in)
    windows = effective_windows(job)
    if not windows:
        return None
    duration = _minutes(job.duration_minutes)
    urgent = job.priority <= 2
    # Bounds that prune positions: nothing can start after the last window closes, nor finish before the
    # first window opens plus the job's duration.
    latest_start = max(w.end for w in windows)
    earliest_end = min(w.start for w in windows) + duration
    best: Insertion | None = None
    # Ordinary work: least added travel, then earliest start. Emergencies (priority 1-2): earliest start.
    best_key: tuple[float, float] | None = None
    for pos in range(n + 1):
        if pos > 0 and stops[pos - 1].end > latest_start:
            break  # this and every later position departs after the last window has closed
        if pos < n:
            nxt = stops[pos]
            # The job would push the next stop beyond what it may move to: skip this position.
            limit = nxt.start if nxt.fixed else (nxt.window.end + _EPS if not allow_broken_promises else None)
            if limit is not None and earliest_end > limit:
                continue
        if pos == 0:
            depart, leg_in, prev_loc = day.shift_start, home_to_job, base_out
        else:
            prev = stops[pos - 1]
            depart, leg_in, prev_loc = prev.end, travel.minutes(prev.location, job.location), prev.location
        if pos < n:
            old_leg = stops[pos].travel_minutes if pos > 0 else leg_minutes(travel, base_out, stops[pos])
            added = leg_in + leg_minutes(travel, job.location, stops[pos]) - old_leg + parts_detour_minutes
        else:
            old_back = travel.minutes(prev_loc, base_in) if pos > 0 else 0.0
            added = leg_in + job_to_home - old_back + parts_detour_minutes
        if best_key is not None and not urgent and round(added, 3) > best_key[0]:
            continue
        # The first leg counts only as far as the travel policy puts it on company time.
        working_leg = outbound_company_minutes(day.travel_policy, leg_in) if pos == 0 else leg_in
        arrival = depart + _minutes(working_leg + parts_detour_minutes)
        for window in windows:
            earliest = max(arrival, window.start, day.shift_start)
            if earliest > window.end:
                continue
            fitted = fits_available(day, earliest, job.duration_minutes, window.end)
            if fitted is None:
                continue
            start = fitted
            end = start + duration
            if end > day.shift_end:
                continue
            # Added travel to the thousandth of a minute: equal detours must tie, then the earlier start wins.
            key = (start.timestamp(), added) if urgent else (round(added, 3), start.timestamp())
            if best_key is not None and key >= best_key:
                continue
            result = _propagate(stops, pos, end, job.location, travel, allow_broken_promises, day)
            if result is None:
                continue
            changes, t_last, loc_last = result
            back = inbound_company_minutes(day.travel_policy, travel.minutes(loc_last, base_in, t_last))
            if t_last + _minutes(back) > day.shift_end + _EPS:
                continue
            best_key = key
            best = Insertion(
                position=pos, arrival=arrival, start=start, end=end,
                travel_from_previous_minutes=leg_in + parts_detour_minutes,
                added_travel_minutes=added, parts_detour_minutes=parts_detour_minutes,
                customer_window=window, later_stops=changes,
            )
            break  # windows are sorted: the first feasible one is the earliest for this position
    return best


def repromise(window: TimeWindow, old_start: datetime, new_start: datetime) -> TimeWindow:
    """The window to tell a customer whose visit moved from ``old_start`` to ``new_start``: the promised
    window, same width, moved by the delay (it contains the new start as it contained the old one)."""
    shift = new_start - old_start
    return TimeWindow(window.start + shift, window.end + shift)


def promised_window(
    start: datetime, customer_window: TimeWindow, width_minutes: int, rounding_minutes: int
) -> TimeWindow:
    """The arrival window told to the customer: about ``width_minutes`` wide around the planned start,
    on a ``rounding_minutes`` grid, inside the customer's own window, and always containing the start.
    """
    width = _minutes(width_minutes)
    grid = rounding_minutes * 60
    centre = start - width / 2
    ts = centre.timestamp()
    ws = datetime.fromtimestamp(ts - ts % grid, tz=start.tzinfo)
    ws = min(max(ws, customer_window.start), start)
    we = min(ws + width, customer_window.end)
    if we <= start:
        we = min(start + _minutes(rounding_minutes), customer_window.end)
    if we <= ws:  # start sits at the very end of the customer's window
        ws = max(customer_window.start, start - width)
        we = start if start > ws else start + _minutes(1)
    return TimeWindow(ws, we)


def apply_insertion(day: TechnicianDay, job: JobRequirements, ins: Insertion, window: TimeWindow,
                    travel: TravelTimeProvider) -> Stop:
    """Insert the job into ``day.stops`` (in place), moving the later stops as the insertion says.

    Returns the new stop.
    """
    new = Stop(request_id=job.request_id, location=job.location, start=ins.start, end=ins.end, window=window,
               travel_minutes=ins.travel_from_previous_minutes, detour_minutes=ins.parts_detour_minutes,
               priority=job.priority)
    by_request = {c.request_id: c for c in ins.later_stops}
    for s in day.stops[ins.position:]:
        change = by_request.get(s.request_id)
        if change is not None:
            if change.breaks_promise:
                # Re-promise a window of the same width moved by the delay; the customer is notified.
                s.window = repromise(s.window, s.start, change.new_start)
            s.start, s.end = change.new_start, change.new_end
    if ins.position < len(day.stops):
        nxt = day.stops[ins.position]
        nxt.travel_minutes = leg_minutes(travel, job.location, nxt)
    day.stops.insert(ins.position, new)
    return new
