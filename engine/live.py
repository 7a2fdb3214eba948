"""The live day: a technician's remaining route re-timed from what really happened.

Plain data in, plain data out. ``propagate`` walks a route in order: a stop with actual times keeps them, a
stop in progress ends when its planned duration (plus any reported delay) says, never before ``now``; a stop
the technician is driving to starts at the reported ETA; every later stop starts when the technician can be
there (free time + the leg), never before its promised window opens. A stop whose new start leaves the window
its customer was told breaks the promise: it is re-promised a window of the same width moved by the delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.dispatch.insertion import _EPS, _minutes, leg_minutes, repromise
from engine.travel import TravelTimeProvider
from models.domain import Location, Stop, TimeWindow

STATES = ("planned", "en_route", "arrived", "completed")


@dataclass(frozen=True, slots=True)
class StopFacts:
    """What is known of one stop on the day."""

    state: str = "planned"  # planned | en_route | arrived | completed
    departed_at: datetime | None = None
    eta: datetime | None = None
    arrived_at: datetime | None = None
    finished_at: datetime | None = None
    # Minutes the technician said the current leg (planned, en route) or the job (arrived) runs over.
    late_minutes: float = 0.0
    # The stop as planned before the first report: the job's duration and where a delay counts from (the
    # route's current times already include earlier reports).
    planned_start: datetime | None = None
    planned_end: datetime | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)} (got {self.state!r})")
        if self.state == "en_route" and self.eta is None:
            raise ValueError("a stop en route needs an ETA")
        if self.state in ("arrived", "completed") and self.arrived_at is None:
            raise ValueError(f"a stop {self.state} needs the arrival time")
        if self.state == "completed" and self.finished_at is None:
            raise ValueError("a completed stop needs the time it finished")
        if self.late_minutes < 0:
            raise ValueError(f"late_minutes must be >= 0 (got {self.late_minutes})")


@dataclass(frozen=True, slots=True)
class StopEta:
    """A stop re-timed: where it was planned, where it now is, and the window to tell its customer."""

    request_id: int
    old_start: datetime
    start: datetime
    end: datetime
    promised: TimeWindow
    window: TimeWindow
    state: str
    # Driving into the stop, as the re-timed route has it.
    travel_minutes: float

    @property
    def breaks_promise(self) -> bool:
        return self.window != self.promised

    @property
    def moved(self) -> bool:
        return self.start != self.old_start


def eta_after(free_at: datetime, here: Location, stop: Stop, travel: TravelTimeProvider) -> datetime:
    """When the technician, free at ``free_at`` at ``here``, reaches ``stop`` (its depot detour included)."""
    return free_at + _minutes(leg_minutes(travel, here, stop, free_at))


def propagate(stops: list[Stop], facts: dict[int, StopFacts], now: datetime,
              travel: TravelTimeProvider) -> list[StopEta]:
    """Re-time ``stops`` (one technician's route, in order) from the facts known at ``now``.

    Stops before the first fact keep their planned times (nothing says otherwise); from the first fact on,
    each stop follows from the one before it.
    """
    out: list[StopEta] = []
    free_at: datetime | None = None
    here: Location | None = None
    for s in stops:
        f = facts.get(s.request_id, StopFacts())
        planned_start = f.planned_start or s.start
        duration = (f.planned_end - f.planned_start) if f.planned_start and f.planned_end else s.end - s.start
        late = _minutes(f.late_minutes)
        leg = s.travel_minutes
        if f.state == "completed":
            assert f.arrived_at is not None and f.finished_at is not None
            start, end = f.arrived_at, f.finished_at
        elif f.state == "arrived":
            assert f.arrived_at is not None
            start = f.arrived_at
            end = max(start + duration + late, now)
        elif f.state == "en_route":
            assert f.eta is not None
            start = f.eta + late
            end = start + duration
        elif free_at is None or here is None:
            # Nothing known before this stop: the plan, delayed by what the technician reported.
            start = planned_start + late if f.late_minutes else s.start
            end = start + duration
        else:
            start = max(eta_after(free_at, here, s, travel) + late, s.window.start)
            end = start + duration
            leg = leg_minutes(travel, here, s, free_at)
        if f.state != "planned" or free_at is not None or f.late_minutes:
            free_at, here = end, s.location
        window = s.window if start <= s.window.end + _EPS else repromise(s.window, s.start, start)
        out.append(StopEta(s.request_id, s.start, start, end, s.window, window, f.state, leg))
    return out
