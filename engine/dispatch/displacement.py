"""Emergency displacement: an emergency (priority 1-2) that fits nowhere may take the place of lower-priority
work. The displaced requests are dispatched again and their customers told (``truckroll.dispatch.displacement``).

Rules: only stops that are not fixed (not locked, in progress or completed) and strictly less urgent than the
emergency may move; the least urgent go first; at most ``max_displaced`` stops per route.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from engine.dispatch.insertion import best_insertion, leg_minutes
from engine.rules.availability import start_location
from engine.travel import TravelTimeProvider
from models.domain import Insertion, JobRequirements, Stop, TechnicianDay

URGENT_PRIORITY = 2


@dataclass(slots=True)
class DisplacementPlan:
    """Remove ``removed`` from the route, then insert the emergency as ``insertion`` says (on ``day``)."""

    removed: list[Stop]
    insertion: Insertion
    # The route without the removed stops (a copy; the original is untouched).
    day: TechnicianDay


def may_displace(job: JobRequirements) -> bool:
    return job.priority <= URGENT_PRIORITY


def without_stops(day: TechnicianDay, request_ids: Iterable[int], travel: TravelTimeProvider) -> TechnicianDay:
    """A copy of the day without the given stops; the leg into the stop after each gap is recomputed."""
    drop = set(request_ids)
    kept: list[Stop] = []
    prev = start_location(day)
    gap = False
    for s in day.stops:
        if s.request_id in drop:
            gap = True
            continue
        copy = replace(s)
        if gap:
            copy.travel_minutes = leg_minutes(travel, prev, s)
            gap = False
        kept.append(copy)
        prev = s.location
    return replace(day, stops=kept)


def displacement_plan(day: TechnicianDay, job: JobRequirements, travel: TravelTimeProvider, *,
                      parts_detour_minutes: float = 0.0, allow_broken_promises: bool = False,
                      max_displaced: int = 3) -> DisplacementPlan | None:
    """The smallest displacement of less urgent work that makes room for an emergency in this route.

    First each movable stop alone, least urgent (highest priority number) and latest first; then the least
    urgent two, three, ... together, up to ``max_displaced``.

    Returns
    -------
    DisplacementPlan | None
        None when the job is not an emergency or no such displacement makes room.
    """
    if not may_displace(job):
        return None
    movable = sorted((s for s in day.stops if not s.fixed and s.priority > job.priority),
                     key=lambda s: (-s.priority, -s.start.timestamp()))
    if not movable:
        return None
    trials: list[list[Stop]] = [[s] for s in movable]
    trials += [movable[:k] for k in range(2, min(max_displaced, len(movable)) + 1)]
    for removed in trials:
        trial = without_stops(day, (s.request_id for s in removed), travel)
        ins = best_insertion(trial, job, travel, parts_detour_minutes=parts_detour_minutes,
                             allow_broken_promises=allow_broken_promises)
        if ins is not None:
            return DisplacementPlan(removed=list(removed), insertion=ins, day=trial)
    return None
